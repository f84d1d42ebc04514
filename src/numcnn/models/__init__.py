"""numcnn.models: the CS231n assignment's models and Module networks.

CS231n protocol models (params + loss(X, y=None)): TwoLayerNet,
FullyConnectedNet, ThreeLayerConvNet, and Classifier(net) for any Module.

Module networks by name: build("resnet20", num_classes=10) and available().
"""

from __future__ import annotations

from typing import Callable

from ..nn import Module
from .airbench import airbench
from .classifier import Classifier
from .cnn import ThreeLayerConvNet
from .fc_net import FullyConnectedNet, TwoLayerNet
from .resnet import resnet18_d2l, resnet_cifar

_REGISTRY: dict[str, Callable[..., Module]] = {
    "resnet20": lambda **kw: resnet_cifar(20, **kw),
    "resnet32": lambda **kw: resnet_cifar(32, **kw),
    "resnet56": lambda **kw: resnet_cifar(56, **kw),
    "resnet18": resnet18_d2l,
    "airbench": airbench,
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
    return _REGISTRY[name](num_classes=num_classes, **kwargs)


__all__ = ["Classifier", "TwoLayerNet", "FullyConnectedNet", "ThreeLayerConvNet", "resnet_cifar",
           "resnet18_d2l", "airbench", "build", "available", "register"]
