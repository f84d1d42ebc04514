"""What every rank does with a step or a prediction, and the worker loop of ranks >= 1.

The root sends a command (a small dict) and then the arrays: the model state
("state.*", the root's parameters and running statistics) and the batch
("X", and "y" for a step). Each rank takes its rows:

    step:     restore the root's random states, then under nn.shard.batch_shard
              (loss_r, grads_r) = model.loss(X[start:stop], y[start:stop]);
              gathered at the root as {"loss", "grad.<name>"}
    predict:  scores_r = model.loss(X[start:stop]), gathered as {"scores"}
    stop:     the loop returns

A worker that fails reports the traceback to the root (which raises
WorkerLost with it) and stops.
"""

from __future__ import annotations

import numpy as np

from ...nn.random_state import restore_random_states
from ...nn.shard import BatchShard, batch_shard
from .comm import Communicator, Stopped
from .model_state import load_model_arrays
from .shards import shard_bounds

__all__ = ["run_predict", "run_step", "serve"]


def run_step(model, comm: Communicator, X, y) -> dict[str, np.ndarray]:
    """This rank's loss and gradients on its rows of (X, y), as the arrays to gather."""
    start, stop = shard_bounds(len(X), comm.size)[comm.rank]
    shard = BatchShard(start, stop, len(X), comm.sum_in_rank_order, comm.allgather)
    # copies: a layer may keep its input for the backward, and the shared rows change next step
    X_rows, y_rows = np.array(X[start:stop]), np.array(y[start:stop])
    with batch_shard(shard):
        loss, grads = model.loss(X_rows, y_rows)
    return {"loss": np.float64(loss), **{f"grad.{k}": np.asarray(v) for k, v in grads.items()}}


def run_predict(model, comm: Communicator, X) -> dict[str, np.ndarray]:
    """This rank's class scores for its rows of X (nothing for an empty share)."""
    start, stop = shard_bounds(len(X), comm.size)[comm.rank]
    return {"scores": np.asarray(model.loss(np.array(X[start:stop])))} if stop > start else {}


def _unprefixed(arrays: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}


def restore_module_generators(model, states: dict) -> None:
    """Only the generators the model's modules hold (a thread must not set the process's global ones)."""
    saved = states.get("modules", {})
    net = getattr(model, "net", model)
    for name, module in net.named_modules() if hasattr(net, "named_modules") else []:
        for attribute, value in vars(module).items():
            if isinstance(value, np.random.Generator) and f"{name}:{attribute}" in saved:
                value.bit_generator.state = saved[f"{name}:{attribute}"]


def serve(comm: Communicator, model, restore=restore_random_states) -> None:
    """Ranks >= 1: run the root's commands on this replica of the model until told to stop.

    restore(model, states) sets the generators to the root's states at each step: all of this
    process's by default; a thread in the root's process sets private ones (threads.py).
    Returns when the root sends stop or goes away (the communicator raises its Stopped).
    """
    try:
        while True:
            command = comm.broadcast(None)
            if command["kind"] == "stop":
                return
            arrays = comm.broadcast_arrays(None)
            load_model_arrays(model, _unprefixed(arrays, "state."))
            if command["kind"] == "step":
                restore(model, command["random"])
                comm.gather_arrays(run_step(model, comm, arrays["X"], arrays["y"]))
            else:
                comm.gather_arrays(run_predict(model, comm, arrays["X"]))
    except Stopped:
        return
    except Exception as error:
        if hasattr(comm, "report"):
            comm.report(error)
        raise
