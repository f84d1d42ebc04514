"""numcnn.models: the CS231n assignment's models and Module networks.

CS231n protocol models (params + loss(X, y=None)): TwoLayerNet,
FullyConnectedNet, ThreeLayerConvNet, and Classifier(net) for any Module.

Module networks by name: build("resnet20", num_classes=10) and available();
register(name, factory) adds one.

Checkpoints: every model here registers how it is saved and rebuilt
(registry.py: register_serializer, register_rebuilder); numcnn.io stores
the spec and arrays, load_model(path) rebuilds the model with its weights.
serialization.py describes a Module network as its module tree; from_spec.py
builds a model back from a spec, bounded by the arrays the file holds.

Layer: above nn. May import numpy, numcnn.checks, ops, nn and io;
never the Solver, data, sweep or the CLI.
"""

from __future__ import annotations

from .airbench import airbench
from .classifier import Classifier
from .cnn import ThreeLayerConvNet
from .fc_net import FullyConnectedNet, TwoLayerNet
from .from_spec import build_from_spec, load_model
from .registry import (
    available,
    build,
    build_spec_of,
    rebuild,
    register,
    register_rebuilder,
    register_serializer,
)
from .resnet import resnet18_d2l, resnet_cifar
from .small import small_cnn
from .vgg import vgg, vgg11

register("resnet20", lambda **kw: resnet_cifar(20, **kw))
register("resnet32", lambda **kw: resnet_cifar(32, **kw))
register("resnet56", lambda **kw: resnet_cifar(56, **kw))
register("resnet18", resnet18_d2l)
register("airbench", airbench)
register("smallcnn", small_cnn)
register("vgg", vgg)
register("vgg11", vgg11)


__all__ = [
    "Classifier",
    "TwoLayerNet",
    "FullyConnectedNet",
    "ThreeLayerConvNet",
    "resnet_cifar",
    "resnet18_d2l",
    "airbench",
    "small_cnn",
    "vgg",
    "vgg11",
    "build",
    "rebuild",
    "available",
    "register",
    "load_model",
    "build_from_spec",
    "build_spec_of",
    "register_serializer",
    "register_rebuilder",
]
