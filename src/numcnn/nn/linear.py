"""Linear, Flatten and Identity modules."""

from __future__ import annotations

import math

import numpy as np

from .. import ops
from ..checks import finite_float, float_array, float_dtype, integer, positive_int
from . import init
from .module import Module


class Linear(Module):
    """y = x @ weight.T + bias over the last axis, as torch.nn.Linear.

    weight (out_features, in_features), bias (out_features,): PyTorch's
    layout, so state dicts match. x (..., in_features) -> (..., out_features).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        dtype=np.float32,
        rng: np.random.Generator | None = None,
    ):
        super().__init__()
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        dtype = float_dtype(dtype)
        rng = init.generator(rng)
        bound = 1.0 / math.sqrt(in_features)
        self.params["weight"] = init.kaiming_uniform((out_features, in_features), in_features, rng, dtype)
        if bias:
            self.params["bias"] = init.uniform((out_features,), bound, rng, dtype)

    def forward(self, x):
        x = float_array(x, "x")
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape (..., {self.in_features}), got {x.shape}")
        rows = x.reshape(-1, self.in_features)
        out, cache = ops.linear_forward(rows, self.params["weight"].T, self.params.get("bias"))
        self._remember((cache, x.shape))
        return out.reshape(x.shape[:-1] + (self.out_features,))

    def backward(self, dout):
        cache, x_shape = self._recall()
        drows, dw, db = ops.linear_backward(np.asarray(dout).reshape(-1, self.out_features), cache)
        self._set_grads(weight=dw.T, bias=db)  # dw is (in, out), a fresh array: its transpose is no alias
        return drows.reshape(x_shape)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={'bias' in self.params}"


class Flatten(Module):
    """Flatten axes start_dim..end_dim into one (PyTorch's defaults: all but the batch axis)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = integer(start_dim, "start_dim"), integer(end_dim, "end_dim")

    def forward(self, x):
        x = np.asarray(x)
        start = self.start_dim % x.ndim
        end = self.end_dim % x.ndim
        self._remember(x.shape)
        # the flattened size spelled out: reshape cannot infer -1 when another axis is 0
        flat = int(np.prod(x.shape[start : end + 1]))
        return x.reshape(x.shape[:start] + (flat,) + x.shape[end + 1 :])

    def backward(self, dout):
        return np.asarray(dout).reshape(self._recall())

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input; a placeholder, e.g. for a shortcut that changes nothing.

    Takes and ignores any arguments, as torch.nn.Identity does.
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        self._remember(True)
        return x

    def backward(self, dout):
        self._recall()
        return dout


class Scale(Module):
    """Multiplies by a constant: out = factor * x, dx = factor * dout.

    PyTorch has no such layer; airbench's Mul is one. After a network's last
    linear layer it keeps the logits small while the weights learn at the
    network's learning rate (the airbench net diverges without it at the
    learning rates it trains with).
    """

    def __init__(self, factor: float):
        super().__init__()
        self.factor = finite_float(factor, "factor")

    def forward(self, x):
        self._remember(True)
        return np.asarray(x) * np.asarray(self.factor, dtype=np.asarray(x).dtype)

    def backward(self, dout):
        self._recall()
        return np.asarray(dout) * np.asarray(self.factor, dtype=np.asarray(dout).dtype)

    def extra_repr(self):
        return f"factor={self.factor:g}"
