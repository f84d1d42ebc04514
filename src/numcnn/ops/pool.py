"""Pooling: max, average and global average, with PyTorch's semantics.

For a kernel (KH, KW), stride s, padding p and dilation d (max pooling only),
output pixel (i, j) looks at the window of padded pixels
(i*sh + u*dh, j*sw + v*dw), u < KH, v < KW:

    max:  out[n, c, i, j] = max over the window        (padding counts as -inf)
    avg:  out[n, c, i, j] = sum over the window / count (padding counts as 0)

where count is KH*KW, or the number of real (unpadded) pixels in the window
when count_include_pad is False. The gradient of a max goes to one position:
where the window holds the maximum more than once, to the first in raster
order (row by row), the position PyTorch picks. Shapes: x (N, C, H, W) ->
out (N, C, OH, OW); stride defaults to the kernel size.

The fast versions take the KH*KW strided slices of the padded input (one per
kernel tap) and combine them elementwise, so each pass is a single NumPy
call over a block of images and memory layout is preserved; large batches
are split in one block per core.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..checks import batch_array, int_pair, upstream_gradient
from .engine.geometry import WindowGeometry, parse_pad, receptive_field, tap_slices, window_geometry
from .engine.layout import empty_like_layout
from .engine.threads import blocks_for_threads, map_chunks


class PoolCache(NamedTuple):
    x: np.ndarray
    out: np.ndarray
    geom: WindowGeometry
    count: np.ndarray | int  # avg pooling's divisor; unused by max pooling


def check_pool_arguments(kernel_size, stride=None, pad=0, dilation=1, pad_name: str = "pad") -> None:
    """Validate the pooling hyper-parameters that do not depend on the input (modules call this
    at construction, so a bad kernel fails where the layer is built, not at its first forward)."""
    kernel = int_pair(kernel_size, "kernel_size", minimum=1)
    stride = kernel if stride is None else int_pair(stride, "stride", minimum=1)
    dilation = int_pair(dilation, "dilation", minimum=1)
    _check_pad_fits(parse_pad(pad, kernel, stride, dilation, pad_name), kernel, pad_name)


def _check_pad_fits(pad, kernel, pad_name: str = "pad") -> None:
    """PyTorch's rule, whatever the dilation: a window never lies wholly in the padding."""
    top, _, left, _ = pad
    if top > kernel[0] // 2 or left > kernel[1] // 2:
        raise ValueError(
            f"{pad_name} must be at most half of kernel_size, got {pad_name} {pad[::2]} for kernel_size {kernel}"
        )


def pool_geometry(x, kernel_size, stride, pad, dilation=1) -> WindowGeometry:
    """Validate pooling hyper-parameters, as PyTorch does, and size the output."""
    if stride is None:
        stride = kernel_size
    geom = window_geometry(x.shape[2:], kernel_size, stride, pad, dilation, kernel_name="kernel_size")
    _check_pad_fits(geom.pad, geom.kernel)
    return geom


def _pad(x: np.ndarray, geom: WindowGeometry, value: float) -> np.ndarray:
    """x padded with `value`, in x's memory layout (np.pad would make it NCHW)."""
    if not any(geom.pad):
        return x
    Hp, Wp = geom.padded_hw
    xp = empty_like_layout(x, x.shape[:2] + (Hp, Wp))
    xp.fill(value)
    _crop(xp, geom)[...] = x
    return xp


def _crop(xp: np.ndarray, geom: WindowGeometry) -> np.ndarray:
    top, _, left, _ = geom.pad
    H, W = geom.in_hw
    return xp[:, :, top : top + H, left : left + W]


def _check_dout(dout, out):
    return upstream_gradient(dout, "dout", out.shape, ndim=out.ndim)


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


def _windows_naive(geom: WindowGeometry):
    """Every output pixel (i, j) with the padded rows and columns it reads."""
    OH, OW = geom.out_hw
    for i in range(OH):
        for j in range(OW):
            yield i, j, receptive_field(geom, i, j)


