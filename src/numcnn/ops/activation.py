"""Elementwise activations.

    relu(x)       = max(x, 0)                         d/dx = 1 where x > 0, else 0
    leaky_relu(x) = x if x > 0 else negative_slope*x  d/dx = 1 where x > 0, else negative_slope

The derivative at exactly 0 is taken as 0 (relu) or negative_slope
(leaky_relu), as PyTorch does. Outputs keep the input's memory layout.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..checks import batch_array, finite_float, upstream_gradient


class ActivationCache(NamedTuple):
    positive: np.ndarray  # where x > 0
    negative_slope: float


def relu_forward(x):
    """x (any shape) -> max(x, 0)."""
    x = batch_array(x, "x")
    return np.maximum(x, 0), ActivationCache(x > 0, 0.0)


def relu_backward(dout, cache: ActivationCache):
    dout = upstream_gradient(dout, "dout", cache.positive.shape)
    return dout * cache.positive


def leaky_relu_forward(x, negative_slope=0.01):
    """x (any shape) -> x where x > 0, negative_slope * x elsewhere."""
    x = batch_array(x, "x")
    negative_slope = finite_float(negative_slope, "negative_slope")
    positive = x > 0
    return np.where(positive, x, x * x.dtype.type(negative_slope)), ActivationCache(positive, float(negative_slope))


def leaky_relu_backward(dout, cache: ActivationCache):
    dout = upstream_gradient(dout, "dout", cache.positive.shape)
    return np.where(cache.positive, dout, dout * dout.dtype.type(cache.negative_slope))


def relu_forward_naive(x):
    return leaky_relu_forward_naive(x, 0.0)


def relu_backward_naive(dout, cache: ActivationCache):
    return leaky_relu_backward_naive(dout, cache)


def leaky_relu_forward_naive(x, negative_slope=0.01):
    x = batch_array(x, "x")
    negative_slope = finite_float(negative_slope, "negative_slope")
    out, positive = np.zeros_like(x), np.zeros(x.shape, bool)
    for index in np.ndindex(x.shape):
        positive[index] = x[index] > 0
        out[index] = x[index] if positive[index] else negative_slope * x[index]
    return out, ActivationCache(positive, float(negative_slope))


def leaky_relu_backward_naive(dout, cache: ActivationCache):
    dout = upstream_gradient(dout, "dout", cache.positive.shape)
    dx = np.zeros_like(dout)
    for index in np.ndindex(dout.shape):
        dx[index] = dout[index] if cache.positive[index] else cache.negative_slope * dout[index]
    return dx
