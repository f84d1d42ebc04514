"""ReLU, LeakyReLU and GELU modules."""

from __future__ import annotations

from .. import ops
from ..checks import finite_float
from .module import Module


class ReLU(Module):
    """max(x, 0). `inplace` is accepted for PyTorch code and ignored: numcnn never overwrites inputs."""

    def __init__(self, inplace: bool = False):
        super().__init__()

    def forward(self, x):
        out, cache = ops.relu_forward(x)
        self._remember(cache)
        return out

    def backward(self, dout):
        return ops.relu_backward(dout, self._recall())


class LeakyReLU(Module):
    """x where x > 0, negative_slope * x elsewhere."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = finite_float(negative_slope, "negative_slope")

    def forward(self, x):
        out, cache = ops.leaky_relu_forward(x, self.negative_slope)
        self._remember(cache)
        return out

    def backward(self, dout):
        return ops.leaky_relu_backward(dout, self._recall())

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class GELU(Module):
    """x * Phi(x), Phi the standard normal CDF: PyTorch's nn.GELU() (the exact form, not 'tanh')."""

    def forward(self, x):
        out, cache = ops.gelu_forward(x)
        self._remember(cache)
        return out

    def backward(self, dout):
        return ops.gelu_backward(dout, self._recall())
