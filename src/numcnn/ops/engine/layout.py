"""Memory layouts of a chunk of images, and the im2col / col2im GEMM operands each one makes.

The best layout of a convolution's patches depends on its channels:

- CHANNELS_LAST: images (n, H, W, C); patches are rows (M, KH*KW*Cg) per
  group, M = n*OH*OW, in (kh, kw, c) order; one GEMM per group for the
  whole chunk. Every copy moves runs of C contiguous numbers: best when C
  is large.
- CHANNELS_FIRST: images (n, C, H, W); each image's patches are columns
  (Cg*KH*KW, OH*OW) in (c, kh, kw) order, one GEMM per image and group.
  Every copy moves rows of OW pixels, and dout is read in whatever layout
  it has: best when C is small (RGB input, depthwise layers).

A Layout owns everything that differs between the two: how an (N, C, H, W)
array is viewed, the padded chunk, the patch matrix (im2col), the weight
matrix, dout as a GEMM operand, the GEMMs, col2im and how many threads its
chunks take. The engines in im2col.py are written once, over a Layout.

im2col copies the patches into a matrix so that a convolution becomes one
GEMM: a chunk of images is padded once into a reused buffer, and the
patches are one copy of a strided 6-D view of it (no index arrays). col2im
adds patch gradients back onto the image one kernel tap at a time: each tap
is a strided slice-add over the outputs whose window lands inside the
image, so padding is never materialized there and never np.add.at.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import scratch, threads, tuning
from .choice import chosen
from .geometry import Tap, WindowGeometry


def is_channels_last(x: np.ndarray) -> bool:
    """True when an (N, C, H, W) array's memory is (N, H, W, C) and not also plain NCHW."""
    return x.transpose(0, 2, 3, 1).flags.c_contiguous and not x.flags.c_contiguous


def empty_like_layout(x: np.ndarray, shape: tuple[int, int, int, int]) -> np.ndarray:
    """An uninitialised (N, C, H, W) array of `shape` in x's memory layout."""
    if is_channels_last(x):
        N, C, H, W = shape
        return np.empty((N, H, W, C), x.dtype).transpose(0, 3, 1, 2)
    return np.empty(shape, x.dtype)


def channels_last_copy(x: np.ndarray) -> np.ndarray:
    """x (N, C, H, W) with channels-last memory: a view if it already is, else one copy.

    tuning.TRANSPOSE_BLOCK channels at a time, so a slab of each image stays
    in cache while its pixels are interleaved (a whole-array transposing copy
    strides through memory).
    """
    if x.transpose(0, 2, 3, 1).flags.c_contiguous:
        return x
    N, C, H, W = x.shape
    rows = np.empty((N, H, W, C), x.dtype)
    block = tuning.TRANSPOSE_BLOCK
    for c in range(0, C, block):
        np.copyto(rows[..., c : c + block], x[:, c : c + block].transpose(0, 2, 3, 1))
    return rows.transpose(0, 3, 1, 2)


