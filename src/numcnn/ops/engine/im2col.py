"""The convolution engines: each sum of a convolution as GEMMs, a chunk of images at a time.

Three engines, shared by conv2d and conv_transpose2d (which swaps their roles):

    conv_output       out = x (*) w          im2col, then patches @ weights (or Winograd)
    conv_input_grad   dx from dout and w     stride 1: the convolution of dout with the flipped
                                             kernel; else dout @ weights^T, then col2im
    conv_weight_grad  dw from x and dout     patches^T @ dout (or Winograd)

Each works in a Layout (layout.py) chosen from the channels per group, and
splits the images in chunks of about tuning.CHUNK_BYTES of patches, which
run on threads or on BLAS's threads as the layout decides. Results are
(N, F, OH, OW)-shaped arrays whose memory is channels-last: the next layer
reads them without a transpose (PyTorch's channels_last memory format).
"""

from __future__ import annotations

import numpy as np

from . import winograd
from .geometry import WindowGeometry, flipped_geometry, taps_inside
from .layout import CHANNELS_LAST, Layout, is_channels_last, layout_for
from .threads import chunk_ranges, chunk_size, map_chunks, summed_in_order, vector_sums


def conv_output(
    x: np.ndarray,
    w: np.ndarray,
    geom: WindowGeometry,
    groups: int,
    layout: Layout | None = None,
    *,
    with_winograd: bool = True,
) -> np.ndarray:
    """x convolved with w, no bias: out (N, F, OH, OW), its memory channels-last (N, OH, OW, F).

    Parameters
    ----------
    x : (N, C, H, W), any memory layout (channels-last is read without a copy)
    w : (F, C/groups, KH, KW)
    geom : the window geometry, geom.in_hw = (H, W)
    groups : channel groups
    layout : the patch layout; by default layout_for(C, groups)
    with_winograd : False keeps to im2col (the direct sum), which Winograd
        falls back to for inputs beyond its range

    Returns
    -------
    out : (N, F, OH, OW) with OH, OW = geom.out_hw
    """
    N, C = x.shape[:2]
    F = w.shape[0]
    OH, OW = geom.out_hw
    layout = layout or layout_for(C, groups)
    out = np.empty((N, OH, OW, F), x.dtype)
    if with_winograd and layout is CHANNELS_LAST and winograd.applies(geom, groups, C, F):

        def direct(start, stop):
            part = conv_output(x[start:stop], w, geom, groups, CHANNELS_LAST, with_winograd=False)
            out[start:stop] = part.transpose(0, 2, 3, 1)

        winograd.forward(CHANNELS_LAST.view(x), w, geom, out, direct)
        return out.transpose(0, 3, 1, 2)
    wm = layout.weight_matrix(w, groups)
    x_l = layout.view(x)
    threads = layout.threads(w.shape, groups)
    n_chunk = chunk_size(N, OH * OW * wm.shape[1] * groups * x.itemsize, threads)

    def chunk(start, stop):
        cols = layout.patches(x_l[start:stop], geom, groups, n_chunk)
        layout.multiply_into(cols, wm, out[start:stop], groups)

    map_chunks(chunk, chunk_ranges(N, n_chunk), threads)
    return out.transpose(0, 3, 1, 2)


def conv_input_grad(
    dout: np.ndarray, w: np.ndarray, geom: WindowGeometry, groups: int, channels: int, layout: Layout | None = None
) -> np.ndarray:
    """dx (N, C, H, W) of a convolution, from dout (N, F, OH, OW) and w (F, C/groups, KH, KW).

    Parameters
    ----------
    dout : (N, F, OH, OW), OH, OW = geom.out_hw
    w : (F, C/groups, KH, KW)
    geom : the forward's window geometry
    groups : channel groups
    channels : C, the forward input's channels
    layout : the patch layout; by default layout_for(C, groups)

    Returns
    -------
    dx : (N, C, H, W), H, W = geom.in_hw, memory in the layout's order

    With stride 1 the input gradient is itself a convolution: dout, padded
    by d*(k-1) - p on each side, correlated with the kernel flipped in space
    and with its in/out channels swapped. That reuses the forward GEMM and
    needs no col2im. The flipped convolution writes dx channels-last; with
    few input channels its GEMM is too thin to pay, and col2im is cheaper.
    """
    layout = layout or layout_for(channels, groups)
    full = flipped_geometry(geom) if layout is CHANNELS_LAST else None
    if full is not None:
        return conv_output(dout, flipped_transposed(w, groups), full, groups)
    return _scattered_input_grad(dout, w, geom, groups, channels, layout)


