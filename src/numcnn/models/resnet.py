"""Residual networks: He et al.'s CIFAR ResNets and d2l's ResNet-18.

ResNet for CIFAR (He et al. 2016, section 4.2), depth 6n + 2:

    conv3x3(16)-BN-ReLU
    stage 1: n blocks, 16 channels, 32x32
    stage 2: n blocks, 32 channels, 16x16 (first block strides 2)
    stage 3: n blocks, 64 channels, 8x8   (first block strides 2)
    global average pool - linear

with a batch-normed 1x1 projection where a block changes shape (the
paper's option B). resnet20, resnet32 and resnet56 are n = 3, 5, 9.

d2l's ResNet-18 (chapter "Residual Networks"): a 7x7/2 stem with 3x3/2 max
pooling, four stages of two blocks (64, 128, 256, 512 channels), global
average pooling and a linear layer; its convolutions have biases and its
projections no batch norm, as in d2l's code.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import nn


def _stage(in_channels, out_channels, blocks, stride, **kwargs) -> nn.Sequential:
    layers = [nn.Residual.block(in_channels, out_channels, stride, **kwargs)]
    layers += [nn.Residual.block(out_channels, out_channels, 1, **kwargs) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def resnet_cifar(
    depth: int, num_classes: int = 10, in_channels: int = 3, widths=(16, 32, 64), *, dtype=np.float32, rng=None
) -> nn.Sequential:
    """He et al.'s CIFAR ResNet of the given depth (6n + 2)."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 (20, 32, 44, 56, 110, ...), got {depth}")
    n = (depth - 2) // 6
    kw = dict(dtype=dtype, rng=rng)
    return nn.Sequential(
        OrderedDict(
            [
                (
                    "stem",
                    nn.Sequential(
                        nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False, **kw),
                        nn.BatchNorm2d(widths[0], dtype=dtype),
                        nn.ReLU(),
                    ),
                ),
                ("stage1", _stage(widths[0], widths[0], n, 1, **kw)),
                ("stage2", _stage(widths[0], widths[1], n, 2, **kw)),
                ("stage3", _stage(widths[1], widths[2], n, 2, **kw)),
                ("pool", nn.GlobalAvgPool2d()),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(widths[2], num_classes, **kw)),
            ]
        )
    )


def resnet18_d2l(
    num_classes: int = 10, in_channels: int = 3, width: int = 64, *, dtype=np.float32, rng=None
) -> nn.Sequential:
    """d2l's ResNet-18 (made for 96x96 inputs; runs on 32x32 too, ending at 1x1).

    width: the stem's channels (64); the stages have width, 2, 4 and 8 times width.
    """
    kw = dict(dtype=dtype, rng=rng)
    block = dict(bias=True, shortcut_norm=False, **kw)
    w = width
    return nn.Sequential(
        OrderedDict(
            [
                (
                    "b1",
                    nn.Sequential(
                        nn.Conv2d(in_channels, w, 7, stride=2, padding=3, **kw),
                        nn.BatchNorm2d(w, dtype=dtype),
                        nn.ReLU(),
                        nn.MaxPool2d(3, 2, 1),
                    ),
                ),
                ("b2", _stage(w, w, 2, 1, **block)),
                ("b3", _stage(w, 2 * w, 2, 2, **block)),
                ("b4", _stage(2 * w, 4 * w, 2, 2, **block)),
                ("b5", _stage(4 * w, 8 * w, 2, 2, **block)),
                ("pool", nn.AdaptiveAvgPool2d((1, 1))),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(8 * w, num_classes, **kw)),
            ]
        )
    )
