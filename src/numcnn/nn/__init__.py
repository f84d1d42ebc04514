"""numcnn.nn: stateful modules over numcnn.ops, with torch.nn's names and arguments.

Each module keeps its parameters, gradients and buffers in dicts, and the
cache of its last forward for one backward:

    out = module(x)              # forward
    dx = module.backward(dout)   # sets module.grads

first_nonfinite(net, x) names the first layer whose parameters or output
are NaN or infinite (the Solver's NaN guard uses it).

random_state captures and restores every generator a network draws from
(NumPy's global one, nn's default one, any a module holds), for exact resume.

shard says which rows of a batch a data-parallel worker holds; the layers
that couple a batch's rows honour it (batch norm in training synchronizes
its statistics and backward sums, instance norm its running statistics,
dropout keeps its rows of the whole batch's mask), so workers compute one
worker's result. Every other module works on each sample alone.

Layer: above ops. May import numpy, numcnn.checks and numcnn.ops; never models,
train, data or the CLI.
"""

from .activation import GELU, LeakyReLU, ReLU
from .container import Residual, Sequential
from .conv import Conv2d, ConvTranspose2d
from .diagnose import explain_nonfinite, first_nonfinite, first_nonfinite_parameter
from .dropout import Dropout
from .init import manual_seed
from .linear import Flatten, Identity, Linear, Scale
from .module import Module
from .norm import BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm, LocalResponseNorm
from .pool import AdaptiveAvgPool2d, AvgPool2d, GlobalAvgPool2d, MaxPool2d

__all__ = [
    "Module",
    "Sequential",
    "Residual",
    "Linear",
    "Conv2d",
    "ConvTranspose2d",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "GlobalAvgPool2d",
    "ReLU",
    "GELU",
    "LeakyReLU",
    "Flatten",
    "Identity",
    "Scale",
    "Dropout",
    "BatchNorm1d",
    "BatchNorm2d",
    "LayerNorm",
    "GroupNorm",
    "InstanceNorm2d",
    "LocalResponseNorm",
    "manual_seed",
    "first_nonfinite",
    "first_nonfinite_parameter",
    "explain_nonfinite",
]
