"""Transposed 2-D convolution (PyTorch's conv_transpose2d, a.k.a. "deconvolution").

Each input pixel stamps its kernel, scaled by the pixel, onto the output at
stride s; overlapping stamps add up and the padding is then cropped:

    outp[n, g*Fg + f, i*sh + u*dh, j*sw + v*dw] += x[n, c, i, j] * w[c, f, u, v]
    out = outp[:, :, p_h : p_h + OH, p_w : p_w + OW] + b

for input channel c in group g. Shapes, as in PyTorch:

    x (N, C_in, H, W), w (C_in, F/groups, KH, KW), b (F,) or None -> out (N, F, OH, OW)
    OH = (H - 1)*sh - 2*p_h + dh*(KH - 1) + output_padding_h + 1

It is exactly the input gradient of an ordinary convolution from F to C_in
channels with the same kernel, stride, padding and dilation, so the fast
version reuses the convolution engines (engine/im2col.py) with their roles swapped: forward is that
convolution's input gradient, the input gradient is that convolution's
forward, and the weight gradient is its weight gradient with x and dout
exchanged.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..checks import int_pair, upstream_gradient
from .conv import conv2d_arguments
from .engine.geometry import WindowGeometry, receptive_field
from .engine.im2col import bias_grad, conv_input_grad, conv_output, conv_weight_grad
from .engine.layout import CHANNELS_LAST


class ConvTranspose2dCache(NamedTuple):
    """What conv_transpose2d_forward (and its loop version) keeps for the backward.

    Attributes:
        x: The input (N, C_in, H, W).
        w: The weight (C_in, F/groups, KH, KW), in x's dtype.
        b: The bias (F,), in x's dtype, or None.
        geom: The geometry of the ordinary convolution this one transposes: its input is
            this output's (OH, OW), its output is x's (H, W).
        groups: The number of channel groups.
    """

    x: np.ndarray
    w: np.ndarray
    b: np.ndarray | None
    geom: WindowGeometry  # of the convolution this one transposes
    groups: int


def check_output_padding(output_padding, stride, dilation) -> tuple[int, int]:
    """output_padding as a pair, each smaller than the stride or the dilation (PyTorch's rule)."""
    output_padding = int_pair(output_padding, "output_padding", minimum=0)
    stride = int_pair(stride, "stride", minimum=1)
    dilation = int_pair(dilation, "dilation", minimum=1)
    for axis in range(2):
        if output_padding[axis] >= max(stride[axis], dilation[axis]):
            raise ValueError(
                f"output_padding must be smaller than stride or dilation, got output_padding "
                f"{output_padding} with stride {stride} and dilation {dilation}"
            )
    return output_padding


def transposed_geometry(x_hw, kernel, stride, pad, output_padding, dilation) -> WindowGeometry:
    """The geometry of the ordinary convolution that maps the output back to x.

    Its input is the transposed convolution's output (OH, OW) and its output
    is x's (H, W).
    """
    kernel = int_pair(kernel, "kernel size (w.shape[2:])", minimum=1)
    stride = int_pair(stride, "stride", minimum=1)
    dilation = int_pair(dilation, "dilation", minimum=1)
    if isinstance(pad, str):
        raise ValueError(f"pad must be an int or a pair for a transposed convolution, got {pad!r}")
    pad = int_pair(pad, "pad", minimum=0)
    output_padding = check_output_padding(output_padding, stride, dilation)
    out_hw = tuple(
        (x_hw[a] - 1) * stride[a] - 2 * pad[a] + dilation[a] * (kernel[a] - 1) + output_padding[a] + 1 for a in range(2)
    )
    if min(out_hw) < 1:
        raise ValueError(
            f"the output size {out_hw} is below 1 for input {tuple(x_hw)}, kernel {kernel}, "
            f"stride {stride}, pad {pad}, dilation {dilation}; reduce pad"
        )
    return WindowGeometry(
        in_hw=out_hw,
        out_hw=tuple(x_hw),
        kernel=kernel,
        stride=stride,
        dilation=dilation,
        pad=(pad[0], pad[0], pad[1], pad[1]),
    )


def _arguments(x, w, b, stride, pad, output_padding, dilation, groups):
    x, w, b, groups = conv2d_arguments(x, w, b, stride, pad, dilation, groups, transposed=True)
    geom = transposed_geometry(x.shape[2:], w.shape[2:], stride, pad, output_padding, dilation)
    return x, w, b, geom, groups


def _check_dout(dout, N, F, geom):
    return upstream_gradient(dout, "dout", (N, F, *geom.in_hw), ndim=4)


# ---------------------------------------------------------------------------
# The loop version: stamp each input pixel's kernel onto the output.
# ---------------------------------------------------------------------------


def conv_transpose2d_forward_naive(x, w, b, stride=1, pad=0, output_padding=0, dilation=1, groups=1):
    """Loop version of conv_transpose2d_forward: same signature, same output and cache.

    x (N, C_in, H, W), w (C_in, F/groups, KH, KW), b (F,) or None -> out (N, F, OH, OW).
    Loops over images, input channels c (in group g) and input pixels; each pixel stamps
    its kernel, scaled by its value, onto the padded output, which is then cropped:

        outp[n, g*Fg + f, i*sh + u*dh, j*sw + v*dw] += x[n, c, i, j] * w[c, f, u, v]
        out = outp[:, :, ph : ph + OH, pw : pw + OW] + b

    stride, pad, output_padding and dilation are ints or (height, width) pairs. Raises
    ValueError when w's first axis is not C_in or groups does not divide C_in, for a string
    pad, an output_padding not smaller than the stride or the dilation, or an output below
    one pixel.
    """
    x, w, b, geom, groups = _arguments(x, w, b, stride, pad, output_padding, dilation, groups)
    N, C, H, W = x.shape
    filters_per_group = w.shape[1]
    channels_per_group = C // groups
    OH, OW = geom.in_hw
    top, bottom, left, right = geom.pad
    outp = np.zeros((N, filters_per_group * groups, OH + top + bottom, OW + left + right), x.dtype)
    for n in range(N):
        for c in range(C):
            g = c // channels_per_group
            filters = slice(g * filters_per_group, (g + 1) * filters_per_group)
            for i in range(H):
                for j in range(W):
                    rows, cols = receptive_field(geom, i, j)
                    outp[n, filters, rows, cols] += x[n, c, i, j] * w[c]
    out = outp[:, :, top : top + OH, left : left + OW]
    if b is not None:
        out = out + b[:, None, None]
    return out, ConvTranspose2dCache(x, w, b, geom, groups)


def conv_transpose2d_backward_naive(dout, cache: ConvTranspose2dCache):
    """Each input pixel's gradient is its stamp's footprint on dout, weighted by the kernel."""
    x, w, b, geom, groups = cache
    N, C, H, W = x.shape
    filters_per_group = w.shape[1]
    dout = _check_dout(dout, N, filters_per_group * groups, geom)
    channels_per_group = C // groups
    top, bottom, left, right = geom.pad
    doutp = np.pad(dout, ((0, 0), (0, 0), (top, bottom), (left, right)))
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for n in range(N):
        for c in range(C):
            g = c // channels_per_group
            filters = slice(g * filters_per_group, (g + 1) * filters_per_group)
            for i in range(H):
                for j in range(W):
                    rows, cols = receptive_field(geom, i, j)
                    footprint = doutp[n, filters, rows, cols]
                    dx[n, c, i, j] = np.sum(footprint * w[c])
                    dw[c] += x[n, c, i, j] * footprint
    db = dout.sum(axis=(0, 2, 3)) if b is not None else None
    return dx, dw, db


# ---------------------------------------------------------------------------
# The fast version: the convolution engines with roles swapped.
# ---------------------------------------------------------------------------


def conv_transpose2d_forward(x, w, b, stride=1, pad=0, output_padding=0, dilation=1, groups=1):
    """x (N, C_in, H, W), w (C_in, F/groups, KH, KW), b (F,) or None -> out (N, F, OH, OW)."""
    x, w, b, geom, groups = _arguments(x, w, b, stride, pad, output_padding, dilation, groups)
    out = conv_input_grad(x, w, geom, groups, channels=w.shape[1] * groups)
    if b is not None:
        out += b[:, None, None]
    return out, ConvTranspose2dCache(x, w, b, geom, groups)


def conv_transpose2d_backward(dout, cache: ConvTranspose2dCache):
    """Returns dx (N, C_in, H, W), dw (C_in, F/groups, KH, KW), db (F,) or None."""
    x, w, b, geom, groups = cache
    dout = _check_dout(dout, x.shape[0], w.shape[1] * groups, geom).astype(x.dtype, copy=False)
    dout = CHANNELS_LAST.arranged(dout)
    dx = conv_output(dout, w, geom, groups)
    dw = conv_weight_grad(dout, x, geom, groups, w.shape)
    db = bias_grad(dout) if b is not None else None
    return dx, dw, db
