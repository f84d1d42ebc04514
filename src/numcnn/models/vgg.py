"""VGG-style networks: blocks of 3x3 convolutions, each block ending in 2x2 max pooling.

Simonyan & Zisserman (2015), as d2l.ai builds them ("Networks Using Blocks"):

    vgg_block(num_convs, c): num_convs x [conv3x3(pad 1) - BN - ReLU] - maxpool 2x2     halves H and W
    vgg(arch): the blocks of arch = ((num_convs, channels), ...) in turn
               - flatten - [linear(hidden) - ReLU - dropout] x len(hidden) - linear(classes) ("fc")

VGG-11 is arch VGG11 = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
with two 4096-wide hidden layers on 224x224 images; on 32x32 ones its last
block ends at 1x1. The default arch, ((1, 32), (1, 64), (1, 128)), is a
small, fast net for 28x28 and 32x32 images. Batch norm after every
convolution (which the 2015 paper predates) lets them train at high
learning rates.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import nn

VGG11 = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
SMALL = ((1, 32), (1, 64), (1, 128))


def vgg_block(
    num_convs: int, in_channels: int, out_channels: int, batch_norm: bool = True, *, dtype=np.float32, rng=None
) -> nn.Sequential:
    """One VGG block: num_convs times conv 3x3 (pad 1) - batch norm - ReLU, then 2x2 max pooling.

    (N, in_channels, H, W) -> (N, out_channels, H // 2, W // 2). The first convolution
    maps in_channels to out_channels, the others keep out_channels. With batch_norm the
    convolutions have no bias (the norm's beta takes its place); without, there is no norm
    layer. dtype and rng are the layers' parameter dtype and initialization Generator.
    """
    layers = []
    for i in range(num_convs):
        layers.append(
            nn.Conv2d(
                in_channels if i == 0 else out_channels,
                out_channels,
                3,
                padding=1,
                bias=not batch_norm,
                dtype=dtype,
                rng=rng,
            )
        )
        layers += [nn.BatchNorm2d(out_channels, dtype=dtype)] if batch_norm else []
        layers.append(nn.ReLU())
    return nn.Sequential(*layers, nn.MaxPool2d(2))


def vgg(
    num_classes: int = 10,
    in_channels: int = 3,
    arch=SMALL,
    image_size=(32, 32),
    hidden=(),
    dropout: float = 0.5,
    batch_norm: bool = True,
    *,
    dtype=np.float32,
    rng=None,
) -> nn.Sequential:
    """A VGG-style net for images of image_size (H, W); each block halves them (rounding down)."""
    arch = [(int(n), int(c)) for n, c in arch]
    if not arch or min(n for n, _ in arch) < 1:
        raise ValueError(f"arch must be a non-empty list of (num_convs >= 1, channels), got {arch}")
    H, W = image_size
    if H >> len(arch) < 1 or W >> len(arch) < 1:
        raise ValueError(f"{len(arch)} blocks halve {H}x{W} images below one pixel; use fewer blocks or larger images")
    kw = dict(dtype=dtype, rng=rng)
    layers, channels = OrderedDict(), in_channels
    for index, (num_convs, out_channels) in enumerate(arch, 1):
        layers[f"block{index}"] = vgg_block(num_convs, channels, out_channels, batch_norm, **kw)
        channels = out_channels
    layers["flatten"] = nn.Flatten()
    features = channels * (H >> len(arch)) * (W >> len(arch))
    for index, width in enumerate(hidden, 1):
        layers[f"hidden{index}"] = nn.Linear(features, width, **kw)
        layers[f"act{index}"] = nn.ReLU()
        layers[f"drop{index}"] = nn.Dropout(dropout)
        features = width
    layers["fc"] = nn.Linear(features, num_classes, **kw)
    return nn.Sequential(layers)


def vgg11(
    num_classes: int = 10, in_channels: int = 3, image_size=(32, 32), width: int = 64, *, dtype=np.float32, rng=None
) -> nn.Sequential:
    """d2l's VGG-11 with batch norm: five blocks, two 4096-wide hidden layers with dropout 0.5.

    width: the first block's channels (64); the others keep VGG11's ratios (2, 4, 8, 8 times width).
    """
    arch = [(n, c * width // 64) for n, c in VGG11]
    return vgg(num_classes, in_channels, arch, image_size, hidden=(4096, 4096), dropout=0.5, dtype=dtype, rng=rng)
