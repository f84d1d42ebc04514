"""Max pooling with PyTorch's semantics, and the window geometry every pooling op shares.

For a kernel (KH, KW), stride s, padding p and dilation d, output pixel (i, j)
looks at the window of padded pixels (i*sh + u*dh, j*sw + v*dw), u < KH, v < KW:

    max:  out[n, c, i, j] = max over the window        (padding counts as -inf)

The gradient of a max goes to one position: where the window holds the
maximum more than once, to the first in raster order (row by row), the
position PyTorch picks. Shapes: x (N, C, H, W) -> out (N, C, OH, OW); stride
defaults to the kernel size. Average, global and adaptive pooling are in
avg_pool.py, on the helpers here (PoolCache, pool_geometry, padding, blocks).

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
    """What a pooling forward keeps for its backward: max, average and global average pooling.

    Attributes:
        x: The input (N, C, H, W), in the memory layout it came in.
        out: The output (N, C, OH, OW): dout must have its shape, and max pooling's fast
            backward finds each window's maximum by comparing the window with it.
        geom: The window geometry (sizes, kernel, stride, dilation, padding); None for
            global average pooling.
        count: Average pooling's divisor: an int (`KH*KW`, or `H*W` for global pooling)
            or an (OH, OW) array of each window's real pixels when count_include_pad is
            False; 1 for max pooling, which does not use it.
    """

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


def _windows_naive(geom: WindowGeometry):
    """Every output pixel (i, j) with the padded rows and columns it reads."""
    OH, OW = geom.out_hw
    for i in range(OH):
        for j in range(OW):
            yield i, j, receptive_field(geom, i, j)


def max_pool2d_forward_naive(x, kernel_size, stride=None, pad=0, dilation=1):
    """Loop version of max_pool2d_forward: same signature, same output and PoolCache.

    x (N, C, H, W) -> out (N, C, OH, OW). Loops over images, channels and output pixels,
    taking the maximum of one window at a time, padding counting as -inf:

        out[n, c, i, j] = max over u < KH, v < KW of xp[n, c, i*sh + u*dh, j*sw + v*dw]

    kernel_size, stride (default: kernel_size), pad and dilation are ints or (height, width)
    pairs. Raises ValueError for an x that is not a non-empty 4-d float array, a pad above
    half the kernel (PyTorch's rule), or a window larger than the padded input.
    """
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
    """Loop version of max_pool2d_backward: same signature and cache, same dx.

    dout (N, C, OH, OW) -> dx (N, C, H, W). Loops over images, channels and output pixels;
    each window's dout goes to the one pixel PyTorch picks, found by scanning the window's
    in-image pixels in raster order: the first holding the maximum (a NaN takes over: the
    last NaN). A window lying wholly in the padding sends its gradient nowhere. Raises
    ValueError when dout does not have the forward output's shape.
    """
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
