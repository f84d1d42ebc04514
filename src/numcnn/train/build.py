"""The model of a training run: built by name for an input shape, and its first layer.

    model = build_model("smallcnn", (3, 32, 32), 10, weight_decay=5e-4, width=16)
    whiten_first_conv(model, X_train)        # patch-whitening filters for the first convolution
    first_layer_weights(model, (3, 32, 32))  # (F, C, KH, KW) images of the first layer, for pictures

Options a model would ignore (hidden, norm, dropout, width) are refused with a UserError.
"""

from __future__ import annotations

import numpy as np

from .. import models, nn
from .config import UserError, model_names, refuse_model_options
from .tricks import patch_whitening


def build_model(
    name: str,
    input_shape,
    num_classes: int,
    weight_decay: float = 0.0,
    label_smoothing: float = 0.0,
    hidden=None,
    norm=None,
    dropout=0.0,
    width=None,
):
    """A model with the Solver protocol; weight_decay is its L2 term (0.5 * reg * sum(W**2)).

    hidden (fc: sizes, default 100,100; twolayer, threelayer: one size, default 100), norm and
    dropout (fc), and width (the first layer's channels; the others keep the model's ratios)
    are refused with a UserError for a model they would not change.
    """
    if name not in model_names():
        raise UserError(f"unknown model {name!r}; choose from {', '.join(model_names())}")
    refuse_model_options(name, hidden, norm, dropout, width)
    C, H, W = input_shape
    smoothing = {"label_smoothing": label_smoothing}
    if name == "threelayer":
        return models.ThreeLayerConvNet(
            input_dim=(C, H, W),
            num_filters=width or 32,
            filter_size=7 if H >= 16 else 3,
            hidden_dim=(hidden or (100,))[0],
            num_classes=num_classes,
            weight_scale=1e-2,
            reg=weight_decay,
            **smoothing,
        )
    if name == "fc":
        return models.FullyConnectedNet(
            list(hidden or (100, 100)),
            input_dim=C * H * W,
            num_classes=num_classes,
            dropout_keep_ratio=1.0 - dropout,
            normalization=norm,
            reg=weight_decay,
            weight_scale=np.sqrt(2.0 / (C * H * W)),
            **smoothing,
        )
    if name == "twolayer":
        return models.TwoLayerNet(
            input_dim=C * H * W,
            hidden_dim=(hidden or (100,))[0],
            num_classes=num_classes,
            weight_scale=1e-2,
            reg=weight_decay,
            **smoothing,
        )
    return models.Classifier(
        models.build(name, num_classes, **_network_arguments(name, C, H, W, width)), reg=weight_decay, **smoothing
    )


def _network_arguments(name: str, C: int, H: int, W: int, width) -> dict:
    """models.build's keyword arguments for a Module network on (C, H, W) images, --width applied."""
    kwargs = {"in_channels": C}
    if name == "smallcnn":
        kwargs["second_pool"] = H >= 16
    if name in ("vgg", "vgg11"):
        kwargs["image_size"] = (H, W)
    if width is None:
        return kwargs
    if name.startswith("resnet") and name != "resnet18":  # He et al.'s CIFAR stages: w, 2w, 4w
        kwargs["widths"] = (width, 2 * width, 4 * width)
    elif name == "airbench":  # airbench's groups: 64, 256, 256
        kwargs["widths"] = (width, 4 * width, 4 * width)
    elif name == "vgg":  # channels double from block to block
        kwargs["arch"] = [(1, width), (1, 2 * width), (1, 4 * width)]
    else:  # smallcnn, vgg11, resnet18 take width themselves
        kwargs["width"] = width
    return kwargs


def _named_first_conv(model):
    """(dotted name, Conv2d) of a Module network's first convolution, or None."""
    net = getattr(model, "net", None)
    for name, module in net.named_modules() if net is not None else []:
        if isinstance(module, nn.Conv2d):
            return name, module
    return None


def _batchnorm_weights(model) -> list[str]:
    """Names of the batch-norm scales: a Module network's BatchNorm weights, fc's gamma1, gamma2, ..."""
    if getattr(model, "normalization", None) == "batchnorm":  # FullyConnectedNet(normalization="batchnorm")
        return [name for name in model.params if name.startswith("gamma")]
    net = getattr(model, "net", None)
    return [
        f"{name}.weight"
        for name, module in (net.named_modules() if net is not None else [])
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and "weight" in module.params
    ]


def whiten_first_conv(model, X, samples: int = 5000) -> str:
    """Set the first conv's filters to patch-whitening ones from training images; returns its weight's name."""
    found = _named_first_conv(model)
    if found is None:
        raise UserError("--whiten needs a network whose first layer is a Conv2d")
    name, conv = found
    C, (k, _) = conv.in_channels, conv.kernel_size
    if conv.out_channels != 2 * C * k * k:
        raise UserError(
            f"--whiten needs the first conv to have 2*C*k*k = {2 * C * k * k} filters, it has {conv.out_channels}"
        )
    conv.params["weight"] = patch_whitening(X[:samples], k).astype(conv.params["weight"].dtype)
    return f"{name}.weight"


def first_layer_weights(model, input_shape=None):
    """The first layer's weights as images (F, C, KH, KW), for pictures, or None.

    A convolution's filters as they are; a fully connected first layer W1 (C*H*W, F) as
    one (C, H, W) image per hidden unit, as the CS231n notebooks show them. Without
    input_shape, square one-channel (or three-channel) inputs are assumed.
    """
    params = model.params
    if "W1" in params:  # the assignment's models
        W1 = np.asarray(params["W1"])
        if W1.ndim == 4:
            return W1
        shape = tuple(input_shape) if input_shape is not None else _square_image_shape(W1.shape[0])
        if shape is None or int(np.prod(shape)) != W1.shape[0]:
            return None
        return W1.T.reshape(-1, *shape)
    for name in params:
        value = np.asarray(params[name])
        if value.ndim == 4:
            return value
    return None


def _square_image_shape(features: int):
    """(C, S, S) with C 1 or 3 and C*S*S == features, or None."""
    for channels in (1, 3):
        side = int(round(np.sqrt(features / channels)))
        if channels * side * side == features:
            return channels, side, side
    return None
