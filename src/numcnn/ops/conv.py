"""2-D convolution: forward and backward, a loop version and a GEMM version.

Like every CNN framework, "convolution" here is cross-correlation:

    out[n, f, i, j] = b[f] + sum_{c, u, v} w[f, c, u, v] * xp[n, g*Cg + c, i*sh + u*dh, j*sw + v*dw]

with xp the zero-padded input, g = f // (F / groups) the group of filter f
and Cg = C / groups the channels each filter sees. Shapes:

    x (N, C, H, W), w (F, C/groups, KH, KW), b (F,) or None -> out (N, F, OH, OW)

The backward pass follows from the same sum:

    db[f]          = sum_{n,i,j} dout[n, f, i, j]
    dw[f, c, u, v] = sum_{n,i,j} dout[n, f, i, j] * xp[n, g*Cg + c, i*sh + u*dh, j*sw + v*dw]
    dxp[n, g*Cg + c, i*sh + u*dh, j*sw + v*dw] += dout[n, f, i, j] * w[f, c, u, v]

The fast version turns each sum into a GEMM over im2col patches (see
windows.py), a chunk of images at a time. It returns arrays of shape
(N, F, OH, OW) whose memory is channels-last when that made the GEMM
cheaper: the values are the same, and the next layer reads them without a
transpose (PyTorch calls this the channels_last memory format).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import windows as win
from . import winograd
from ..checks import batch_array, float_array, optional_float_array, positive_int, upstream_gradient
from .parallel import map_chunks, num_threads, vector_sums

# Below this many channels per group a channels-last patch copy moves too few
# contiguous numbers at a time; copying rows of OW pixels wins instead.
CHANNELS_LAST_MIN = 16


class Conv2dCache(NamedTuple):
    x: np.ndarray
    w: np.ndarray
    b: np.ndarray | None
    geom: win.WindowGeometry
    groups: int


def conv2d_arguments(x, w, b, stride, pad, dilation, groups, *, transposed: bool = False):
    """Validate a convolution's arguments; return (x, w, b, geometry, groups).

    For a transposed convolution the weight is (C_in, F/groups, KH, KW) and
    the geometry returned is that of the ordinary convolution it transposes,
    which the caller builds itself; here only shapes are checked.
    """
    x = batch_array(x, "x", ndim=4)
    w = float_array(w, "w", ndim=4, integers_ok=True).astype(x.dtype, copy=False)
    groups = positive_int(groups, "groups")
    N, C, H, W = x.shape
    if C % groups:
        raise ValueError(f"x has {C} channels, which groups={groups} does not divide; "
                         f"channels must be a multiple of groups")
    if transposed:
        if w.shape[0] != C:
            raise ValueError(
                f"w must have shape ({C}, F/groups, KH, KW) for x with {C} channels, got {w.shape}"
            )
        F = w.shape[1] * groups
    else:
        F = w.shape[0]
        if F % groups:
            raise ValueError(f"w has {F} filters, which groups={groups} does not divide; "
                             f"filters must be a multiple of groups")
        if w.shape[1] != C // groups:
            raise ValueError(
                f"w must have shape ({F}, {C // groups}, KH, KW) for x with {C} channels "
                f"and groups={groups}, got {w.shape}"
            )
    b = optional_float_array(b, "b", (F,))
    if b is not None:
        b = b.astype(x.dtype, copy=False)
    return x, w, b, groups


def _geometry(x, w, stride, pad, dilation) -> win.WindowGeometry:
    return win.window_geometry(x.shape[2:], w.shape[2:], stride, pad, dilation,
                               kernel_name="kernel size (w.shape[2:])")


# ---------------------------------------------------------------------------
# The loop version: the sums above, written out.
# ---------------------------------------------------------------------------

def conv2d_forward_naive(x, w, b, stride=1, pad=0, dilation=1, groups=1):
    """Convolution by explicit loops over images, filters and output pixels."""
    x, w, b, groups = conv2d_arguments(x, w, b, stride, pad, dilation, groups)
    geom = _geometry(x, w, stride, pad, dilation)
    top, bottom, left, right = geom.pad
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    N, C = x.shape[:2]
    F = w.shape[0]
    OH, OW = geom.out_hw
    filters_per_group, channels_per_group = F // groups, C // groups
    out = np.zeros((N, F, OH, OW), x.dtype)
    for n in range(N):
        for f in range(F):
            g = f // filters_per_group
            channels = slice(g * channels_per_group, (g + 1) * channels_per_group)
            for i in range(OH):
                for j in range(OW):
                    rows, cols = _receptive_field(geom, i, j)
                    window = xp[n, channels, rows, cols]
                    out[n, f, i, j] = np.sum(window * w[f]) + (b[f] if b is not None else 0)
    return out, Conv2dCache(x, w, b, geom, groups)


def conv2d_backward_naive(dout, cache: Conv2dCache):
    """Gradients by the same loops: each output pixel sends dout back to its window."""
    x, w, b, geom, groups = cache
    dout = _check_dout(dout, x.shape[0], w.shape[0], geom)
    top, bottom, left, right = geom.pad
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    N, C = x.shape[:2]
    F = w.shape[0]
    OH, OW = geom.out_hw
    filters_per_group, channels_per_group = F // groups, C // groups
    for n in range(N):
        for f in range(F):
            g = f // filters_per_group
            channels = slice(g * channels_per_group, (g + 1) * channels_per_group)
            for i in range(OH):
                for j in range(OW):
                    rows, cols = _receptive_field(geom, i, j)
                    dw[f] += xp[n, channels, rows, cols] * dout[n, f, i, j]
                    dxp[n, channels, rows, cols] += w[f] * dout[n, f, i, j]
    H, W = geom.in_hw
    dx = dxp[:, :, top:top + H, left:left + W]
    db = dout.sum(axis=(0, 2, 3)) if b is not None else None
    return dx, dw, db


def _receptive_field(geom: win.WindowGeometry, i: int, j: int) -> tuple[slice, slice]:
    """Padded rows and columns that output pixel (i, j) reads."""
    (KH, KW), (sh, sw), (dh, dw) = geom.kernel, geom.stride, geom.dilation
    return (slice(i * sh, i * sh + dh * (KH - 1) + 1, dh),
            slice(j * sw, j * sw + dw * (KW - 1) + 1, dw))


def _check_dout(dout, N, F, geom):
    return upstream_gradient(dout, "dout", (N, F, *geom.out_hw), ndim=4)


# ---------------------------------------------------------------------------
# The GEMM version. Three engines, shared with the transposed convolution:
#   conv_output       out = x (*) w          (im2col, then patches @ weights)
#   conv_input_grad   dx from dout and w     (dout @ weights^T, then col2im)
#   conv_weight_grad  dw from x and dout     (patches^T @ dout)
# ---------------------------------------------------------------------------

def conv2d_forward(x, w, b, stride=1, pad=0, dilation=1, groups=1):
    """Fast convolution. x (N, C, H, W), w (F, C/groups, KH, KW), b (F,) or None.

    stride, dilation: int or (sh, sw); pad: int, (ph, pw), 'same' or 'valid'.
    Returns out (N, F, OH, OW) and a Conv2dCache for conv2d_backward.
    """
    x, w, b, groups = conv2d_arguments(x, w, b, stride, pad, dilation, groups)
    geom = _geometry(x, w, stride, pad, dilation)
    if prefers_channels_last(x.shape[1], groups):
        x = channels_last_copy(x)  # once, for the forward and the weight gradient
    out = conv_output(x, w, geom, groups)
    if b is not None:
        out += b[:, None, None]
    return out, Conv2dCache(x, w, b, geom, groups)


def conv2d_backward(dout, cache: Conv2dCache, input_grad: bool = True):
    """Returns dx (N, C, H, W), dw (F, C/groups, KH, KW), db (F,) or None.

    input_grad=False skips dx (returned as None): a network's first layer
    needs no gradient with respect to the images.
    """
    x, w, b, geom, groups = cache
    dout = _check_dout(dout, x.shape[0], w.shape[0], geom).astype(x.dtype, copy=False)
    if prefers_channels_last(x.shape[1], groups):
        dout = channels_last_copy(dout)  # both engines read dout as (M, F) rows
    dx = conv_input_grad(dout, w, geom, groups, channels=x.shape[1]) if input_grad else None
    dw = conv_weight_grad(x, dout, geom, groups, w.shape)
    db = bias_grad(dout) if b is not None else None
    return dx, dw, db


# Channels moved per pass of channels_last_copy: a 16-channel slab of each
# image stays in cache while its pixels are interleaved (measured 2x faster
# than one transposing copy of the whole array, which strides through memory).
TRANSPOSE_BLOCK = 16


def channels_last_copy(x: np.ndarray) -> np.ndarray:
    """x (N, C, H, W) with channels-last memory: a view if it already is, else one copy."""
    if x.transpose(0, 2, 3, 1).flags.c_contiguous:
        return x
    N, C, H, W = x.shape
    rows = np.empty((N, H, W, C), x.dtype)
    for c in range(0, C, TRANSPOSE_BLOCK):
        np.copyto(rows[..., c:c + TRANSPOSE_BLOCK], x[:, c:c + TRANSPOSE_BLOCK].transpose(0, 2, 3, 1))
    return rows.transpose(0, 3, 1, 2)


def bias_grad(dout: np.ndarray) -> np.ndarray:
    """db[f] = sum of dout[:, f] over images and pixels.

    As matrix-vector products over whichever axis is contiguous: NumPy's
    axis sum would loop over rows of only F numbers for channels-last dout.
    """
    N, F = dout.shape[:2]
    if win.is_channels_last(dout):
        return vector_sums(dout.transpose(0, 2, 3, 1).reshape(-1, F), axis=0)
    maps = dout.reshape(N * F, -1)  # one row per (image, filter) feature map
    return vector_sums(maps, axis=1).reshape(N, F).sum(axis=0)


def prefers_channels_last(channels: int, groups: int) -> bool:
    return channels // groups >= CHANNELS_LAST_MIN


def weight_matrix(w: np.ndarray, groups: int, channels_last: bool) -> np.ndarray:
    """w (F, Cg, KH, KW) as per-group GEMM operands (G, Kg, Fg), rows in patch order."""
    F, cg, KH, KW = w.shape
    grouped = w.reshape(groups, F // groups, cg, KH, KW)
    if channels_last:  # patch order (kh, kw, c)
        return grouped.transpose(0, 3, 4, 2, 1).reshape(groups, KH * KW * cg, F // groups)
    return grouped.reshape(groups, F // groups, cg * KH * KW).transpose(0, 2, 1)


def weight_from_matrix(wm: np.ndarray, w_shape, groups: int, channels_last: bool) -> np.ndarray:
    """Inverse of weight_matrix."""
    F, cg, KH, KW = w_shape
    if channels_last:
        grouped = wm.reshape(groups, KH, KW, cg, F // groups).transpose(0, 4, 3, 1, 2)
    else:
        grouped = wm.transpose(0, 2, 1).reshape(groups, F // groups, cg, KH, KW)
    return np.ascontiguousarray(grouped.reshape(w_shape))


def _dout_per_image(dout_chunk: np.ndarray, groups: int) -> np.ndarray:
    """A chunk of dout (n, F, OH, OW), any memory layout, as (n, G, Fg, OH*OW) GEMM operands."""
    n, F, OH, OW = dout_chunk.shape
    return dout_chunk.reshape(n, groups, F // groups, OH * OW)


def _dout_matrix(dout_chunk: np.ndarray, groups: int) -> np.ndarray:
    """A chunk of dout (n, OH, OW, F) as per-group GEMM operands (G, M, Fg)."""
    n, OH, OW, F = dout_chunk.shape
    return dout_chunk.reshape(n * OH * OW, groups, F // groups).transpose(1, 0, 2)


def conv_output(x, w, geom: win.WindowGeometry, groups: int,
                channels_last: bool | None = None, *, fast_algorithms: bool = True) -> np.ndarray:
    """x (N, C, H, W) convolved with w (F, C/groups, KH, KW), no bias.

    The result's memory is channels-last (N, OH, OW, F); it is returned as
    an (N, F, OH, OW) view. fast_algorithms=False keeps to im2col (the
    direct sum), which Winograd falls back to for inputs beyond its range.
    """
    N, C = x.shape[:2]
    F = w.shape[0]
    OH, OW = geom.out_hw
    if channels_last is None:
        channels_last = prefers_channels_last(C, groups)
    out = np.empty((N, OH, OW, F), x.dtype)
    if fast_algorithms and channels_last and winograd.applies(geom, groups, C, F):
        def direct(start, stop):
            part = conv_output(x[start:stop], w, geom, groups, True, fast_algorithms=False)
            out[start:stop] = part.transpose(0, 2, 3, 1)

        winograd.forward(win.to_layout(x, True), w, geom, out, direct)
        return out.transpose(0, 3, 1, 2)
    wm = weight_matrix(w, groups, channels_last)
    x_l = win.to_layout(x, channels_last)
    threads = _threads(channels_last, w.shape, groups)
    n_chunk = win.chunk_size(N, OH * OW * wm.shape[1] * groups * x.itemsize, threads)

    def chunk(start, stop):
        cols = _patches(x_l[start:stop], geom, groups, channels_last, n_chunk)
        if channels_last:  # (G, M, Kg) @ (G, Kg, Fg)
            np.matmul(cols, wm, out=_dout_matrix(out[start:stop], groups))
        else:  # per image: (G, P, Kg) @ (G, Kg, Fg)
            target = out[start:stop].reshape(stop - start, OH * OW, groups, F // groups)
            np.matmul(cols.transpose(0, 1, 3, 2), wm, out=target.transpose(0, 2, 1, 3))

    map_chunks(chunk, win.chunk_ranges(N, n_chunk), threads)
    return out.transpose(0, 3, 1, 2)


def _patches(x_chunk, geom, groups, channels_last, n_chunk) -> np.ndarray:
    """im2col of a chunk (layout order) into this thread's scratch: (G, M, Kg)."""
    n, C = x_chunk.shape[0], x_chunk.shape[3 if channels_last else 1]
    pad_buffer = win.new_pad_buffer(n_chunk, C, geom, channels_last, x_chunk.dtype)
    xp = win.padded_chunk(x_chunk, geom, channels_last, pad_buffer)
    cols = _first(win.new_cols(n_chunk, C, groups, geom, channels_last, x_chunk.dtype), n, channels_last)
    return win.im2col(xp, geom, groups, channels_last, cols)


