"""numcnn.models: the CS231n assignment's models and Module networks.

CS231n protocol models (params + loss(X, y=None)): TwoLayerNet,
FullyConnectedNet, ThreeLayerConvNet, and Classifier(net) for any Module.

Module networks by name: build("resnet20", num_classes=10) and available().

Layer: above nn. May import numpy, numcnn.checks, ops, nn and checkpoint
(load_model); never the Solver, data, sweep or the CLI.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..nn import Module
from .airbench import airbench
from .classifier import Classifier
from .cnn import ThreeLayerConvNet
from .fc_net import FullyConnectedNet, TwoLayerNet
from .resnet import resnet18_d2l, resnet_cifar
from .serialization import build_from_spec, load_model
from .small import small_cnn
from .vgg import vgg, vgg11

_REGISTRY: dict[str, Callable[..., Module]] = {
    "resnet20": lambda **kw: resnet_cifar(20, **kw),
    "resnet32": lambda **kw: resnet_cifar(32, **kw),
    "resnet56": lambda **kw: resnet_cifar(56, **kw),
    "resnet18": resnet18_d2l,
    "airbench": airbench,
    "smallcnn": small_cnn,
    "vgg": vgg,
    "vgg11": vgg11,
}


def register(name: str, factory: Callable[..., Module]) -> None:
    """Make build(name, ...) call factory(...)."""
    _REGISTRY[name] = factory


def available() -> list[str]:
    return sorted(_REGISTRY)


def build(name: str, num_classes: int = 10, **kwargs) -> Module:
    """A network by name, e.g. build("resnet20", num_classes=10, in_channels=3)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}")
    net = _REGISTRY[name](num_classes=num_classes, **kwargs)
    # how to build it again, for checkpoints (JSON-able arguments only)
    net.build_spec = {"name": name, "num_classes": num_classes,
                      **{k: v for k, v in kwargs.items() if k not in ("rng", "dtype")}}
    if "dtype" in kwargs:
        net.build_spec["dtype"] = np.dtype(kwargs["dtype"]).name
    return net


def rebuild(spec: dict) -> Module:
    """build() again from a network's build_spec (as stored in checkpoints)."""
    spec = dict(spec)
    name, num_classes = spec.pop("name"), spec.pop("num_classes")
    if "dtype" in spec:
        spec["dtype"] = np.dtype(spec["dtype"])
    return build(name, num_classes, **spec)


__all__ = ["Classifier", "TwoLayerNet", "FullyConnectedNet", "ThreeLayerConvNet", "resnet_cifar",
           "resnet18_d2l", "airbench", "small_cnn", "vgg", "vgg11", "build", "rebuild", "available", "register", "load_model",
           "build_from_spec"]
