"""A small CNN for quick runs on small images (digits, MNIST): numcnn train's default.

conv3x3(C -> w) - BN - ReLU - conv3x3(w -> w) - BN - ReLU - maxpool2
conv3x3(w -> 2w) - BN - ReLU - conv3x3(2w -> 2w) - BN - ReLU - maxpool2   (skipped on 8x8)
global average pool - linear(2w -> classes)
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import nn


def _conv_bn_relu(cin, cout, **kw):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False, **kw), nn.BatchNorm2d(cout, dtype=kw["dtype"]), nn.ReLU()]


def small_cnn(
    num_classes: int = 10,
    in_channels: int = 1,
    width: int = 32,
    second_pool: bool = True,
    *,
    dtype=np.float32,
    rng=None,
) -> nn.Sequential:
    """numcnn train's default network: a small CNN for small images (digits, MNIST).

        block1   conv3x3(in_channels -> w) - BN - ReLU - conv3x3(w -> w) - BN - ReLU - maxpool 2
        block2   conv3x3(w -> 2w) - BN - ReLU - conv3x3(2w -> 2w) - BN - ReLU - maxpool 2
        pool     global average pooling, then flatten
        fc       linear(2w -> num_classes)

    x (N, in_channels, H, W) -> scores (N, num_classes), with w = width. The convolutions
    have padding 1 and no bias. second_pool=False leaves out block2's pooling (for 8x8
    images). dtype and rng are the layers' parameter dtype and initialization Generator.
    """
    kw = dict(dtype=dtype, rng=rng)
    return nn.Sequential(
        OrderedDict(
            [
                (
                    "block1",
                    nn.Sequential(
                        *_conv_bn_relu(in_channels, width, **kw), *_conv_bn_relu(width, width, **kw), nn.MaxPool2d(2)
                    ),
                ),
                (
                    "block2",
                    nn.Sequential(
                        *_conv_bn_relu(width, 2 * width, **kw),
                        *_conv_bn_relu(2 * width, 2 * width, **kw),
                        *([nn.MaxPool2d(2)] if second_pool else []),
                    ),
                ),
                ("pool", nn.GlobalAvgPool2d()),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(2 * width, num_classes, **kw)),
            ]
        )
    )
