"""Dropout module."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..checks import probability
from . import init
from .module import Module


class Dropout(Module):
    """Inverted dropout; p is the probability of dropping (PyTorch's meaning).

    Masks are drawn from the module's Generator (the global one of
    numcnn.nn.init unless given), so a seed makes training reproducible.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, rng: np.random.Generator | None = None):
        super().__init__()
        self.p = probability(p, "p")
        self.rng = rng

    def forward(self, x):
        out, cache = ops.dropout_forward(x, self.p, self.training, init.generator(self.rng))
        self._remember(cache)
        return out

    def backward(self, dout):
        return ops.dropout_backward(dout, self._recall())

    def extra_repr(self):
        return f"p={self.p}"