def grouped_rows(a: np.ndarray, groups: int) -> np.ndarray:
    """A chunk (n, OH, OW, F) in layout order as per-group GEMM operands (G, M, Fg), M = n*OH*OW."""
    n, OH, OW, F = a.shape
    return a.reshape(n * OH * OW, groups, F // groups).transpose(1, 0, 2)


class Layout(ABC):
    """What differs between the two patch layouts (see the module's docstring); ChannelsLast
    and ChannelsFirst implement the abstract methods."""

    channels_last: bool
    name: str

    def __repr__(self) -> str:
        return self.name

    @abstractmethod
    def view(self, x: np.ndarray) -> np.ndarray:
        """An (N, C, H, W) array viewed in this layout's axis order (no copy)."""

    @abstractmethod
    def nchw(self, a: np.ndarray) -> np.ndarray:
        """Inverse of view: an (N, C, H, W)-shaped view."""

    @abstractmethod
    def arranged(self, x: np.ndarray) -> np.ndarray:
        """x (N, C, H, W) in the memory this layout's engines read: channels-last copied once
        (channels_last_copy, a view if it already is); channels-first takes any memory."""

    @abstractmethod
    def padded_shape(self, n: int, channels: int, hw: tuple[int, int]) -> tuple[int, int, int, int]:
        """See the subclasses."""

    def pad_buffer(self, n: int, channels: int, geom: WindowGeometry, dtype) -> np.ndarray | None:
        """Scratch for n padded images in layout order, border zero (None without padding)."""
        if not any(geom.pad):
            return None
        # keyed by the padding too: the same interior is always written, so the border stays zero
        return scratch.scratch("padded", self.padded_shape(n, channels, geom.padded_hw), dtype, zeroed_key=geom.pad)

    def padded(self, x: np.ndarray, geom: WindowGeometry, buffer: np.ndarray | None) -> np.ndarray:
        """A chunk of images in layout order, zero-padded into `buffer` (reused across chunks).

        Only the interior is rewritten, so the zero border is written once per
        call of the op. Without padding the chunk itself is returned (its
        windows are views of it, whatever its strides).
        """
        if buffer is None:
            return x
        top, _, left, _ = geom.pad
        H, W = geom.in_hw
        target = buffer[: x.shape[0]]
        self.nchw(target)[:, :, top : top + H, left : left + W] = self.nchw(x)
        return target

    @abstractmethod
    def threads(self, w_shape, groups: int) -> int:
        """Workers for an engine's chunks, given the layer's weight shape (see subclasses)."""

    @abstractmethod
    def add_input_grad(
        self,
        dout: np.ndarray,
        weights: np.ndarray,
        geom: WindowGeometry,
        groups: int,
        channels: int,
        n_chunk: int,
        taps: list[Tap],
        dx: np.ndarray,
    ) -> None:
        """Add a chunk's input gradient onto dx: patch gradients dout @ weights^T, then col2im.

        Parameters
        ----------
        dout : (n, F, OH, OW), a chunk of the upstream gradient
        weights : input_grad_weights(w, groups) of w (F, C/groups, KH, KW)
        geom : the forward's window geometry
        groups, channels : channel groups, and C
        n_chunk : the engine's chunk size (n <= n_chunk), which sizes the scratch
        taps : taps_inside(geom)
        dx : the chunk's zeroed gradient in layout order, (n, H, W, C) or (n, C, H, W)
        """

    def patches(self, x: np.ndarray, geom: WindowGeometry, groups: int, n_chunk: int) -> np.ndarray:
        """im2col of a chunk (layout order) into this thread's scratch, as GEMM operands."""
        n, C = x.shape[0], self.nchw(x).shape[1]
        xp = self.padded(x, geom, self.pad_buffer(n_chunk, C, geom, x.dtype))
        cols = self.patch_buffer(n, n_chunk, C, groups, geom, x.dtype)
        return self.im2col(xp, geom, groups, cols)


class ChannelsLast(Layout):
    """The channels-last layout: images (n, H, W, C); patches are rows `(M, KH*KW*Cg)` per group.

    One GEMM per group for a whole chunk, `M = n*OH*OW`, patches in (kh, kw, c) order. Every
    copy moves runs of C contiguous numbers, so it suits layers with many channels.
    CHANNELS_LAST is its one instance.
    """

    channels_last = True
    name = "CHANNELS_LAST"

    def view(self, x):
        return x.transpose(0, 2, 3, 1)

    def nchw(self, a):
        return a.transpose(0, 3, 1, 2)

    def arranged(self, x):
        return channels_last_copy(x)

    def padded_shape(self, n, channels, hw):
        return (n, hw[0], hw[1], channels)

    def threads(self, w_shape, groups):
        """Chunk threads for thin layers (< tuning.THIN_LAYER_WEIGHTS per group), else 1 (BLAS's threads).

        A thin layer's time goes to NumPy copies that BLAS cannot share out;
        wider layers' single-threaded GEMMs side by side fight over the shared
        cache (BENCHMARKS.md, "What made it faster").
        """
        thin = math.prod(w_shape) // groups < tuning.THIN_LAYER_WEIGHTS
        return threads.num_threads() if thin else 1

    def windows(self, xp, geom):
        """Every window of a padded chunk (n, Hp, Wp, C) as a read-only view (n, OH, OW, KH, KW, C)."""
        (OH, OW), (KH, KW) = geom.out_hw, geom.kernel
        (sh, sw), (dh, dw) = geom.stride, geom.dilation
        n, _, _, C = xp.shape
        s_n, s_h, s_w, s_c = xp.strides
        return as_strided(
            xp, (n, OH, OW, KH, KW, C), (s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c), writeable=False
        )

    def patch_buffer(self, n, n_chunk, channels, groups, geom, dtype):
        """Contiguous patch scratch (G, n, OH, OW, KH, KW, Cg) for a chunk of n <= n_chunk images.

        The scratch is sized for n_chunk images so every chunk reuses it; a
        short last chunk of several groups gets its own array, since a
        slice of the image axis would not be contiguous per group.
        """
        (OH, OW), (KH, KW) = geom.out_hw, geom.kernel
        buffer = scratch.scratch("cols", (groups, n_chunk, OH, OW, KH, KW, channels // groups), dtype)
        if n == n_chunk or groups == 1:
            return buffer[:, :n]
        return np.empty((groups, n) + buffer.shape[2:], dtype)

    def im2col(self, xp, geom, groups, cols):
        """Copy the windows into cols; return them as rows (G, M, Kg)."""
        view = self.windows(xp, geom)
        n, OH, OW, KH, KW, C = view.shape
        grouped = view.reshape(n, OH, OW, KH, KW, groups, C // groups)
        np.copyto(cols, grouped.transpose(5, 0, 1, 2, 3, 4, 6))
        return cols.reshape(groups, n * OH * OW, -1)

    def weight_matrix(self, w, groups):
        """w (F, Cg, KH, KW) as (G, KH*KW*Cg, Fg), rows in patch order (kh, kw, c)."""
        F, cg, KH, KW = w.shape
        grouped = w.reshape(groups, F // groups, cg, KH, KW)
        return grouped.transpose(0, 3, 4, 2, 1).reshape(groups, KH * KW * cg, F // groups)

    def weight_from_matrix(self, wm, w_shape, groups):
        """Inverse of weight_matrix: a contiguous (F, Cg, KH, KW)."""
        F, cg, KH, KW = w_shape
        grouped = wm.reshape(groups, KH, KW, cg, F // groups).transpose(0, 4, 3, 1, 2)
        return np.ascontiguousarray(grouped.reshape(w_shape))

    def multiply_into(self, cols, wm, out_rows, groups):
        """out_rows (n, OH, OW, F) = patches @ weights: (G, M, Kg) @ (G, Kg, Fg)."""
        np.matmul(cols, wm, out=grouped_rows(out_rows, groups))

    def weight_grad_part(self, cols, dout, groups):
        """This chunk's (G, Kg, Fg) = patches^T @ dout, dout (n, F, OH, OW)."""
        return np.matmul(cols.transpose(0, 2, 1), grouped_rows(self.view(dout), groups))

    def input_grad_weights(self, w, groups):
        """One (Fg, Cg) weight matrix per kernel tap and group: (KH*KW, G, Fg, Cg)."""
        F, cg, KH, KW = w.shape
        return w.reshape(groups, F // groups, cg, KH * KW).transpose(3, 0, 1, 2)

    def add_input_grad(self, dout, wt, geom, groups, channels, n_chunk, taps, dx):
        """dx (n, H, W, C), zeroed, += col2im of dout's patch gradients, tap by tap.

        The patch gradients are tap-major (KH*KW, n, OH, OW, C), so each
        tap's source is contiguous and NumPy adds whole image rows at a time.
        """
        (OH, OW), (KH, KW) = geom.out_hw, geom.kernel
        n = dout.shape[0]
        d = grouped_rows(self.view(dout), groups)
        cols = scratch.scratch("tap cols", (KH * KW, n_chunk, OH, OW, channels), dout.dtype)[:, :n]
        per_tap = cols.reshape(KH * KW, d.shape[1], groups, -1).transpose(0, 2, 1, 3)
        np.matmul(d[None], wt, out=per_tap)
        col2im_taps(cols, taps, dx)


class ChannelsFirst(Layout):
    """The channels-first layout: images (n, C, H, W); each image's patches are columns.

    The columns are `(Cg*KH*KW, OH*OW)` in (c, kh, kw) order, one GEMM per image and group.
    Every copy moves rows of OW pixels and dout is read in whatever memory layout it has,
    so it suits layers with few channels (RGB input, depthwise convolutions).
    CHANNELS_FIRST is its one instance.
    """

    channels_last = False
    name = "CHANNELS_FIRST"

    def view(self, x):
        return x

    def nchw(self, a):
        return a

    def arranged(self, x):
        return x

    def padded_shape(self, n, channels, hw):
        return (n, channels, hw[0], hw[1])

    def threads(self, w_shape, groups):
        """Always split the chunks: their GEMMs are one small product per image, too small for
        BLAS's threads to share (BENCHMARKS.md, "What made it faster")."""
        return threads.num_threads()

    def windows(self, xp, geom):
        """Every window of a padded chunk (n, C, Hp, Wp) as a read-only view (n, C, KH, KW, OH, OW)."""
        (OH, OW), (KH, KW) = geom.out_hw, geom.kernel
        (sh, sw), (dh, dw) = geom.stride, geom.dilation
        n, C = xp.shape[:2]
        s_n, s_c, s_h, s_w = xp.strides
        return as_strided(
            xp, (n, C, KH, KW, OH, OW), (s_n, s_c, s_h * dh, s_w * dw, s_h * sh, s_w * sw), writeable=False
        )

    def patch_buffer(self, n, n_chunk, channels, groups, geom, dtype):
        """Patch scratch (n, G, Cg, KH, KW, OH, OW) for a chunk of n <= n_chunk images (images outermost)."""
        (OH, OW), (KH, KW) = geom.out_hw, geom.kernel
        return scratch.scratch("cols", (n_chunk, groups, channels // groups, KH, KW, OH, OW), dtype)[:n]

    def im2col(self, xp, geom, groups, cols):
        """Copy the windows into cols; return each image's patches as columns (n, G, Kg, OH*OW)."""
        view = self.windows(xp, geom)
        n, C, KH, KW, OH, OW = view.shape
        np.copyto(cols, view.reshape(n, groups, C // groups, KH, KW, OH, OW))
        return cols.reshape(n, groups, -1, OH * OW)

    def weight_matrix(self, w, groups):
        """w (F, Cg, KH, KW) as (G, Cg*KH*KW, Fg), rows in patch order (c, kh, kw)."""
        F, cg, KH, KW = w.shape
        return w.reshape(groups, F // groups, cg * KH * KW).transpose(0, 2, 1)

    def weight_from_matrix(self, wm, w_shape, groups):
        F, cg, KH, KW = w_shape
        grouped = wm.transpose(0, 2, 1).reshape(groups, F // groups, cg, KH, KW)
        return np.ascontiguousarray(grouped.reshape(w_shape))

    def multiply_into(self, cols, wm, out_rows, groups):
        """out_rows (n, OH, OW, F) = per image (G, P, Kg) @ (G, Kg, Fg)."""
        n, OH, OW, F = out_rows.shape
        target = out_rows.reshape(n, OH * OW, groups, F // groups)
        np.matmul(cols.transpose(0, 1, 3, 2), wm, out=target.transpose(0, 2, 1, 3))

    def weight_grad_part(self, cols, dout, groups):
        """Per image (G, Kg, P) @ (G, P, Fg), summed over the chunk's images; dout (n, F, OH, OW)."""
        per_image = np.matmul(cols, _dout_per_image(dout, groups).transpose(0, 1, 3, 2))
        return per_image.sum(axis=0)

    def input_grad_weights(self, w, groups):
        return self.weight_matrix(w, groups)

    def add_input_grad(self, dout, wm, geom, groups, channels, n_chunk, taps, dx):
        """dx (n, C, H, W), zeroed, += col2im of the patch gradients, per image (G, Kg, Fg) @ (G, Fg, P)."""
        n = dout.shape[0]
        OH, OW = geom.out_hw
        cols = self.patch_buffer(n, n_chunk, channels, groups, geom, dout.dtype)
        np.matmul(wm, _dout_per_image(dout, groups), out=cols.reshape(n, groups, -1, OH * OW))
        col2im(cols, taps, dx)


def _dout_per_image(dout: np.ndarray, groups: int) -> np.ndarray:
    """A chunk of dout (n, F, OH, OW), any memory layout, as (n, G, Fg, OH*OW) GEMM operands."""
    n, F, OH, OW = dout.shape
    return dout.reshape(n, groups, F // groups, OH * OW)


def col2im_taps(cols: np.ndarray, taps: list[Tap], dx: np.ndarray) -> None:
    """Add tap-major patch gradients (KH*KW, n, OH, OW, C) onto a zeroed dx (n, H, W, C).

    Each kernel tap is one strided slice-add, so overlapping windows
    accumulate exactly as the chain rule requires; gradients of padded
    positions are simply never added.
    """
    for tap in taps:
        dx[:, tap.in_rows, tap.in_cols, :] += cols[tap.index][:, tap.out_rows, tap.out_cols, :]


def col2im(cols: np.ndarray, taps: list[Tap], dx: np.ndarray) -> None:
    """Add channels-first patch gradients (n, G, Cg, KH, KW, OH, OW) onto a zeroed dx (n, C, H, W)."""
    n, G, cg = cols.shape[:3]
    for tap in taps:
        source = cols[:, :, :, tap.kh, tap.kw, tap.out_rows, tap.out_cols]
        dx[:, :, tap.in_rows, tap.in_cols] += source.reshape((n, G * cg) + source.shape[3:])


CHANNELS_LAST = ChannelsLast()
CHANNELS_FIRST = ChannelsFirst()


def layout_for(channels: int, groups: int) -> Layout:
    """The patch layout a convolution with `channels` inputs in `groups` groups runs in.

    Channels-last from tuning.CHANNELS_LAST_MIN channels per group, or
    whenever the scoped engine choice asks for Winograd (which runs on
    channels-last images only).
    """
    if channels // groups >= tuning.CHANNELS_LAST_MIN or chosen().startswith("winograd"):
        return CHANNELS_LAST
    return CHANNELS_FIRST