def max_pool2d_forward_naive(x, kernel_size, stride=None, pad=0, dilation=1):
    x = batch_array(x, "x", ndim=4)
    geom = pool_geometry(x, kernel_size, stride, pad, dilation)
    xp = _pad(x, geom, -np.inf)
    N, C = x.shape[:2]
    out = np.zeros((N, C) + geom.out_hw, x.dtype)
    for n in range(N):
        for c in range(C):
            for i, j, (rows, cols) in _windows_naive(geom):
                out[n, c, i, j] = np.max(xp[n, c, rows, cols])
    return out, PoolCache(x, out, geom, 1)


def max_pool2d_backward_naive(dout, cache: PoolCache):
    x, out, geom, _ = cache
    dout = _check_dout(dout, out)
    xp = _pad(x, geom, -np.inf)
    inside = _pad(np.ones(x.shape[2:], bool)[None, None], geom, False)[0, 0]
    dxp = np.zeros(xp.shape, x.dtype)
    N, C = x.shape[:2]
    for n in range(N):
        for c in range(C):
            for i, j, (rows, cols) in _windows_naive(geom):
                chosen = _pytorch_argmax(xp[n, c, rows, cols], inside[rows, cols])
                if chosen is not None:  # None: the window lies wholly in the padding
                    dxp[n, c, rows, cols][chosen] += dout[n, c, i, j]
    return _crop(dxp, geom)


def _pytorch_argmax(window, inside):
    """Where PyTorch sends a window's gradient: scanning its in-image pixels in raster order,
    the first largest value (ties: the first), except that a NaN always takes over (several:
    the last); the first in-image pixel when none exceeds -inf; None when no pixel is in the image."""
    chosen, best = None, -np.inf
    for position in np.ndindex(window.shape):
        if inside[position] and (chosen is None or window[position] > best or np.isnan(window[position])):
            chosen, best = position, window[position]
    return chosen


def avg_pool2d_forward_naive(x, kernel_size, stride=None, pad=0, count_include_pad=True):
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
    x = batch_array(x, "x", ndim=4)
    N, C = x.shape[:2]
    out = np.zeros((N, C, 1, 1), x.dtype)
    for n in range(N):
        for c in range(C):
            out[n, c, 0, 0] = np.sum(x[n, c]) / x[n, c].size
    return out, PoolCache(x, out, None, x.shape[2] * x.shape[3])


def global_avg_pool_backward_naive(dout, cache: PoolCache):
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


def max_pool2d_forward(x, kernel_size, stride=None, pad=0, dilation=1):
    """x (N, C, H, W) -> out (N, C, OH, OW), the maximum of each window.

    Padding is -inf. A dilated window can step over the image entirely
    (H=1, kernel 2, dilation 2, pad 1 reads rows -1 and 1): its max is -inf
    and its gradient goes nowhere. (PyTorch 2.13 returns an index outside
    the input there, and its backward writes out of bounds.)
    """
    x = batch_array(x, "x", ndim=4)
    geom = pool_geometry(x, kernel_size, stride, pad, dilation)
    out = empty_like_layout(x, x.shape[:2] + geom.out_hw)  # keeps x's memory layout

    def images(a, b):
        xp = _pad(x[a:b], geom, -np.inf)
        taps = tap_slices(geom)
        rows, cols = taps[0]
        np.copyto(out[a:b], xp[:, :, rows, cols])
        for rows, cols in taps[1:]:
            np.maximum(out[a:b], xp[:, :, rows, cols], out=out[a:b])

    map_chunks(images, _image_blocks(x))
    return out, PoolCache(x, out, geom, 1)


def max_pool2d_backward(dout, cache: PoolCache):
    """dx (N, C, H, W): each window's dout goes to the one position PyTorch picks.

    That is the first in-image position holding the window's max, taps
    scanned in raster order; for a window holding NaN (whose max is NaN),
    its last NaN.
    """
    x, out, geom, _ = cache
    dout = _check_dout(dout, out)
    dx = empty_like_layout(x, x.shape)
    if not any(geom.pad) and not _tiles_exactly(geom):  # gradients land in dx itself, not all of it
        dx.fill(0)
    map_chunks(lambda a, b: _max_pool_backward(x[a:b], out[a:b], dout[a:b], geom, dx[a:b]), _image_blocks(x))
    return dx


