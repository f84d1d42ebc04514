"""Conv2d and ConvTranspose2d modules, with torch.nn's arguments, layouts and initialisation."""

from __future__ import annotations

import math

import numpy as np

from .. import ops
from ..checks import float_dtype, int_pair, positive_int
from ..ops.conv_transpose import check_output_padding
from ..ops.windows import parse_pad
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


class Conv2d(Module):
    """2-D convolution. weight (out, in/groups, KH, KW), bias (out,).

    x (N, in_channels, H, W) -> (N, out_channels, OH, OW). padding may be an
    int, a pair, 'same' or 'valid', as in PyTorch.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", *, dtype=np.float32,
                 rng: np.random.Generator | None = None):
        super().__init__()
        self.in_channels, self.out_channels, self.groups = _check_channels(in_channels, out_channels, groups)
        dtype = float_dtype(dtype)
        _check_padding_mode(padding_mode)
        self.kernel_size = int_pair(kernel_size, "kernel_size", minimum=1)
        self.stride = int_pair(stride, "stride", minimum=1)
        self.dilation = int_pair(dilation, "dilation", minimum=1)
        self.padding = padding if isinstance(padding, str) else int_pair(padding, "padding", minimum=0)
        parse_pad(padding, self.kernel_size, self.stride, self.dilation, "padding")  # 'same' needs stride 1
        self.input_grad = True  # False: backward returns None instead of dx (a network's first layer)
        rng = init.generator(rng)
        fan_in = (in_channels // groups) * self.kernel_size[0] * self.kernel_size[1]
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.params["weight"] = init.kaiming_uniform(shape, fan_in, rng, dtype)
        if bias:
            self.params["bias"] = init.uniform((out_channels,), 1.0 / math.sqrt(fan_in), rng, dtype)

    def forward(self, x):
        out, cache = ops.conv2d_forward(x, self.params["weight"], self.params.get("bias"), self.stride,
                                        self.padding, self.dilation, self.groups)
        self._remember(cache)
        return out

    def backward(self, dout):
        dx, dw, db = ops.conv2d_backward(dout, self._recall(), input_grad=self.input_grad)
        self.grads = {"weight": dw.astype(self.params["weight"].dtype, copy=False)}
        if db is not None:
            self.grads["bias"] = db.astype(self.params["bias"].dtype, copy=False)
        return dx

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if "bias" in self.params else ", bias=False")


class ConvTranspose2d(Module):
    """Transposed 2-D convolution. weight (in, out/groups, KH, KW), bias (out,), as PyTorch.

    x (N, in_channels, H, W) -> (N, out_channels, OH, OW) with
    OH = (H - 1)*stride - 2*padding + dilation*(KH - 1) + output_padding + 1.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1, padding_mode="zeros", *, dtype=np.float32,
                 rng: np.random.Generator | None = None):
        super().__init__()
        self.in_channels, self.out_channels, self.groups = _check_channels(in_channels, out_channels, groups)
        dtype = float_dtype(dtype)
        _check_padding_mode(padding_mode)
        self.kernel_size = int_pair(kernel_size, "kernel_size", minimum=1)
        self.stride = int_pair(stride, "stride", minimum=1)
        self.padding = int_pair(padding, "padding", minimum=0)
        self.dilation = int_pair(dilation, "dilation", minimum=1)
        self.output_padding = check_output_padding(output_padding, self.stride, self.dilation)
        rng = init.generator(rng)
        # PyTorch computes fan_in from weight.size(1): out_channels/groups * KH * KW
        fan_in = (out_channels // groups) * self.kernel_size[0] * self.kernel_size[1]
        shape = (in_channels, out_channels // groups) + self.kernel_size
        self.params["weight"] = init.kaiming_uniform(shape, fan_in, rng, dtype)
        if bias:
            self.params["bias"] = init.uniform((out_channels,), 1.0 / math.sqrt(fan_in), rng, dtype)

    def forward(self, x):
        out, cache = ops.conv_transpose2d_forward(x, self.params["weight"], self.params.get("bias"),
                                                  self.stride, self.padding, self.output_padding,
                                                  self.dilation, self.groups)
        self._remember(cache)
        return out

    def backward(self, dout):
        dx, dw, db = ops.conv_transpose2d_backward(dout, self._recall())
        self.grads = {"weight": dw.astype(self.params["weight"].dtype, copy=False)}
        if db is not None:
            self.grads["bias"] = db.astype(self.params["bias"].dtype, copy=False)
        return dx

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, output_padding={self.output_padding}")