def conv_input_grad(dout, w, geom: win.WindowGeometry, groups: int, channels: int,
                    channels_last: bool | None = None) -> np.ndarray:
    """dx (N, C, H, W) of a convolution, from dout (N, F, OH, OW) and w.

    With stride 1 the input gradient is itself a convolution: dout, padded
    by d*(k-1) - p on each side, correlated with the kernel flipped in space
    and with its in/out channels swapped. That reuses the forward GEMM and
    needs no col2im. Strided convolutions scatter through col2im instead.
    """
    if channels_last is None:
        channels_last = prefers_channels_last(channels, groups)
    # The flipped convolution writes dx channels-last; with few input
    # channels its GEMM is too thin to pay, and col2im is cheaper.
    if geom.stride == (1, 1) and channels_last:
        full_pad = _full_padding(geom)
        if full_pad is not None:
            flipped = _flipped_transposed(w, groups)
            full = win.WindowGeometry(in_hw=geom.out_hw, out_hw=geom.in_hw, kernel=geom.kernel,
                                      stride=(1, 1), dilation=geom.dilation, pad=full_pad)
            return conv_output(dout, flipped, full, groups)
    return _scatter_input_grad(dout, w, geom, groups, channels, channels_last)


def _full_padding(geom: win.WindowGeometry):
    """Padding (top, bottom, left, right) of dout for the stride-1 input gradient.

    Top/left is d*(k-1) - p; bottom/right follows from the sizes, so that the
    flipped convolution returns exactly in_hw rows and columns (a transposed
    convolution's output_padding lands there). None when the forward padding
    exceeds the kernel span (negative padding, i.e. cropping): col2im then.
    """
    (KH, KW), (dh, dw) = geom.kernel, geom.dilation
    (H, W), (OH, OW) = geom.in_hw, geom.out_hw
    top, left = dh * (KH - 1) - geom.pad[0], dw * (KW - 1) - geom.pad[2]
    full = (top, H + dh * (KH - 1) - OH - top, left, W + dw * (KW - 1) - OW - left)
    return full if min(full) >= 0 else None