def flipped_transposed(w: np.ndarray, groups: int) -> np.ndarray:
    """w (F, Cg, KH, KW) -> (C, Fg, KH, KW): channels swapped per group, taps reversed."""
    F, cg, KH, KW = w.shape
    swapped = w.reshape(groups, F // groups, cg, KH, KW).transpose(0, 2, 1, 3, 4)
    return swapped.reshape(groups * cg, F // groups, KH, KW)[:, :, ::-1, ::-1]


def _scattered_input_grad(dout, w, geom, groups, channels, layout: Layout) -> np.ndarray:
    """dx by dout @ weights^T (the patch gradients), added back with col2im."""
    N = dout.shape[0]
    (OH, OW), (KH, KW) = geom.out_hw, geom.kernel
    dx = np.empty(layout.padded_shape(N, channels, geom.in_hw), dout.dtype)
    weights = layout.input_grad_weights(w, groups)
    threads = layout.threads(w.shape, groups)
    n_chunk = chunk_size(N, OH * OW * KH * KW * channels * dout.itemsize, threads)
    taps = taps_inside(geom)

    def chunk(start, stop):
        target = dx[start:stop]
        target[...] = 0
        layout.add_input_grad(dout[start:stop], weights, geom, groups, channels, n_chunk, taps, target)

    map_chunks(chunk, chunk_ranges(N, n_chunk), threads)
    return layout.nchw(dx)


def conv_weight_grad(
    x: np.ndarray,
    dout: np.ndarray,
    geom: WindowGeometry,
    groups: int,
    w_shape,
    layout: Layout | None = None,
    *,
    with_winograd: bool = True,
) -> np.ndarray:
    """dw of a convolution, from x and dout.

    Parameters
    ----------
    x : (N, C, H, W), the forward's input
    dout : (N, F, OH, OW), OH, OW = geom.out_hw
    geom : the forward's window geometry
    groups : channel groups
    w_shape : (F, C/groups, KH, KW)
    layout, with_winograd : as for conv_output

    Returns
    -------
    dw : (F, C/groups, KH, KW), contiguous
    """
    N, C = x.shape[:2]
    layout = layout or layout_for(C, groups)
    OH, OW = geom.out_hw
    KH, KW = geom.kernel
    x_l = layout.view(x)
    if with_winograd and layout is CHANNELS_LAST and winograd.applies(geom, groups, C, w_shape[0]):

        def direct(start, stop):
            return conv_weight_grad(
                x[start:stop], dout[start:stop], geom, groups, w_shape, CHANNELS_LAST, with_winograd=False
            )

        return winograd.weight_grad(x_l, CHANNELS_LAST.view(dout), geom, w_shape, direct)
    threads = layout.threads(w_shape, groups)
    n_chunk = chunk_size(N, OH * OW * KH * KW * C * x.itemsize, threads)

    def chunk(start, stop):
        cols = layout.patches(x_l[start:stop], geom, groups, n_chunk)
        return layout.weight_grad_part(cols, dout[start:stop], groups)

    dwm = summed_in_order(map_chunks(chunk, chunk_ranges(N, n_chunk), threads))
    return layout.weight_from_matrix(dwm, w_shape, groups)


def bias_grad(dout: np.ndarray) -> np.ndarray:
    """db[f] = sum of dout[:, f] over images and pixels, dout (N, F, OH, OW).

    As matrix-vector products over whichever axis is contiguous: NumPy's
    axis sum would loop over rows of only F numbers for channels-last dout.
    """
    N, F = dout.shape[:2]
    if is_channels_last(dout):
        return vector_sums(dout.transpose(0, 2, 3, 1).reshape(-1, F), axis=0)
    maps = dout.reshape(N * F, -1)  # one row per (image, filter) feature map
    return vector_sums(maps, axis=1).reshape(N, F).sum(axis=0)
