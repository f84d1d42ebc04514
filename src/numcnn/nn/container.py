"""Sequential and Residual: composing modules.

Sequential chains modules; backward runs them in reverse. Residual adds a
skip connection (He et al. 2016, d2l's residual block):

    out = relu(body(x) + shortcut(x))           shortcut = identity when None

and backward sends the gradient through both branches and adds them:
dx = body.backward(g) + shortcut.backward(g) with g = dout * (out > 0).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import ops
from .activation import ReLU
from .conv import Conv2d
from .module import Module
from .norm import BatchNorm2d


class Sequential(Module):
    """Modules applied in order; children are named "0", "1", ... (or by an OrderedDict)."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            items = list(modules[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(modules)]
        for name, module in items:
            if not isinstance(module, Module):
                raise ValueError(f"Sequential takes Modules, got {type(module).__name__} at position {name}")
            setattr(self, name, module)

    def append(self, module: Module) -> Sequential:
        setattr(self, str(len(self._children)), module)
        return self

    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self):
        return iter(self._children.values())

    def __getitem__(self, index):
        if isinstance(index, str):
            return self._children[index]
        modules = list(self._children.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        return modules[index]

    def forward(self, x):
        for module in self._children.values():
            x = module(x)
        return x

    def backward(self, dout):
        for module in reversed(self._children.values()):
            dout = module.backward(dout)
        return dout


class Residual(Module):
    """relu(body(x) + shortcut(x)); the shortcut is the identity when None.

    Use Residual.block(in_channels, out_channels, stride) for the standard
    basic block, whose shortcut is a strided 1x1 convolution and batch norm
    exactly when the shape changes.
    """

    def __init__(self, body: Module, shortcut: Module | None = None, activation: bool = True):
        super().__init__()
        self.body = body
        if shortcut is not None:
            self.shortcut = shortcut
        self.activation = activation

    @classmethod
    def block(
        cls,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        bias: bool = False,
        shortcut_norm: bool = True,
        *,
        dtype=np.float32,
        rng=None,
    ) -> Residual:
        """conv3x3(stride)-BN-ReLU-conv3x3-BN, plus a 1x1 conv(-BN) projection when shapes change.

        d2l's block is bias=True, shortcut_norm=False; He et al.'s (and
        torchvision's) is bias=False with a batch-normed projection.
        """
        body = Sequential(
            Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=bias, dtype=dtype, rng=rng),
            BatchNorm2d(out_channels, dtype=dtype),
            ReLU(),
            Conv2d(out_channels, out_channels, 3, 1, padding=1, bias=bias, dtype=dtype, rng=rng),
            BatchNorm2d(out_channels, dtype=dtype),
        )
        shortcut = None
        if stride != 1 or in_channels != out_channels:
            projection = Conv2d(in_channels, out_channels, 1, stride, bias=bias, dtype=dtype, rng=rng)
            shortcut = Sequential(projection, BatchNorm2d(out_channels, dtype=dtype)) if shortcut_norm else projection
        return cls(body, shortcut)

    @property
    def has_shortcut(self) -> bool:
        return "shortcut" in self._children

    def forward(self, x):
        branch = self.body(x)
        skip = self.shortcut(x) if self.has_shortcut else x
        if branch.shape != skip.shape:
            raise ValueError(
                f"Residual: body output {branch.shape} and shortcut output {skip.shape} differ; "
                f"pass a shortcut that maps x to the body's shape (e.g. a strided 1x1 Conv2d)"
            )
        total = branch + skip
        if not self.activation:
            self._remember(None)
            return total
        out, cache = ops.relu_forward(total)
        self._remember(cache)
        return out

    def backward(self, dout):
        cache = self._recall()
        grad = dout if cache is None else ops.relu_backward(dout, cache)
        dx = self.body.backward(grad)
        return dx + (self.shortcut.backward(grad) if self.has_shortcut else grad)

    def extra_repr(self):
        return "" if self.activation else "activation=False"