def _tiles_exactly(geom: WindowGeometry) -> bool:
    """Whether the windows cover every input pixel exactly once."""
    (KH, KW), (sh, sw), (OH, OW) = geom.kernel, geom.stride, geom.out_hw
    return geom.dilation == (1, 1) and (KH, KW) == (sh, sw) and geom.in_hw == (OH * sh, OW * sw)


def _max_pool_backward(x, out, dout, geom, dx) -> None:
    """max_pool2d_backward for a block of images, written into dx.

    With padding the gradients go to a zeroed padded buffer whose crop is
    copied to dx; without, straight into dx (zeroed unless the windows tile
    the images exactly, so that every pixel is written)."""
    xp = _pad(x, geom, -np.inf)
    dxp = np.zeros_like(xp) if any(geom.pad) else dx
    (KH, KW), (sh, sw), (dh, dw) = geom.kernel, geom.stride, geom.dilation
    disjoint = sh >= dh * (KH - 1) + 1 and sw >= dw * (KW - 1) + 1
    # The gradient no tap has claimed yet. A tap holding the max takes what is
    # left of its window's dout, so a later tap that ties gets nothing: the
    # first in raster order wins. (Arrays in out's memory layout: a layout that
    # disagrees with the data's makes NumPy iterate across the grain, 5x slower.)
    unclaimed = np.empty_like(out)  # dout in out's layout (dout from a flatten is NCHW whatever out is)
    np.copyto(unclaimed, dout)
    hit = np.empty_like(out, dtype=bool)
    taps = tap_slices(geom)
    for k, (rows, cols) in enumerate(taps):
        np.equal(xp[:, :, rows, cols], out, out=hit)  # NaN windows never match: see below
        inside = _inside(geom, rows, cols)
        if inside is not None:  # padding is -inf: it must not win a window whose max is -inf
            hit &= inside
        if disjoint:  # every input pixel is in at most one window: assign
            np.multiply(unclaimed, hit, out=dxp[:, :, rows, cols])
        else:
            dxp[:, :, rows, cols] += unclaimed * hit
        if k < len(taps) - 1:  # (a ufunc, not copyto(where=): that crosses the grain of channels-last arrays)
            np.logical_not(hit, out=hit)
            np.multiply(unclaimed, hit, out=unclaimed)
    nan_windows = np.isnan(out)
    if nan_windows.any():  # rare (a diverged network): the last NaN, scanning taps backwards
        for rows, cols in reversed(taps):
            np.logical_and(np.isnan(xp[:, :, rows, cols]), nan_windows, out=hit)
            nan_windows &= ~hit
            dxp[:, :, rows, cols] += dout * hit
    if dxp is not dx:
        dx[...] = _crop(dxp, geom)


def _image_blocks(x: np.ndarray) -> list[tuple[int, int]]:
    """Image ranges, one per thread when the batch is big enough to share (pooling streams x a few
    times per tap)."""
    return blocks_for_threads(x.shape[0], x.nbytes)


def _inside(geom: WindowGeometry, rows: slice, cols: slice):
    """(OH, OW) mask of the outputs whose tap (rows, cols) reads a real pixel; None if all do."""
    (H, W), (top, _, left, _) = geom.in_hw, geom.pad
    row_index = np.arange(rows.start, rows.stop, rows.step)[: geom.out_hw[0]]
    col_index = np.arange(cols.start, cols.stop, cols.step)[: geom.out_hw[1]]
    row_ok = (row_index >= top) & (row_index < top + H)
    col_ok = (col_index >= left) & (col_index < left + W)
    if row_ok.all() and col_ok.all():
        return None
    return row_ok[:, None] & col_ok[None, :]


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
    N, C, H, W = cache.x_shape
    OH, OW = cache.output_size
    dout = _check_adaptive_dout(dout, cache)
    dx = np.zeros(cache.x_shape, dout.dtype)
    for i, r in enumerate(adaptive_windows(H, OH)):
        for j, c in enumerate(adaptive_windows(W, OW)):
            count = (r.stop - r.start) * (c.stop - c.start)
            dx[:, :, r, c] += dout[:, :, i, j, None, None] / count
    return dx