def _flipped_transposed(w: np.ndarray, groups: int) -> np.ndarray:
    """w (F, Cg, KH, KW) -> (C, Fg, KH, KW): channels swapped per group, taps reversed."""
    F, cg, KH, KW = w.shape
    swapped = w.reshape(groups, F // groups, cg, KH, KW).transpose(0, 2, 1, 3, 4)
    return swapped.reshape(groups * cg, F // groups, KH, KW)[:, :, ::-1, ::-1]


def _scatter_input_grad(dout, w, geom, groups, channels, channels_last) -> np.ndarray:
    """dx by dout @ weights^T (the patch gradients), added back with col2im."""
    N = dout.shape[0]
    H, W = geom.in_hw
    (OH, OW), (KH, KW) = geom.out_hw, geom.kernel
    dout_l = dout.transpose(0, 2, 3, 1)
    dx = np.empty((N, H, W, channels) if channels_last else (N, channels, H, W), dout.dtype)
    if channels_last:
        # One (Fg, Cg) weight matrix per kernel tap and group: (KH*KW, G, Fg, Cg)
        F, cg = w.shape[:2]
        wt = w.reshape(groups, F // groups, cg, KH * KW).transpose(3, 0, 1, 2)
    else:
        wm = weight_matrix(w, groups, channels_last=False)
    threads = _threads(channels_last, w.shape, groups)
    n_chunk = win.chunk_size(N, OH * OW * KH * KW * channels * dout.itemsize, threads)
    tap_list = win.taps(geom)

    def chunk(start, stop):
        n = stop - start
        target = dx[start:stop]
        target[...] = 0
        if channels_last:
            d = _dout_matrix(dout_l[start:stop], groups)
            cols = win.new_tap_cols(n_chunk, channels, geom, dout.dtype)[:, :n]
            per_tap = cols.reshape(KH * KW, d.shape[1], groups, -1).transpose(0, 2, 1, 3)
            np.matmul(d[None], wt, out=per_tap)
            win.col2im_taps(cols, tap_list, target)
        else:  # per image: (G, Kg, Fg) @ (G, Fg, P)
            cols = _first(win.new_cols(n_chunk, channels, groups, geom, False, dout.dtype), n, False)
            np.matmul(wm, _dout_per_image(dout[start:stop], groups),
                      out=cols.reshape(n, groups, -1, OH * OW))
            win.col2im(cols, tap_list, target)

    map_chunks(chunk, win.chunk_ranges(N, n_chunk), threads)
    return win.from_layout(dx, channels_last)


def conv_weight_grad(x, dout, geom: win.WindowGeometry, groups: int, w_shape,
                     channels_last: bool | None = None, *, fast_algorithms: bool = True) -> np.ndarray:
    """dw (F, C/groups, KH, KW) of a convolution, from x and dout (fast_algorithms: as conv_output)."""
    N, C = x.shape[:2]
    if channels_last is None:
        channels_last = prefers_channels_last(C, groups)
    OH, OW = geom.out_hw
    KH, KW = geom.kernel
    x_l = win.to_layout(x, channels_last)
    dout_l = dout.transpose(0, 2, 3, 1)
    if fast_algorithms and channels_last and winograd.applies(geom, groups, C, w_shape[0]):
        def direct(start, stop):
            return conv_weight_grad(x[start:stop], dout[start:stop], geom, groups, w_shape, True,
                                    fast_algorithms=False)

        return winograd.weight_grad(x_l, dout_l, geom, w_shape, direct)
    threads = _threads(channels_last, w_shape, groups)
    n_chunk = win.chunk_size(N, OH * OW * KH * KW * C * x.itemsize, threads)

    def chunk(start, stop):
        cols = _patches(x_l[start:stop], geom, groups, channels_last, n_chunk)
        if channels_last:  # (G, Kg, M) @ (G, M, Fg)
            return np.matmul(cols.transpose(0, 2, 1), _dout_matrix(dout_l[start:stop], groups))
        # per image (G, Kg, P) @ (G, P, Fg), summed over the chunk's images
        per_image = np.matmul(cols, _dout_per_image(dout[start:stop], groups).transpose(0, 1, 3, 2))
        return per_image.sum(axis=0)

    # Summed in a fixed order (chunks within a worker, then workers): reproducible.
    dwm = sum(sum(partials) for partials in map_chunks(chunk, win.chunk_ranges(N, n_chunk), threads))
    return weight_from_matrix(dwm, w_shape, groups, channels_last)


# A layer with fewer weights per group than this has GEMMs too thin for BLAS's
# own threads to pay; see _threads.
THIN_LAYER_WEIGHTS = 10_000


def _threads(channels_last: bool, w_shape, groups: int) -> int:
    """Workers for an engine's chunks, given the layer's weight shape.

    Two ways to use the cores: split the chunks over threads (BLAS held to
    one thread each), or run chunks in turn with every core inside each
    GEMM. Measured on 2 cores (BENCHMARKS.md): chunk threads win only for
    thin layers (16-32 channels), whose time goes to NumPy copies that BLAS
    cannot share out; layers with more weights run up to 2x faster on BLAS's
    threads, since two single-threaded GEMMs side by side fight over the
    shared cache. Channels-first engines (few channels per group: RGB stems,
    depthwise layers) always split their chunks: their GEMMs are one small
    product per image, too small for BLAS's threads to share without
    costing more than they save (forward and backward on 2 cores: CS231n's
    conv layer 1.4-1.8x faster, a 7x7 stem 1.1-1.6x, a depthwise layer 1.7x).
    """
    if not channels_last:
        return num_threads()
    thin = math.prod(w_shape) // groups < THIN_LAYER_WEIGHTS
    return num_threads() if thin else 1


def _first(col_buffer: np.ndarray, n: int, channels_last: bool) -> np.ndarray:
    """A contiguous patch buffer for the n images of a chunk (the last may be short)."""
    if not channels_last:
        return col_buffer[:n]  # the image axis is outermost
    if n == col_buffer.shape[1] or col_buffer.shape[0] == 1:
        return col_buffer[:, :n]  # one group: the image axis is outermost after it
    return np.empty((col_buffer.shape[0], n) + col_buffer.shape[2:], col_buffer.dtype)
