"""Average pooling: windowed, global and adaptive, with PyTorch's semantics.

For a kernel (KH, KW), stride s and padding p, output pixel (i, j) averages
the window of padded pixels (i*sh + u, j*sw + v), u < KH, v < KW:

    out[n, c, i, j] = sum over the window / count   (padding counts as 0)

where count is KH*KW, or the number of real (unpadded) pixels in the window
when count_include_pad is False. Global average pooling averages all H*W
pixels (x (N, C, H, W) -> out (N, C, 1, 1)); adaptive average pooling picks
PyTorch's windows for any output size. Shapes: x (N, C, H, W) -> out
(N, C, OH, OW); stride defaults to the kernel size. The geometry, padding
and threading helpers are max pooling's (numcnn.ops.pool).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..checks import batch_array, int_pair, upstream_gradient
from .engine.geometry import WindowGeometry, tap_slices
from .pool import (
    PoolCache,
    _check_dout,
    _crop,
    _pad,
    _windows_naive,
    pool_geometry,
)


def _avg_count(geom: WindowGeometry, count_include_pad: bool, dtype):
    """Divisor of each window: KH*KW, or (OH, OW) counts of unpadded pixels."""
    KH, KW = geom.kernel
    if count_include_pad or not any(geom.pad):
        return KH * KW
    ones = _pad(np.ones((1, 1) + geom.in_hw, dtype), geom, 0.0)
    return sum(ones[0, 0, rows, cols] for rows, cols in tap_slices(geom))


# ---------------------------------------------------------------------------
# Loop versions
# ---------------------------------------------------------------------------


def avg_pool2d_forward_naive(x, kernel_size, stride=None, pad=0, count_include_pad=True):
    """Loop version of avg_pool2d_forward: same signature, same output and PoolCache.

    x (N, C, H, W) -> out (N, C, OH, OW). Loops over images, channels and output pixels,
    averaging one window at a time, padding counting as 0:

        out[n, c, i, j] = sum over u < KH, v < KW of xp[n, c, i*sh + u, j*sw + v] / count

    count is `KH*KW`, or the window's real (unpadded) pixels when count_include_pad is
    False. Raises ValueError for an x that is not a non-empty 4-d float array, a pad above
    half the kernel, or a kernel larger than the padded input.
    """
    x = batch_array(x, "x", ndim=4)
    geom = pool_geometry(x, kernel_size, stride, pad)
    xp = _pad(x, geom, 0.0)
    real = _pad(np.ones(x.shape[2:], x.dtype)[None, None], geom, 0.0)[0, 0]
    N, C = x.shape[:2]
    out = np.zeros((N, C) + geom.out_hw, x.dtype)
    for n in range(N):
        for c in range(C):
            for i, j, (rows, cols) in _windows_naive(geom):
                count = real[rows, cols].size if count_include_pad else real[rows, cols].sum()
                out[n, c, i, j] = np.sum(xp[n, c, rows, cols]) / count
    return out, PoolCache(x, out, geom, _avg_count(geom, count_include_pad, x.dtype))


def avg_pool2d_backward_naive(dout, cache: PoolCache):
    """Loop version of avg_pool2d_backward: same signature and cache, same dx.

    dout (N, C, OH, OW) -> dx (N, C, H, W). Loops over images, channels and output pixels;
    each adds `dout[n, c, i, j] / count` to every pixel of its window (what falls on the
    padding is dropped). Raises ValueError when dout does not have the forward output's shape.
    """
    x, out, geom, count = cache
    dout = _check_dout(dout, out)
    count = np.broadcast_to(count, geom.out_hw)
    dxp = np.zeros(_pad(x, geom, 0.0).shape, x.dtype)
    N, C = x.shape[:2]
    for n in range(N):
        for c in range(C):
            for i, j, (rows, cols) in _windows_naive(geom):
                dxp[n, c, rows, cols] += dout[n, c, i, j] / count[i, j]
    return _crop(dxp, geom)


def global_avg_pool_forward_naive(x):
    """Loop version of global_avg_pool_forward: same signature, same output and PoolCache.

    x (N, C, H, W) -> out (N, C, 1, 1). Loops over images and channels:

        out[n, c, 0, 0] = sum of x[n, c] / (H*W)

    Raises ValueError for an x that is not a non-empty 4-d float array.
    """
    x = batch_array(x, "x", ndim=4)
    N, C = x.shape[:2]
    out = np.zeros((N, C, 1, 1), x.dtype)
    for n in range(N):
        for c in range(C):
            out[n, c, 0, 0] = np.sum(x[n, c]) / x[n, c].size
    return out, PoolCache(x, out, None, x.shape[2] * x.shape[3])


def global_avg_pool_backward_naive(dout, cache: PoolCache):
    """Loop version of global_avg_pool_backward: same signature and cache, same dx.

    dout (N, C, 1, 1) -> dx (N, C, H, W). Loops over images and channels:

        dx[n, c, :, :] = dout[n, c, 0, 0] / (H*W)

    Raises ValueError when dout is not (N, C, 1, 1).
    """
    x, out, _, count = cache
    dout = _check_dout(dout, out)
    dx = np.zeros_like(x)
    N, C = x.shape[:2]
    for n in range(N):
        for c in range(C):
            dx[n, c, :, :] = dout[n, c, 0, 0] / count
    return dx


# ---------------------------------------------------------------------------
# Fast versions: one elementwise pass per kernel tap
# ---------------------------------------------------------------------------


def avg_pool2d_forward(x, kernel_size, stride=None, pad=0, count_include_pad=True):
    """x (N, C, H, W) -> out (N, C, OH, OW), the mean of each window."""
    x = batch_array(x, "x", ndim=4)
    geom = pool_geometry(x, kernel_size, stride, pad)
    xp = _pad(x, geom, 0.0)
    taps = tap_slices(geom)
    rows, cols = taps[0]
    out = xp[:, :, rows, cols].copy(order="K")
    for rows, cols in taps[1:]:
        out += xp[:, :, rows, cols]
    count = _avg_count(geom, count_include_pad, x.dtype)
    out /= count
    return out, PoolCache(x, out, geom, count)


def avg_pool2d_backward(dout, cache: PoolCache):
    """dx (N, C, H, W): each window's dout, divided by its count, to every pixel in it."""
    x, out, geom, count = cache
    dout = _check_dout(dout, out)
    share = dout / count
    dxp = np.zeros_like(_pad(x, geom, 0.0))
    for rows, cols in tap_slices(geom):
        dxp[:, :, rows, cols] += share
    return _crop(dxp, geom)


