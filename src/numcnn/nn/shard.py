"""Which rows of a batch a module sees, when data-parallel workers split one batch.

Data parallelism (numcnn.train.parallel) runs the whole network on each
worker's rows of one batch. Two kinds of layer must still compute what one
worker computes on the whole batch:

- batch norm in training normalizes with the whole batch's statistics (the
  semantics of torch.nn.SyncBatchNorm): its per-channel partial sums are
  combined across workers through the shard's `combine`;
- dropout draws its mask for the whole batch from the shared random stream
  and keeps its own rows, so a mask never depends on the number of workers.

A worker sets the context around its forward and backward:

    with batch_shard(BatchShard(start=64, stop=128, total=128, combine=comm.sum_in_rank_order)):
        loss, grads = model.loss(X_batch[64:128], y_batch[64:128])

combine(array) is collective: every worker calls it with an array of the same
shape and dtype, the same number of times in the same order, and each gets
back the sum over workers taken in rank order, so every worker holds the same
bits. gather(array), where given, is collective the same way and returns
every worker's array in rank order: batch norm's forward then needs one
exchange instead of two (each exchange is a point where every worker waits
for the slowest). Layers of one sample (layer, group, instance norm,
convolutions) need nothing from here. A layer that honours the shard says
so with the class attribute `reads_batch_shard = True` (subclasses inherit
it); data parallelism refuses a network whose batch norm or dropout does
not.

Scale: a shard's loss is the mean over its own rows, so the upstream gradient
a worker holds is total / (stop - start) times the one of the whole batch's
mean loss ("local scale"). A layer that combines gradient sums converts them
with `fraction` = (stop - start) / total; whoever sums the workers' parameter
gradients weights each by its fraction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np

__all__ = ["BatchShard", "batch_shard", "current_shard"]


@dataclass(frozen=True)
class BatchShard:
    """Rows [start, stop) of a batch of `total` rows; combine sums an array over workers, gather lists them."""

    start: int
    stop: int
    total: int
    combine: Callable[[np.ndarray], np.ndarray]
    gather: Callable[[np.ndarray], list[np.ndarray]] | None = None

    def __post_init__(self):
        if not 0 <= self.start < self.stop <= self.total:
            raise ValueError(f"a shard needs 0 <= start < stop <= total, got {self.start}, {self.stop}, {self.total}")

    @property
    def rows(self) -> int:
        return self.stop - self.start

    @property
    def fraction(self) -> float:
        """This worker's share of the batch: the weight of its gradients in the sum."""
        return self.rows / self.total


_current: ContextVar[BatchShard | None] = ContextVar("numcnn batch shard", default=None)


def current_shard() -> BatchShard | None:
    """The shard this thread's forward and backward run on; None outside data parallelism."""
    return _current.get()


@contextlib.contextmanager
def batch_shard(shard: BatchShard | None) -> Iterator[BatchShard | None]:
    """Within: layers in this thread see `shard` (None: the whole batch, as without workers)."""
    token = _current.set(shard)
    try:
        yield shard
    finally:
        _current.reset(token)
