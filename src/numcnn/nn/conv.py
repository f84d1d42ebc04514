"""Conv2d and ConvTranspose2d modules, with torch.nn's arguments, layouts and initialisation."""

from __future__ import annotations

import math
from abc import abstractmethod

import numpy as np

from .. import ops
from ..checks import float_dtype, int_pair, positive_int
from ..ops.conv_transpose import check_output_padding
from ..ops.engine.geometry import parse_pad
from . import init
from .module import Module


def _check_channels(in_channels, out_channels, groups):
    in_channels = positive_int(in_channels, "in_channels")
    out_channels = positive_int(out_channels, "out_channels")
    groups = positive_int(groups, "groups")
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if value % groups:
            raise ValueError(f"{name}={value} must be divisible by groups={groups}")
    return in_channels, out_channels, groups


def _check_padding_mode(padding_mode):
    if padding_mode != "zeros":
        raise ValueError(f"padding_mode must be 'zeros' (the only mode numcnn implements), got {padding_mode!r}")


class _ConvNd(Module):
    """What Conv2d and ConvTranspose2d share, as torch.nn.modules.conv._ConvNd does.

    The checks of channels, kernel, stride, dilation, padding and dtype; the
    weight and bias with PyTorch's initialisation; and the backward, which
    sets the gradients in the parameters' dtype. transposed=False: weight
    (out, in/groups, KH, KW); True: weight (in, out/groups, KH, KW). Either
    way PyTorch's fan_in is weight.shape[1] * KH * KW: kaiming_uniform(a=sqrt(5))
    for the weight, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride,
        padding,
        dilation,
        transposed: bool,
        output_padding,
        groups,
        bias: bool,
        padding_mode,
        dtype,
        rng: np.random.Generator | None,
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.groups = _check_channels(in_channels, out_channels, groups)
        dtype = float_dtype(dtype)
        _check_padding_mode(padding_mode)
        self.kernel_size = int_pair(kernel_size, "kernel_size", minimum=1)
        self.stride = int_pair(stride, "stride", minimum=1)
        self.dilation = int_pair(dilation, "dilation", minimum=1)
        if transposed:
            self.padding = int_pair(padding, "padding", minimum=0)
        else:  # also 'same' or 'valid', as in PyTorch ('same' needs stride 1)
            self.padding = padding if isinstance(padding, str) else int_pair(padding, "padding", minimum=0)
            parse_pad(padding, self.kernel_size, self.stride, self.dilation, "padding")
        if transposed:
            self.output_padding = check_output_padding(output_padding, self.stride, self.dilation)
        in_channels, out_channels, groups = self.in_channels, self.out_channels, self.groups
        channels = (in_channels, out_channels // groups) if transposed else (out_channels, in_channels // groups)
        self._init_parameters(channels + self.kernel_size, bias, dtype, init.generator(rng))

    def _init_parameters(self, shape: tuple[int, int, int, int], bias: bool, dtype, rng) -> None:
        fan_in = shape[1] * shape[2] * shape[3]
        self.params["weight"] = init.kaiming_uniform(shape, fan_in, rng, dtype)
        if bias:
            self.params["bias"] = init.uniform((self.out_channels,), 1.0 / math.sqrt(fan_in), rng, dtype)

    @abstractmethod
    def _op_backward(self, dout, cache):
        """dx, dw, db: the op's backward for this module's cache."""

    def backward(self, dout):
        dx, dw, db = self._op_backward(dout, self._recall())
        self._set_grads(weight=dw, bias=db)
        return dx


class Conv2d(_ConvNd):
    """2-D convolution. weight (out, in/groups, KH, KW), bias (out,).

    x (N, in_channels, H, W) -> (N, out_channels, OH, OW). padding may be an
    int, a pair, 'same' or 'valid', as in PyTorch.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=True,
        padding_mode="zeros",
        *,
        dtype=np.float32,
        rng: np.random.Generator | None = None,
    ):
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            False,
            0,
            groups,
            bias,
            padding_mode,
            dtype,
            rng,
        )
        self.input_grad = True  # False: backward returns None instead of dx (a network's first layer)

    def forward(self, x):
        out, cache = ops.conv2d_forward(
            x, self.params["weight"], self.params.get("bias"), self.stride, self.padding, self.dilation, self.groups
        )
        self._remember(cache)
        return out

    def _op_backward(self, dout, cache):
        return ops.conv2d_backward(dout, cache, input_grad=self.input_grad)

    def extra_repr(self):
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if "bias" in self.params else ", bias=False")


class ConvTranspose2d(_ConvNd):
    """Transposed 2-D convolution. weight (in, out/groups, KH, KW), bias (out,), as PyTorch.

    x (N, in_channels, H, W) -> (N, out_channels, OH, OW) with
    OH = (H - 1)*stride - 2*padding + dilation*(KH - 1) + output_padding + 1.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups=1,
        bias=True,
        dilation=1,
        padding_mode="zeros",
        *,
        dtype=np.float32,
        rng: np.random.Generator | None = None,
    ):
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            True,
            output_padding,
            groups,
            bias,
            padding_mode,
            dtype,
            rng,
        )

    def forward(self, x):
        out, cache = ops.conv_transpose2d_forward(
            x,
            self.params["weight"],
            self.params.get("bias"),
            self.stride,
            self.padding,
            self.output_padding,
            self.dilation,
            self.groups,
        )
        self._remember(cache)
        return out

    def _op_backward(self, dout, cache):
        return ops.conv_transpose2d_backward(dout, cache)

    def extra_repr(self):
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, output_padding={self.output_padding}"
        )
