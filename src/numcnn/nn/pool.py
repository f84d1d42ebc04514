"""Pooling modules: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, GlobalAvgPool2d."""

from __future__ import annotations

from .. import ops
from ..checks import int_pair
from ..ops.pool import check_pool_arguments
from .module import Module


def _unsupported(**flags):
    for name, value in flags.items():
        if value:
            raise ValueError(f"{name}=True is not supported by numcnn's pooling; use the default False")


class MaxPool2d(Module):
    """Max pooling; stride defaults to kernel_size. Ties send the gradient where PyTorch does."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        _unsupported(return_indices=return_indices, ceil_mode=ceil_mode)
        check_pool_arguments(kernel_size, stride, padding, dilation, pad_name="padding")
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation

    def forward(self, x):
        out, cache = ops.max_pool2d_forward(x, self.kernel_size, self.stride, self.padding, self.dilation)
        self._remember(cache)
        return out

    def backward(self, dout):
        return ops.max_pool2d_backward(dout, self._recall())

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"


class AvgPool2d(Module):
    """Average pooling; stride defaults to kernel_size."""

    def __init__(
        self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None
    ):
        super().__init__()
        _unsupported(ceil_mode=ceil_mode, divisor_override=divisor_override is not None)
        check_pool_arguments(kernel_size, stride, padding, pad_name="padding")
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.count_include_pad = count_include_pad

    def forward(self, x):
        out, cache = ops.avg_pool2d_forward(x, self.kernel_size, self.stride, self.padding, self.count_include_pad)
        self._remember(cache)
        return out

    def backward(self, dout):
        return ops.avg_pool2d_backward(dout, self._recall())

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size, with PyTorch's windows; (1, 1) is global pooling."""

    def __init__(self, output_size):
        super().__init__()
        int_pair(output_size, "output_size", minimum=1)
        self.output_size = output_size

    def forward(self, x):
        out, cache = ops.adaptive_avg_pool2d_forward(x, self.output_size)
        self._remember(cache)
        return out

    def backward(self, dout):
        return ops.adaptive_avg_pool2d_backward(dout, self._recall())

    def extra_repr(self):
        return f"output_size={self.output_size}"


class GlobalAvgPool2d(AdaptiveAvgPool2d):
    """d2l's global average pooling: (N, C, H, W) -> (N, C, 1, 1)."""

    def __init__(self):
        super().__init__(1)

    def extra_repr(self):
        return ""
