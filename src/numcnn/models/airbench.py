"""A fast CIFAR-10 network in the style of the airbench baselines (Keller Jordan, 2024).

    conv2x2(3 -> 24)                  the "whitening" layer (patch-whitening init optional)
    group(24 -> 64)    31 -> 15       conv3x3 - maxpool2 - BN - ReLU - conv3x3 - BN - ReLU
    group(64 -> 256)   15 -> 7
    group(256 -> 256)  7 -> 3
    maxpool3 - flatten - linear(256 -> classes) - scale(1/9)   3 -> 1

A VGG-like stack: no residuals, pooling inside each group so that the
second convolution of a group runs at the reduced size. As in airbench,
the logits are scaled by 1/9: without it the net's loss climbs from the
first steps at any learning rate above about 0.02 (measured with Nesterov
SGD, batch 256), with it the loss falls steadily at 0.4.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import nn


def conv_group(in_channels: int, out_channels: int, *, dtype=np.float32, rng=None) -> nn.Sequential:
    kw = dict(bias=False, dtype=dtype, rng=rng)
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(in_channels, out_channels, 3, padding=1, **kw)),
                ("pool", nn.MaxPool2d(2)),
                ("norm1", nn.BatchNorm2d(out_channels, dtype=dtype)),
                ("act1", nn.ReLU()),
                ("conv2", nn.Conv2d(out_channels, out_channels, 3, padding=1, **kw)),
                ("norm2", nn.BatchNorm2d(out_channels, dtype=dtype)),
                ("act2", nn.ReLU()),
            ]
        )
    )


def airbench(
    num_classes: int = 10,
    in_channels: int = 3,
    widths=(64, 256, 256),
    whiten_width: int = 24,
    output_scale: float = 1 / 9,
    *,
    dtype=np.float32,
    rng=None,
) -> nn.Sequential:
    """The airbench-style net; on 32x32 inputs the maps are 31, 15, 7 and 3 pixels wide."""
    kw = dict(dtype=dtype, rng=rng)
    return nn.Sequential(
        OrderedDict(
            [
                ("whiten", nn.Conv2d(in_channels, whiten_width, 2, padding=0, **kw)),
                ("act", nn.ReLU()),
                ("group1", conv_group(whiten_width, widths[0], **kw)),
                ("group2", conv_group(widths[0], widths[1], **kw)),
                ("group3", conv_group(widths[1], widths[2], **kw)),
                ("pool", nn.MaxPool2d(3)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(widths[2], num_classes, bias=False, **kw)),
                ("scale", nn.Scale(output_scale)),
            ]
        )
    )
