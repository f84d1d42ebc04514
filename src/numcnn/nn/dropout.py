"""Dropout module."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..checks import probability
from . import init
from .module import Module
from .shard import current_shard


class Dropout(Module):
    """Inverted dropout; p is the probability of dropping (PyTorch's meaning).

    Masks are drawn from the module's Generator (the global one of
    numcnn.nn.init unless given), so a seed makes training reproducible.
    Under a data-parallel shard (numcnn.nn.shard) the mask is drawn for the
    whole batch and this worker keeps its rows: the same mask, and the same
    advance of the generator, as one worker's.
    """

    reads_batch_shard = True  # the data-parallel check (train.parallel) asks this

    def __init__(self, p: float = 0.5, inplace: bool = False, *, rng: np.random.Generator | None = None):
        super().__init__()
        self.p = probability(p, "p")
        self.rng = rng

    def forward(self, x):
        shard = current_shard() if self.training else None  # evaluation: the identity, on any rows
        if shard is None:
            out, cache = ops.dropout_forward(x, self.p, self.training, init.generator(self.rng))
        else:
            rows = np.shape(x)[0] if np.ndim(x) else None
            if rows != shard.rows:
                raise ValueError(f"x must hold the shard's {shard.rows} rows of the batch, got shape {np.shape(x)}")
            rng = init.generator(self.rng)
            out, cache = ops.dropout_forward_rows(x, self.p, self.training, rng, shard.start, shard.total)
        self._remember(cache)
        return out

    def backward(self, dout):
        return ops.dropout_backward(dout, self._recall())

    def extra_repr(self):
        return f"p={self.p}"
