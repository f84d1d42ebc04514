"""A fast CIFAR-10 network in the style of the airbench baselines (Keller Jordan, 2024).

    conv2x2(3 -> 24)                  the "whitening" layer (patch-whitening init optional)
    group(24 -> 64)    31 -> 15       conv3x3 - maxpool2 - BN - act - conv3x3 - BN - act
    group(64 -> 256)   15 -> 7
    group(256 -> 256)  7 -> 3
    maxpool3 - flatten - linear(256 -> classes) - scale(1/9)   3 -> 1

A VGG-like stack: no residuals, pooling inside each group so that the
second convolution of a group runs at the reduced size. As in airbench,
the logits are scaled by 1/9: without it the net's loss climbs from the
first steps at any learning rate above about 0.02 (measured with Nesterov
SGD, batch 256), with it the loss falls steadily at 0.4.

The defaults are numcnn's first version of the net (ReLU, PyTorch's batch
norm and initialization). airbench94's own choices are options:
activation="gelu", dirac=True (each 3x3 convolution starts with an identity
path: nn.init.dirac), batchnorm_eps=1e-12 and batchnorm_momentum=0.4
(airbench writes it as 0.6, the weight kept on the running average).
numcnn.train.airbench94 trains it with the rest of that recipe.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


def _activation(name: str) -> type:
    """The activation module class called `name` (ValueError naming the choices otherwise)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


def conv_group(
    in_channels: int,
    out_channels: int,
    *,
    activation: str = "relu",
    dirac: bool = False,
    batchnorm_eps: float = 1e-5,
    batchnorm_momentum: float = 0.1,
    dtype=np.float32,
    rng=None,
) -> nn.Sequential:
    """conv3x3 - maxpool2 - BN - act - conv3x3 - BN - act; the options as airbench() describes them."""
    act = _activation(activation)
    kw = dict(bias=False, dtype=dtype, rng=rng)
    norm = dict(eps=batchnorm_eps, momentum=batchnorm_momentum, dtype=dtype)
    conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, **kw)
    conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, **kw)
    if dirac:
        for conv in (conv1, conv2):
            conv.params["weight"] = nn.init.dirac(conv.params["weight"])
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", conv1),
                ("pool", nn.MaxPool2d(2)),
                ("norm1", nn.BatchNorm2d(out_channels, **norm)),
                ("act1", act()),
                ("conv2", conv2),
                ("norm2", nn.BatchNorm2d(out_channels, **norm)),
                ("act2", act()),
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
    activation: str = "relu",
    dirac: bool = False,
    batchnorm_eps: float = 1e-5,
    batchnorm_momentum: float = 0.1,
    dtype=np.float32,
    rng=None,
) -> nn.Sequential:
    """The airbench-style net; on 32x32 inputs the maps are 31, 15, 7 and 3 pixels wide.

    activation: "relu" or "gelu" after the whitening layer and each batch norm; dirac: the 3x3
    convolutions' first filters start as identities (nn.init.dirac); batchnorm_eps and
    batchnorm_momentum: every batch norm's (PyTorch's convention: the weight of the new batch).
    """
    kw = dict(dtype=dtype, rng=rng)
    group = dict(
        activation=activation, dirac=dirac, batchnorm_eps=batchnorm_eps, batchnorm_momentum=batchnorm_momentum, **kw
    )
    return nn.Sequential(
        OrderedDict(
            [
                ("whiten", nn.Conv2d(in_channels, whiten_width, 2, padding=0, **kw)),
                ("act", _activation(activation)()),
                ("group1", conv_group(whiten_width, widths[0], **group)),
                ("group2", conv_group(widths[0], widths[1], **group)),
                ("group3", conv_group(widths[1], widths[2], **group)),
                ("pool", nn.MaxPool2d(3)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(widths[2], num_classes, bias=False, **kw)),
                ("scale", nn.Scale(output_scale)),
            ]
        )
    )
