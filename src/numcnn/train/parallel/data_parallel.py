"""DataParallel: the root's side of a data-parallel step or prediction.

    with start_workers(model, 2) as comm:
        parallel = DataParallel(model, comm)
        loss, grads = parallel.loss(X_batch, y_batch)   # as model.loss(X_batch, y_batch)
        scores = parallel.loss(X)                        # as model.loss(X)

A step: the root broadcasts a command with its random states (so dropout
masks are those of one worker), then its model state and the whole batch;
every rank, the root included, runs its rows under nn.shard.batch_shard
(worker.run_step); the root gathers the losses and gradients and combines
them weighted by each rank's fraction of the rows, in rank order:

    loss = sum_r f_r * loss_r,   grads = sum_r f_r * grads_r,   f_r = rows_r / rows

The regularization term is in every loss_r and grads_r; the fractions sum
to 1, so it counts once. The root's model stays the authoritative state:
workers take its parameters and buffers at every command. A prediction
splits the rows the same way and concatenates the scores in rank order.
"""

from __future__ import annotations

import numpy as np

from ...nn.random_state import capture_random_states
from .comm import Communicator, WorkerLost
from .model_state import model_arrays
from .shards import shard_bounds, weighted_sum
from .worker import run_predict, run_step

__all__ = ["DataParallel"]


class DataParallel:
    """model.loss(X, y=None) computed by every rank of `comm` (this process is its root)."""

    def __init__(self, model, comm: Communicator):
        if not comm.is_root:
            raise ValueError(f"DataParallel runs on the root (rank 0); this is rank {comm.rank}: call serve()")
        self.model, self.comm = model, comm

    @property
    def size(self) -> int:
        return self.comm.size

    def _send(self, command: dict, batch: dict) -> None:
        self.comm.broadcast(command)
        self.comm.broadcast_arrays({**{f"state.{k}": v for k, v in model_arrays(self.model).items()}, **batch})

    def loss(self, X, y=None, during: str = "a step"):
        """model.loss(X, y) over all ranks; `during` names the step in a WorkerLost message."""
        try:
            return self._scores(X) if y is None else self._step(X, y)
        except WorkerLost as error:
            raise WorkerLost(f"{error}, in {during}") from None

    def _step(self, X, y):
        total = len(X)
        if total < self.size:
            raise ValueError(f"a batch of {total} rows cannot be split over {self.size} workers")
        self._send({"kind": "step", "random": capture_random_states(self.model)}, {"X": X, "y": np.asarray(y)})
        parts = self.comm.gather_arrays(run_step(self.model, self.comm, X, y))
        fractions = [(stop - start) / total for start, stop in shard_bounds(total, self.size)]
        loss = weighted_sum([float(p["loss"]) for p in parts], fractions)
        names = [k for k in parts[0] if k.startswith("grad.")]
        grads = {name[5:]: weighted_sum([p[name] for p in parts], fractions) for name in names}
        return loss, grads

    def _scores(self, X):
        self._send({"kind": "predict"}, {"X": X})
        parts = self.comm.gather_arrays(run_predict(self.model, self.comm, X))
        return np.concatenate([p["scores"] for p in parts if "scores" in p], axis=0)

    def stop(self) -> None:
        """End the workers' loops (serve returns); the communicator stays open."""
        self.comm.broadcast({"kind": "stop"})
