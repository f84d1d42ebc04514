"""Sliding windows: the geometry, im2col and col2im that conv and pool share.

A 2-D window op looks at kernel-sized patches of a zero-padded image. With
stride s, dilation d and padding p (top, bottom, left, right), output row i
reads padded row i*s + u*d for kernel tap u < KH, and the output size is
PyTorch's

    OH = floor((H + p_top + p_bottom - d*(KH - 1) - 1) / s) + 1.

im2col copies the patches into a matrix so that a convolution becomes one
GEMM: a chunk of images is padded once into a reused buffer, and the
patches are one copy of a strided 6-D view of it (no index arrays). col2im
adds a matrix of patch gradients back onto the image one kernel tap (u, v)
at a time: each tap is a strided slice-add over the outputs whose window
position lands inside the image, so padding is never materialized there and
never np.add.at.

Two memory layouts are supported, because the best one depends on the
number of channels:

- channels-last: patches are rows (M, KH*KW*C), M = (n, OH, OW); every copy
  moves runs of C contiguous numbers. Best when C is large.
- channels-first: each image's patches are columns (C*KH*KW, OH*OW) in
  (c, kh, kw) order, one GEMM per image; every copy moves rows of OW
  pixels, and dout is read in whatever layout it has. Best when C is small
  (RGB input).

The work is done a chunk of images at a time so that the patch matrix
stays in cache (see chunk_size).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from numpy.lib.stride_tricks import as_strided

from . import workspace
from ..checks import int_pair

# About 4 MB of patch matrix per chunk: measured on a 2 MB-L2 / 36 MB-L3
# Xeon, larger chunks fall out of cache and smaller ones starve the GEMM.
CHUNK_BYTES = 4 << 20


class WindowGeometry(NamedTuple):
    """Where a window op reads: sizes are (height, width) pairs."""

    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad: tuple[int, int, int, int]  # top, bottom, left, right

    @property
    def padded_hw(self) -> tuple[int, int]:
        top, bottom, left, right = self.pad
        return self.in_hw[0] + top + bottom, self.in_hw[1] + left + right


def parse_pad(pad, kernel: tuple[int, int], stride: tuple[int, int],
              dilation: tuple[int, int], name: str = "pad") -> tuple[int, int, int, int]:
    """PyTorch's padding argument as (top, bottom, left, right).

    'valid' is no padding; 'same' pads d*(k-1) in total, the extra row or
    column going to the bottom/right as PyTorch does, and like PyTorch it is
    only defined for stride 1.
    """
    if isinstance(pad, str):
        if pad == "valid":
            return (0, 0, 0, 0)
        if pad == "same":
            if stride != (1, 1):
                raise ValueError(f"{name}='same' needs stride 1, got stride {stride}")
            totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
            return (totals[0] // 2, totals[0] - totals[0] // 2,
                    totals[1] // 2, totals[1] - totals[1] // 2)
        raise ValueError(f"{name} must be an int, a pair, 'same' or 'valid', got {pad!r}")
    ph, pw = int_pair(pad, name, minimum=0)
    return (ph, ph, pw, pw)


def window_geometry(in_hw, kernel, stride, pad, dilation, *, kernel_name: str = "kernel size",
                    pad_name: str = "pad") -> WindowGeometry:
    """Validate a window op's hyper-parameters and compute its output size."""
    kernel = int_pair(kernel, kernel_name, minimum=1)
    stride = int_pair(stride, "stride", minimum=1)
    dilation = int_pair(dilation, "dilation", minimum=1)
    pad = parse_pad(pad, kernel, stride, dilation, pad_name)
    H, W = in_hw
    top, bottom, left, right = pad
    span = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    padded = (H + top + bottom, W + left + right)
    if span[0] > padded[0] or span[1] > padded[1]:
        raise ValueError(
            f"{kernel_name} {kernel} with dilation {dilation} spans {span}, larger than "
            f"the padded input {padded} (input {tuple(in_hw)}, {pad_name} {pad}); "
            f"it must fit inside the padded input"
        )
    out_hw = ((padded[0] - span[0]) // stride[0] + 1, (padded[1] - span[1]) // stride[1] + 1)
    return WindowGeometry((H, W), out_hw, kernel, stride, dilation, pad)


def window_slice(geom: WindowGeometry, kh: int, kw: int) -> tuple[slice, slice]:
    """Rows and columns of the *padded* image that kernel tap (kh, kw) reads.

    Output (i, j) reads padded pixel (i*sh + kh*dh, j*sw + kw*dw); over all
    outputs that is one strided slice per axis.
    """
    (OH, OW), (sh, sw), (dh, dw) = geom.out_hw, geom.stride, geom.dilation
    r0, c0 = kh * dh, kw * dw
    return slice(r0, r0 + sh * (OH - 1) + 1, sh), slice(c0, c0 + sw * (OW - 1) + 1, sw)


def _valid_span(size: int, out_size: int, stride: int, offset: int):
    """Outputs i with 0 <= i*stride + offset < size, as (output slice, input slice) or None."""
    first = max(0, -(offset // stride))           # ceil(-offset / stride)
    last = min(out_size - 1, (size - 1 - offset) // stride)
    if first > last:
        return None
    start = first * stride + offset
    return slice(first, last + 1), slice(start, start + stride * (last - first) + 1, stride)


class Tap(NamedTuple):
    """One kernel tap: where it writes in the output grid and reads in the image."""

    index: int          # kh * KW + kw
    kh: int
    kw: int
    out_rows: slice
    out_cols: slice
    in_rows: slice
    in_cols: slice


def taps(geom: WindowGeometry) -> list[Tap]:
    """The kernel taps in raster order, each restricted to outputs that read real pixels.

    Taps that only ever read padding are left out.
    """
    (KH, KW), (H, W), (OH, OW) = geom.kernel, geom.in_hw, geom.out_hw
    (sh, sw), (dh, dw) = geom.stride, geom.dilation
    top, _, left, _ = geom.pad
    result = []
    for kh in range(KH):
        rows = _valid_span(H, OH, sh, kh * dh - top)
        for kw in range(KW):
            cols = _valid_span(W, OW, sw, kw * dw - left)
            if rows is not None and cols is not None:
                result.append(Tap(kh * KW + kw, kh, kw, rows[0], cols[0], rows[1], cols[1]))
    return result


# Below this much patch matrix per thread, handing chunks to threads costs
# more than it saves.
MIN_PARALLEL_BYTES = 256 << 10


def chunk_size(n: int, bytes_per_image: int, threads: int = 1) -> int:
    """Images per chunk: a patch matrix of about CHUNK_BYTES, and work for every thread.

    `threads` is how many workers will take the chunks; with more than one,
    chunks shrink so that each worker gets at least one (if that leaves
    each at least MIN_PARALLEL_BYTES).
    """
    size = CHUNK_BYTES // max(1, bytes_per_image)
    if threads > 1:
        per_thread = -(-n // threads)
        if per_thread * bytes_per_image >= MIN_PARALLEL_BYTES:
            size = min(size, per_thread)
    return max(1, min(n, size))


def chunk_ranges(n: int, chunk: int) -> list[tuple[int, int]]:
    """Split n images into consecutive [start, stop) chunks of `chunk` images."""
    return [(start, min(n, start + chunk)) for start in range(0, n, chunk)]


def is_channels_last(x: np.ndarray) -> bool:
    """True when an (N, C, H, W) array's memory is (N, H, W, C) and not also plain NCHW."""
    return x.transpose(0, 2, 3, 1).flags.c_contiguous and not x.flags.c_contiguous


def empty_like_layout(x: np.ndarray, shape: tuple[int, int, int, int]) -> np.ndarray:
    """An uninitialised (N, C, H, W) array of `shape` in x's memory layout."""
    if is_channels_last(x):
        N, C, H, W = shape
        return np.empty((N, H, W, C), x.dtype).transpose(0, 3, 1, 2)
    return np.empty(shape, x.dtype)


def to_layout(x: np.ndarray, channels_last: bool) -> np.ndarray:
    """View an (N, C, H, W) array as (N, H, W, C) when channels_last (no copy)."""
    return x.transpose(0, 2, 3, 1) if channels_last else x


def from_layout(x: np.ndarray, channels_last: bool) -> np.ndarray:
    """Inverse of to_layout: always returns an (N, C, H, W)-shaped view."""
    return x.transpose(0, 3, 1, 2) if channels_last else x


def new_pad_buffer(n: int, channels: int, geom: WindowGeometry, channels_last: bool,
                   dtype) -> np.ndarray | None:
    """A buffer for n padded images in layout order, border zero (None without padding)."""
    if not any(geom.pad):
        return None
    Hp, Wp = geom.padded_hw
    shape = (n, Hp, Wp, channels) if channels_last else (n, channels, Hp, Wp)
    # keyed by the padding too: the same interior is always written, so the border stays zero
    return workspace.scratch("padded", shape, dtype, zeroed_key=geom.pad)


def padded_chunk(x: np.ndarray, geom: WindowGeometry, channels_last: bool,
                 buffer: np.ndarray | None) -> np.ndarray:
    """A chunk of images in layout order, zero-padded.

    `buffer` is reused across chunks: only its interior is rewritten, so the
    zero border is written once per call of the op. Without padding the
    chunk itself is returned (its windows are views of it, whatever its
    strides).
    """
    if buffer is None:
        return x
    top, _, left, _ = geom.pad
    H, W = geom.in_hw
    target = buffer[:x.shape[0]]
    if channels_last:
        target[:, top:top + H, left:left + W, :] = x
    else:
        target[:, :, top:top + H, left:left + W] = x
    return target


def window_view(xp: np.ndarray, geom: WindowGeometry, channels_last: bool) -> np.ndarray:
    """Every window of a padded chunk as a read-only strided view.

    channels_last: xp (n, Hp, Wp, C) -> (n, OH, OW, KH, KW, C)
    channels_first: xp (n, C, Hp, Wp) -> (n, C, KH, KW, OH, OW)
    """
    (OH, OW), (KH, KW) = geom.out_hw, geom.kernel
    (sh, sw), (dh, dw) = geom.stride, geom.dilation
    if channels_last:
        n, _, _, C = xp.shape
        s_n, s_h, s_w, s_c = xp.strides
        return as_strided(xp, (n, OH, OW, KH, KW, C),
                          (s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c), writeable=False)
    n, C = xp.shape[:2]
    s_n, s_c, s_h, s_w = xp.strides
    return as_strided(xp, (n, C, KH, KW, OH, OW),
                      (s_n, s_c, s_h * dh, s_w * dw, s_h * sh, s_w * sw), writeable=False)


def new_cols(n: int, channels: int, groups: int, geom: WindowGeometry, channels_last: bool,
             dtype) -> np.ndarray:
    """A patch buffer for n images, in the layout im2col writes.

    channels_last: (G, n, OH, OW, KH, KW, Cg)   -> per group an (M, Kg) matrix
    channels_first: (n, G, Cg, KH, KW, OH, OW)  -> per image and group a (Kg, OH*OW) matrix
    """
    (OH, OW), (KH, KW) = geom.out_hw, geom.kernel
    cg = channels // groups
    if channels_last:
        return workspace.scratch("cols", (groups, n, OH, OW, KH, KW, cg), dtype)
    return workspace.scratch("cols", (n, groups, cg, KH, KW, OH, OW), dtype)


def im2col(xp: np.ndarray, geom: WindowGeometry, groups: int, channels_last: bool,
           cols: np.ndarray) -> np.ndarray:
    """Copy the windows of a padded chunk into `cols` and return them as GEMM operands.

    channels_last: (G, M, Kg), patches as rows.
    channels_first: (n, G, Kg, OH*OW), each image's patches as columns.
    """
    view = window_view(xp, geom, channels_last)
    if channels_last:
        n, OH, OW, KH, KW, C = view.shape
        grouped = view.reshape(n, OH, OW, KH, KW, groups, C // groups)
        np.copyto(cols, grouped.transpose(5, 0, 1, 2, 3, 4, 6))
        return cols.reshape(groups, n * OH * OW, -1)
    n, C, KH, KW, OH, OW = view.shape
    np.copyto(cols, view.reshape(n, groups, C // groups, KH, KW, OH, OW))
    return cols.reshape(n, groups, -1, OH * OW)


def new_tap_cols(n: int, channels: int, geom: WindowGeometry, dtype) -> np.ndarray:
    """A tap-major patch-gradient buffer (KH*KW, n, OH, OW, C) for col2im_taps."""
    (OH, OW), (KH, KW) = geom.out_hw, geom.kernel
    return workspace.scratch("tap cols", (KH * KW, n, OH, OW, channels), dtype)


def col2im_taps(cols: np.ndarray, tap_list: list[Tap], dx: np.ndarray) -> None:
    """Add tap-major patch gradients (KH*KW, n, OH, OW, C) onto a zeroed dx (n, H, W, C).

    Each kernel tap is one strided slice-add, so overlapping windows
    accumulate exactly as the chain rule requires; gradients of padded
    positions are simply never added. Tap-major order makes each source
    contiguous, so NumPy adds whole image rows at a time.
    """
    for tap in tap_list:
        dx[:, tap.in_rows, tap.in_cols, :] += cols[tap.index][:, tap.out_rows, tap.out_cols, :]


def col2im(cols: np.ndarray, tap_list: list[Tap], dx: np.ndarray) -> None:
    """Add channels-first patch gradients (n, G, Cg, KH, KW, OH, OW) onto a zeroed dx (n, C, H, W)."""
    n, G, cg = cols.shape[:3]
    for tap in tap_list:
        source = cols[:, :, :, tap.kh, tap.kw, tap.out_rows, tap.out_cols]
        dx[:, :, tap.in_rows, tap.in_cols] += source.reshape((n, G * cg) + source.shape[3:])