def global_avg_pool_forward(x):
    """x (N, C, H, W) -> out (N, C, 1, 1), the mean of each feature map."""
    x = batch_array(x, "x", ndim=4)
    out = x.mean(axis=(2, 3), keepdims=True)
    return out, PoolCache(x, out, None, x.shape[2] * x.shape[3])


def global_avg_pool_backward(dout, cache: PoolCache):
    """dx (N, C, H, W) = dout / (H*W) at every pixel."""
    x, out, _, count = cache
    dout = _check_dout(dout, out)
    dx = np.empty_like(x)
    np.divide(dout, count, out=dx, casting="same_kind")
    return dx


# ---------------------------------------------------------------------------
# Adaptive average pooling: PyTorch's windows for any output size
# ---------------------------------------------------------------------------


class AdaptivePoolCache(NamedTuple):
    """What adaptive_avg_pool2d_forward (and its loop version) keeps for the backward.

    Attributes:
        x_shape: The input's shape (N, C, H, W).
        output_size: (OH, OW).
        inner: The cache of the ordinary pooling that did the work when the windows are
            equal (global or windowed average pooling); None when uneven windows were
            computed as matrix products, and always from the loop version.
    """

    x_shape: tuple[int, ...]
    output_size: tuple[int, int]
    inner: PoolCache | None  # set when an ordinary pooling did the work


