"""Elementwise activations.

    relu(x)       = max(x, 0)                         d/dx = 1 where x > 0, else 0
    leaky_relu(x) = x if x > 0 else negative_slope*x  d/dx = 1 where x > 0, else negative_slope
    gelu(x)       = x * Phi(x)                        d/dx = Phi(x) + x * phi(x)

The derivative at exactly 0 is taken as 0 (relu) or negative_slope
(leaky_relu), as PyTorch does. GELU (Hendrycks and Gimpel 2016) weighs x by
the probability Phi(x) that a standard normal variable is below it: PyTorch's
nn.GELU() (approximate='none'), with the exact normal CDF (ops/special.py),
not the tanh approximation. Outputs keep the input's memory layout.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..checks import batch_array, finite_float, upstream_gradient
from .engine import direct, tuning
from .special import normal_cdf, normal_pdf


class ActivationCache(NamedTuple):
    """What relu_forward and leaky_relu_forward (and their loop versions) keep for the backward.

    Attributes:
        positive: Where x > 0: a boolean array of x's shape.
        negative_slope: The slope where x <= 0 (0.0 for ReLU).
    """

    positive: np.ndarray  # where x > 0
    negative_slope: float


def relu_forward(x):
    """x (any shape) -> max(x, 0)."""
    x = batch_array(x, "x")
    return np.maximum(x, 0), ActivationCache(x > 0, 0.0)


def relu_backward(dout, cache: ActivationCache):
    """dout (x's shape) -> dx = dout where x > 0, 0 elsewhere (at x = 0 too, as in PyTorch).

    Raises ValueError when dout does not have x's shape.
    """
    dout = upstream_gradient(dout, "dout", cache.positive.shape)
    return dout * cache.positive


def leaky_relu_forward(x, negative_slope=0.01):
    """x (any shape) -> x where x > 0, negative_slope * x elsewhere."""
    x = batch_array(x, "x")
    negative_slope = finite_float(negative_slope, "negative_slope")
    positive = x > 0
    return np.where(positive, x, x * x.dtype.type(negative_slope)), ActivationCache(positive, float(negative_slope))


def leaky_relu_backward(dout, cache: ActivationCache):
    """dout (x's shape) -> dx = dout where x > 0, `negative_slope * dout` elsewhere (at x = 0 too).

    Raises ValueError when dout does not have x's shape.
    """
    dout = upstream_gradient(dout, "dout", cache.positive.shape)
    return np.where(cache.positive, dout, dout * dout.dtype.type(cache.negative_slope))


class GeluCache(NamedTuple):
    """What gelu_forward (and its loop version) keeps for the backward.

    Attributes:
        x: The input, any shape.
        cdf: `Phi(x)`, the standard normal CDF at x, kept because erf is most of GELU's cost.
    """

    x: np.ndarray
    cdf: np.ndarray  # Phi(x), kept for the backward (erf is most of GELU's cost)


def gelu_forward(x):
    """x (any shape) -> x * Phi(x), the exact GELU."""
    x = batch_array(x, "x")
    kernels, flat = _compiled(x)
    if kernels is None:
        cdf = normal_cdf(x)
        return x * cdf, GeluCache(x, cdf)
    out, cdf = np.empty_like(x), np.empty_like(x)
    kernels.forward(flat(x), flat(out), flat(cdf))
    return out, GeluCache(x, cdf)


def gelu_backward(dout, cache: GeluCache):
    """dout (x's shape) -> dx = dout * (Phi(x) + x * phi(x))."""
    x, cdf = cache
    dout = upstream_gradient(dout, "dout", x.shape)
    kernels, flat = _compiled(x, dout)
    if kernels is None:
        return dout * (cdf + x * normal_pdf(x))
    dx = np.empty_like(x)
    kernels.backward(flat(x), flat(cdf), flat(dout), flat(dx))
    return dx


def _compiled(x, *others):
    """(engine.gelu_kernels, a function giving an array's 1-d view in x's memory order), or (None, None):
    Numba absent, a small or non-float x, or arrays not laid out alike and densely."""
    if x.size < tuning.COMPILED_ROWS_MIN_NUMBERS or x.dtype not in (np.float32, np.float64):
        return None, None
    order = np.argsort([-abs(s) for s in x.strides], kind="stable")  # axes from outermost to innermost

    def flat(a):
        view = a.transpose(order)
        return view.reshape(-1) if view.flags.c_contiguous else None

    if flat(x) is None or any(o.dtype != x.dtype or flat(o) is None for o in others) or not direct.available():
        return None, None
    from .engine import gelu_kernels

    return gelu_kernels, flat


def gelu_forward_naive(x):
    """The definition, one number at a time: x * (1 + erf(x / sqrt 2)) / 2."""
    x = batch_array(x, "x")
    out, cdf = np.zeros_like(x), np.zeros_like(x)
    for index in np.ndindex(x.shape):
        cdf[index] = 0.5 * (1.0 + math.erf(x[index] / math.sqrt(2.0)))
        out[index] = x[index] * cdf[index]
    return out, GeluCache(x, cdf)


def gelu_backward_naive(dout, cache: GeluCache):
    """Loop version of gelu_backward: same signature and cache, same dx.

    Loops over the elements one number at a time, with the normal density written out and
    Phi(x) read from the cache:

        phi = exp(-x^2 / 2) / sqrt(2 pi)
        dx  = dout * (Phi(x) + x * phi)

    Raises ValueError when dout does not have x's shape.
    """
    x, cdf = cache
    dout = upstream_gradient(dout, "dout", x.shape)
    dx = np.zeros_like(dout)
    for index in np.ndindex(dout.shape):
        pdf = math.exp(-0.5 * x[index] ** 2) / math.sqrt(2.0 * math.pi)
        dx[index] = dout[index] * (cdf[index] + x[index] * pdf)
    return dx


def relu_forward_naive(x):
    """Loop version of relu_forward: same signature, same output and ActivationCache.

    x (any shape) -> max(x, 0), one element at a time (leaky_relu_forward_naive with slope 0).
    Raises ValueError for an x that is not a non-empty float array.
    """
    return leaky_relu_forward_naive(x, 0.0)


def relu_backward_naive(dout, cache: ActivationCache):
    """Loop version of relu_backward: same signature and cache, same dx.

    One element at a time: dx = dout where x > 0, else 0 (leaky_relu_backward_naive's loop).
    Raises ValueError when dout does not have x's shape.
    """
    return leaky_relu_backward_naive(dout, cache)


def leaky_relu_forward_naive(x, negative_slope=0.01):
    """Loop version of leaky_relu_forward: same signature, same output and ActivationCache.

    x (any shape) -> out, one element at a time: x where x > 0, `negative_slope * x`
    elsewhere. Raises ValueError for an x that is not a non-empty float array, or a
    negative_slope that is not a finite number.
    """
    x = batch_array(x, "x")
    negative_slope = finite_float(negative_slope, "negative_slope")
    out, positive = np.zeros_like(x), np.zeros(x.shape, bool)
    for index in np.ndindex(x.shape):
        positive[index] = x[index] > 0
        out[index] = x[index] if positive[index] else negative_slope * x[index]
    return out, ActivationCache(positive, float(negative_slope))


def leaky_relu_backward_naive(dout, cache: ActivationCache):
    """Loop version of leaky_relu_backward: same signature and cache, same dx.

    One element at a time: dx = dout where x > 0, `negative_slope * dout` elsewhere.
    Raises ValueError when dout does not have x's shape.
    """
    dout = upstream_gradient(dout, "dout", cache.positive.shape)
    dx = np.zeros_like(dout)
    for index in np.ndindex(dout.shape):
        dx[index] = dout[index] if cache.positive[index] else cache.negative_slope * dout[index]
    return dx
