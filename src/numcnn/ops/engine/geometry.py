"""Window geometry: where a sliding-window op (convolution, pooling) reads.

A 2-D window op looks at kernel-sized patches of a zero-padded image. With
stride s, dilation d and padding p (top, bottom, left, right), output i
reads padded row

    i*s + u*d        for kernel tap u < KH,

and the output size is PyTorch's

    OH = floor((H + p_top + p_bottom - d*(KH - 1) - 1) / s) + 1.

The index formula lives once, in `_strided_span`: `receptive_field` fixes
the output (i, j) and spans the taps, `tap_slices` fixes the tap (u, v)
and spans the outputs, and `taps_inside` is tap_slices clipped to the
outputs whose tap lands on a real pixel (what col2im adds back).
"""

from __future__ import annotations

from typing import NamedTuple

from ...checks import int_pair


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


def parse_pad(
    pad, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int], name: str = "pad"
) -> tuple[int, int, int, int]:
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
            return (totals[0] // 2, totals[0] - totals[0] // 2, totals[1] // 2, totals[1] - totals[1] // 2)
        raise ValueError(f"{name} must be an int, a pair, 'same' or 'valid', got {pad!r}")
    ph, pw = int_pair(pad, name, minimum=0)
    return (ph, ph, pw, pw)


def window_geometry(
    in_hw, kernel, stride, pad, dilation, *, kernel_name: str = "kernel size", pad_name: str = "pad"
) -> WindowGeometry:
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


def _strided_span(first: int, step: int, count: int) -> slice:
    """Indices first, first + step, ..., count of them: the one formula, i*s + u*d, as a slice."""
    return slice(first, first + step * (count - 1) + 1, step)


def receptive_field(geom: WindowGeometry, i: int, j: int) -> tuple[slice, slice]:
    """Rows and columns of the *padded* image that output pixel (i, j) reads (its KH x KW window)."""
    (KH, KW), (sh, sw), (dh, dw) = geom.kernel, geom.stride, geom.dilation
    return _strided_span(i * sh, dh, KH), _strided_span(j * sw, dw, KW)


def tap_slice(geom: WindowGeometry, kh: int, kw: int) -> tuple[slice, slice]:
    """Rows and columns of the *padded* image that kernel tap (kh, kw) reads, over all outputs."""
    (OH, OW), (sh, sw), (dh, dw) = geom.out_hw, geom.stride, geom.dilation
    return _strided_span(kh * dh, sh, OH), _strided_span(kw * dw, sw, OW)


def tap_slices(geom: WindowGeometry) -> list[tuple[slice, slice]]:
    """tap_slice of every kernel tap, in raster order (the order that settles max pooling's ties)."""
    KH, KW = geom.kernel
    return [tap_slice(geom, kh, kw) for kh in range(KH) for kw in range(KW)]


def _valid_span(size: int, out_size: int, stride: int, offset: int):
    """Outputs i with 0 <= i*stride + offset < size, as (output slice, input slice) or None."""
    first = max(0, -(offset // stride))  # ceil(-offset / stride)
    last = min(out_size - 1, (size - 1 - offset) // stride)
    if first > last:
        return None
    start = first * stride + offset
    return slice(first, last + 1), slice(start, start + stride * (last - first) + 1, stride)


class Tap(NamedTuple):
    """One kernel tap: where it writes in the output grid and reads in the image."""

    index: int  # kh * KW + kw
    kh: int
    kw: int
    out_rows: slice
    out_cols: slice
    in_rows: slice
    in_cols: slice


def taps_inside(geom: WindowGeometry) -> list[Tap]:
    """The kernel taps in raster order, each clipped to the outputs that read real (unpadded) pixels.

    Slices here index the unpadded image. Taps that only ever read padding
    are left out.
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


def flipped_geometry(geom: WindowGeometry) -> WindowGeometry | None:
    """The stride-1 input gradient as a convolution of dout: its geometry, or None.

    dx of a stride-1 convolution is dout, padded by d*(k-1) - p on the
    top/left, correlated with the kernel flipped in space. The bottom/right
    padding follows from the sizes, so that it returns exactly in_hw rows
    and columns (a transposed convolution's output_padding lands there).
    None when the stride is not 1, or the forward padding exceeds the kernel
    span (negative padding, i.e. cropping): col2im then.
    """
    if geom.stride != (1, 1):
        return None
    (KH, KW), (dh, dw) = geom.kernel, geom.dilation
    (H, W), (OH, OW) = geom.in_hw, geom.out_hw
    top, left = dh * (KH - 1) - geom.pad[0], dw * (KW - 1) - geom.pad[2]
    full = (top, H + dh * (KH - 1) - OH - top, left, W + dw * (KW - 1) - OW - left)
    if min(full) < 0:
        return None
    return WindowGeometry(
        in_hw=geom.out_hw, out_hw=geom.in_hw, kernel=geom.kernel, stride=(1, 1), dilation=geom.dilation, pad=full
    )
