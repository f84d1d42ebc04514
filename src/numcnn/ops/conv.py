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

The fast version hands each sum to the engine (engine/im2col.py: GEMMs
over im2col patches, or Winograd), a chunk of images at a time; which
engine runs a large layer is measured on the machine (engine/planner.py). It returns arrays of shape
(N, F, OH, OW) whose memory is channels-last when that made the GEMM
cheaper: the values are the same, and the next layer reads them without a
transpose (PyTorch calls this the channels_last memory format).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..checks import batch_array, float_array, optional_float_array, positive_int, upstream_gradient
from .engine import planner
from .engine.candidates import RULES
from .engine.geometry import WindowGeometry, receptive_field, window_geometry


class Conv2dCache(NamedTuple):
    """What conv2d_forward (and its loop version) keeps for the backward.

    Attributes:
        x: The input (N, C, H, W), in the memory layout the engine's backward reads
            (channels-last when the forward ran so; the values are x's).
        w: The weight (F, C/groups, KH, KW), in x's dtype.
        b: The bias (F,), in x's dtype, or None.
        geom: The window geometry (sizes, kernel, stride, dilation, padding).
        groups: The number of channel groups.
        engine: The planner's candidate that ran the forward, which the backward runs too;
            "" for the fixed rules (and the loop version).
    """

    x: np.ndarray
    w: np.ndarray
    b: np.ndarray | None
    geom: WindowGeometry
    groups: int
    engine: str = ""  # the planner's candidate that ran the forward ("": the fixed rules)


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
        raise ValueError(
            f"x has {C} channels, which groups={groups} does not divide; channels must be a multiple of groups"
        )
    if transposed:
        if w.shape[0] != C:
            raise ValueError(f"w must have shape ({C}, F/groups, KH, KW) for x with {C} channels, got {w.shape}")
        F = w.shape[1] * groups
    else:
        F = w.shape[0]
        if F % groups:
            raise ValueError(
                f"w has {F} filters, which groups={groups} does not divide; filters must be a multiple of groups"
            )
        if w.shape[1] != C // groups:
            raise ValueError(
                f"w must have shape ({F}, {C // groups}, KH, KW) for x with {C} channels "
                f"and groups={groups}, got {w.shape}"
            )
    b = optional_float_array(b, "b", (F,))
    if b is not None:
        b = b.astype(x.dtype, copy=False)
    return x, w, b, groups


def _geometry(x, w, stride, pad, dilation) -> WindowGeometry:
    return window_geometry(x.shape[2:], w.shape[2:], stride, pad, dilation, kernel_name="kernel size (w.shape[2:])")


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
                    rows, cols = receptive_field(geom, i, j)
                    window = xp[n, channels, rows, cols]
                    out[n, f, i, j] = np.sum(window * w[f]) + (b[f] if b is not None else 0)
    return out, Conv2dCache(x, w, b, geom, groups)


def conv2d_backward_naive(dout, cache: Conv2dCache):
    """Gradients by the same loops: each output pixel sends dout back to its window."""
    x, w, b, geom, groups = cache[:5]
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
                    rows, cols = receptive_field(geom, i, j)
                    dw[f] += xp[n, channels, rows, cols] * dout[n, f, i, j]
                    dxp[n, channels, rows, cols] += w[f] * dout[n, f, i, j]
    H, W = geom.in_hw
    dx = dxp[:, :, top : top + H, left : left + W]
    db = dout.sum(axis=(0, 2, 3)) if b is not None else None
    return dx, dw, db


def _check_dout(dout, N, F, geom):
    return upstream_gradient(dout, "dout", (N, F, *geom.out_hw), ndim=4)


# ---------------------------------------------------------------------------
# The fast version: the same sums as GEMMs, in the engine (engine/im2col.py).
# ---------------------------------------------------------------------------


def conv2d_forward(x, w, b, stride=1, pad=0, dilation=1, groups=1):
    """Fast convolution. x (N, C, H, W), w (F, C/groups, KH, KW), b (F,) or None.

    stride, dilation: int or (sh, sw); pad: int, (ph, pw), 'same' or 'valid'.
    Returns out (N, F, OH, OW) and a Conv2dCache for conv2d_backward.
    The engine is the planner's (engine/planner.py): the fastest measured on
    this machine for large layers, the fixed rules otherwise.
    """
    x, w, b, groups = conv2d_arguments(x, w, b, stride, pad, dilation, groups)
    geom = _geometry(x, w, stride, pad, dilation)
    chosen = planner.conv_engine(x, w, geom, groups)
    out, x = chosen.forward(x, w, b, geom, groups)  # x as the backward reads it (same values)
    return out, Conv2dCache(x, w, b, geom, groups, "" if chosen is RULES else chosen.name)


def conv2d_backward(dout, cache: Conv2dCache, input_grad: bool = True):
    """Returns dx (N, C, H, W), dw (F, C/groups, KH, KW), db (F,) or None.

    input_grad=False skips dx (returned as None): a network's first layer
    needs no gradient with respect to the images. Runs the engine the
    forward ran (cache.engine).
    """
    x, w, b, geom, groups = cache[:5]
    dout = _check_dout(dout, x.shape[0], w.shape[0], geom).astype(x.dtype, copy=False)
    return planner.engine_named(cache.engine).backward(dout, x, w, b is not None, geom, groups, input_grad)
