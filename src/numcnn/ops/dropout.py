"""Inverted dropout with PyTorch's meaning of p: the probability of dropping.

In training each element is kept with probability 1 - p and scaled by
1 / (1 - p), so that the expected output equals the input and evaluation
needs no rescaling:

    mask = (u >= p) / (1 - p),  u ~ Uniform[0, 1)    out = x * mask
    dx = dout * mask

In evaluation (training=False) dropout is the identity. With p = 1 every
element is dropped (the output is zero, as in PyTorch). The uniform draws
come from the numpy.random.Generator passed in, so a seeded generator makes
a run reproducible. (CS231n's dropout takes the keep probability instead;
numcnn.compat.cs231n adapts.)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..checks import batch_array, integer, probability, upstream_gradient


class DropoutCache(NamedTuple):
    """What a dropout forward keeps for the backward.

    Attributes:
        mask: `(u >= p) / (1 - p)` per element, x's shape and dtype (all zero when p = 1);
            None when dropout was the identity (evaluation, or p = 0).
    """

    mask: np.ndarray | None  # None in evaluation mode


def _arguments(x, p, rng):
    x = batch_array(x, "x")
    p = probability(p, "p")
    if rng is None:
        rng = np.random.default_rng()
    elif not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return x, p, rng


def _uniform(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """One draw per element of x, in x's memory order and layout.

    Draws laid out like x keep the mask multiplication a straight pass
    (a channels-last x times an NCHW mask iterates across the grain);
    float32 draws for float32 x halve the memory traffic.
    """
    draws = np.empty_like(x, dtype=np.float32 if x.dtype == np.float32 else np.float64)
    order = sorted(range(x.ndim), key=lambda axis: -draws.strides[axis]) if x.ndim else []
    in_memory_order = draws.transpose(order)
    if in_memory_order.flags.c_contiguous:
        rng.random(dtype=draws.dtype, out=in_memory_order)
    else:
        draws[...] = rng.random(x.shape, dtype=draws.dtype)
    return draws


def _scale(p: float) -> float:
    return 0.0 if p == 1.0 else 1.0 / (1.0 - p)


def dropout_forward(x, p=0.5, training=True, rng=None):
    """x (any shape) -> out (like x); rng: numpy.random.Generator (a fresh one if None)."""
    x, p, rng = _arguments(x, p, rng)
    if not training or p == 0.0:
        return x.copy(), DropoutCache(None)
    draws = _uniform(rng, x)
    mask = (draws >= p).astype(x.dtype) * x.dtype.type(_scale(p))
    return x * mask, DropoutCache(mask)


def _rows_arguments(x, start, total):
    start, total = integer(start, "start"), integer(total, "total")
    if not 0 <= start <= total - x.shape[0]:
        raise ValueError(f"start must place x's {x.shape[0]} rows inside the batch of total={total}, got {start}")
    return start, total


def _whole_batch_draws(rng: np.random.Generator, x: np.ndarray, total: int) -> np.ndarray:
    """_uniform's draws for a batch of `total` rows laid out as x is (its axes in x's memory order)."""
    draws = np.empty_like(x, dtype=np.float32 if x.dtype == np.float32 else np.float64)
    order = sorted(range(x.ndim), key=lambda axis: -draws.strides[axis])
    if not draws.transpose(order).flags.c_contiguous:  # _uniform draws such an x in C order
        order = list(range(x.ndim))
    shape = (total,) + x.shape[1:]
    whole = np.empty([shape[axis] for axis in order], draws.dtype).transpose(np.argsort(order))
    return _uniform(rng, whole)


def dropout_forward_rows(x, p, training, rng, start, total):
    """Dropout of rows [start, start + N) of a batch of `total` rows. x (N, ...) -> out (like x).

    The uniforms are drawn for the whole batch, shape (total, *x.shape[1:]),
    laid out as x is (as dropout_forward would draw them for the whole batch
    in that layout), and x keeps its rows of them: the mask and the
    generator's advance are one worker's, however the batch is split.
    Backward: dropout_backward.
    """
    x, p, rng = _arguments(x, p, rng)
    start, total = _rows_arguments(x, start, total)
    if not training or p == 0.0:
        return x.copy(), DropoutCache(None)
    draws = _whole_batch_draws(rng, x, total)[start : start + x.shape[0]]
    mask = (draws >= p).astype(x.dtype) * x.dtype.type(_scale(p))
    return x * mask, DropoutCache(mask)


def dropout_forward_rows_naive(x, p, training, rng, start, total):
    """The whole batch's draws, then one element of x's rows at a time."""
    x, p, rng = _arguments(x, p, rng)
    start, total = _rows_arguments(x, start, total)
    if not training or p == 0.0:
        return x.copy(), DropoutCache(None)
    draws = _whole_batch_draws(rng, x, total)
    out, mask = np.zeros_like(x), np.zeros_like(x)
    for index in np.ndindex(x.shape):
        if draws[(start + index[0],) + index[1:]] >= p:
            mask[index] = _scale(p)
        out[index] = x[index] * mask[index]
    return out, DropoutCache(mask)


def _check_dout(dout, cache: DropoutCache):
    if cache.mask is None:  # identity (eval mode or p = 0): no mask to take the shape from
        return batch_array(dout, "dout")
    return upstream_gradient(dout, "dout", cache.mask.shape)


def dropout_backward(dout, cache: DropoutCache):
    """dout (x's shape) -> `dx = dout * mask`, or a copy of dout where the forward was the identity.

    The backward of dropout_forward and dropout_forward_rows. Raises ValueError when dout
    is not a non-empty float array of x's shape.
    """
    dout = _check_dout(dout, cache)
    if cache.mask is None:
        return dout.copy()
    return dout * cache.mask


def dropout_forward_naive(x, p=0.5, training=True, rng=None):
    """One uniform draw per element, in C order (the same draws as the fast version)."""
    x, p, rng = _arguments(x, p, rng)
    if not training or p == 0.0:
        return x.copy(), DropoutCache(None)
    draws = _uniform(rng, x)
    out, mask = np.zeros_like(x), np.zeros_like(x)
    for index in np.ndindex(x.shape):
        if draws[index] >= p:
            mask[index] = _scale(p)
        out[index] = x[index] * mask[index]
    return out, DropoutCache(mask)


def dropout_backward_naive(dout, cache: DropoutCache):
    """Loop version of dropout_backward: same signature and cache, same dx.

    One element at a time: `dx = dout * mask`; a copy of dout where the forward was the
    identity. Raises ValueError when dout is not a non-empty float array of x's shape.
    """
    dout = _check_dout(dout, cache)
    if cache.mask is None:
        return dout.copy()
    dx = np.zeros_like(cache.mask)
    for index in np.ndindex(dx.shape):
        dx[index] = dout[index] * cache.mask[index]
    return dx