def adaptive_windows(size: int, out_size: int) -> list[slice]:
    """PyTorch's adaptive windows: output i averages [floor(i*size/out), ceil((i+1)*size/out))."""
    return [slice(i * size // out_size, -(-(i + 1) * size // out_size)) for i in range(out_size)]


def _adaptive_arguments(x, output_size):
    x = batch_array(x, "x", ndim=4)
    output_size = int_pair(output_size, "output_size", minimum=1)
    return x, output_size


def adaptive_avg_pool2d_forward(x, output_size):
    """x (N, C, H, W) -> (N, C, OH, OW), each output the mean of its adaptive window.

    Equal windows (OH divides H and OW divides W) are an ordinary average
    pooling. Uneven ones are separable: the mean over rows r_i and columns
    c_j is out = R x C^T, with R (OH, H) holding 1/|r_i| on window i's rows
    and C (OW, W) likewise, two matrix products over the whole batch.
    """
    x, (OH, OW) = _adaptive_arguments(x, output_size)
    H, W = x.shape[2:]
    if (OH, OW) == (1, 1):
        out, inner = global_avg_pool_forward(x)
    elif H % OH == 0 and W % OW == 0:  # equal windows: an ordinary average pooling
        out, inner = avg_pool2d_forward(x, (H // OH, W // OW))
    else:
        rows, cols = adaptive_matrix(H, OH, x.dtype), adaptive_matrix(W, OW, x.dtype)
        out, inner = rows @ (x @ cols.T), None
    return out, AdaptivePoolCache(x.shape, (OH, OW), inner)


def adaptive_avg_pool2d_backward(dout, cache: AdaptivePoolCache):
    """dx (N, C, H, W): each output's dout, divided by its window's size, to every pixel in it (R^T dout C)."""
    if cache.inner is None:
        N, C, H, W = cache.x_shape
        dout = _check_adaptive_dout(dout, cache)
        OH, OW = cache.output_size
        rows, cols = adaptive_matrix(H, OH, dout.dtype), adaptive_matrix(W, OW, dout.dtype)
        return rows.T @ (dout @ cols)
    if cache.inner.geom is None:
        return global_avg_pool_backward(dout, cache.inner)
    return avg_pool2d_backward(dout, cache.inner)


def adaptive_matrix(size: int, out_size: int, dtype) -> np.ndarray:
    """(out_size, size): row i averages adaptive window i, 1/|window| on its pixels, 0 elsewhere."""
    weights = np.zeros((out_size, size), dtype)
    for i, window in enumerate(adaptive_windows(size, out_size)):
        weights[i, window] = 1.0 / (window.stop - window.start)
    return weights


def _check_adaptive_dout(dout, cache: AdaptivePoolCache) -> np.ndarray:
    return upstream_gradient(dout, "dout", cache.x_shape[:2] + tuple(cache.output_size), ndim=4)


def adaptive_avg_pool2d_forward_naive(x, output_size):
    """One output cell at a time (vectorized over images and channels)."""
    x, (OH, OW) = _adaptive_arguments(x, output_size)
    rows, cols = adaptive_windows(x.shape[2], OH), adaptive_windows(x.shape[3], OW)
    out = np.zeros(x.shape[:2] + (OH, OW), x.dtype)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            out[:, :, i, j] = x[:, :, r, c].mean(axis=(2, 3))
    return out, AdaptivePoolCache(x.shape, (OH, OW), None)


def adaptive_avg_pool2d_backward_naive(dout, cache: AdaptivePoolCache):
    """Loop version of adaptive_avg_pool2d_backward: same signature, same dx; takes the cache of either forward.

    dout (N, C, OH, OW) -> dx (N, C, H, W). Loops over output cells (i, j), vectorized over
    images and channels; each adds its dout, divided by its window's size, to every pixel of
    its window:

        rows floor(i*H/OH) .. ceil((i+1)*H/OH) - 1, columns floor(j*W/OW) .. ceil((j+1)*W/OW) - 1

    Raises ValueError when dout is not (N, C, OH, OW).
    """
    N, C, H, W = cache.x_shape
    OH, OW = cache.output_size
    dout = _check_adaptive_dout(dout, cache)
    dx = np.zeros(cache.x_shape, dout.dtype)
    for i, r in enumerate(adaptive_windows(H, OH)):
        for j, c in enumerate(adaptive_windows(W, OW)):
            count = (r.stop - r.start) * (c.stop - c.start)
            dx[:, :, r, c] += dout[:, :, i, j, None, None] / count
    return dx
