"""What numcnn.models registers: network factories by name, and how models are saved and rebuilt.

Factories: register(name, factory) makes build(name, num_classes, **kwargs)
call it; build() remembers the arguments it was given (build_spec_of(net)),
so a checkpoint can name the factory again.

Serialization: numcnn.io stores a model as a JSON spec
{"type": str, "config": dict | None, "modules": dict | None} and named
arrays, and knows nothing more. Each kind of model registers here

    register_serializer(cls, spec=..., arrays=..., load_arrays=...)   how an instance is saved
    register_rebuilder(type_name, rebuild)                             how a spec of that type is rebuilt

An instance is described by the first class of its MRO that is registered
(a subclass keeps its own type name, which has no rebuilder unless one is
registered); an object of no registered class is saved by its `params`
dict. This module gives numcnn.io its model codec when it is imported.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..io import use_model_codec
from ..nn import Module

_FACTORIES: dict[str, Callable[..., Module]] = {}
_BUILD_SPECS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def register(name: str, factory: Callable[..., Module]) -> None:
    """Make build(name, ...) call factory(...)."""
    _FACTORIES[name] = factory


def available() -> list[str]:
    """The names build() accepts: every registered network factory, sorted."""
    return sorted(_FACTORIES)


def build(name: str, num_classes: int = 10, **kwargs) -> Module:
    """A network by name, e.g. build("resnet20", num_classes=10, in_channels=3)."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}")
    net = _FACTORIES[name](num_classes=num_classes, **kwargs)
    # how to build it again, for checkpoints (JSON-able arguments only)
    spec = {"name": name, "num_classes": num_classes, **{k: v for k, v in kwargs.items() if k not in ("rng", "dtype")}}
    if "dtype" in kwargs:
        spec["dtype"] = np.dtype(kwargs["dtype"]).name
    record_build_spec(net, spec)
    return net


def rebuild(spec: dict) -> Module:
    """build() again from a network's build spec (as stored in checkpoints)."""
    spec = dict(spec)
    name, num_classes = spec.pop("name"), spec.pop("num_classes")
    if "dtype" in spec:
        spec["dtype"] = np.dtype(spec["dtype"])
    return build(name, num_classes, **spec)


def record_build_spec(net: Module, spec: dict) -> None:
    """Remember that build(**spec) makes `net` (held as long as the network lives)."""
    _BUILD_SPECS[net] = spec


def build_spec_of(net: Module) -> dict | None:
    """{"name", "num_classes", ...}: the build() arguments that made `net`, or None if build() did not."""
    return _BUILD_SPECS.get(net)


# -- serialization ----------------------------------------------------------------------


@dataclass(frozen=True)
class Serializer:
    """How instances of one class become a checkpoint's spec and arrays, and take their arrays back."""

    spec: Callable[[Any], dict]
    arrays: Callable[[Any], dict[str, np.ndarray]]
    load_arrays: Callable[[Any, dict], None]


def _plain_spec(model) -> dict:
    return {"type": type(model).__name__, "config": getattr(model, "config", None)}


def _plain_arrays(model) -> dict[str, np.ndarray]:
    return {f"params.{k}": np.asarray(v) for k, v in model.params.items()}


def _plain_load(model, arrays: dict) -> None:
    for key, value in arrays.items():
        model.params[key.split(".", 1)[1]] = value.copy()


PLAIN = Serializer(_plain_spec, _plain_arrays, _plain_load)  # any object with a `params` dict
_SERIALIZERS: dict[type, Serializer] = {}
# type name -> rebuild(spec, path, budget): the model with fresh weights, drawing at most `budget` numbers
_REBUILDERS: dict[str, Callable[[dict, Any, int], Any]] = {}


def register_serializer(
    cls: type, *, spec: Callable[[Any], dict], arrays: Callable[[Any], dict], load_arrays: Callable[[Any, dict], None]
) -> None:
    """Save instances of `cls` (and of its subclasses) with these three functions.

    Parameters
    ----------
    spec : model -> {"type": str, "config": dict | None, "modules": dict | None}, JSON-able.
    arrays : model -> {name: array}, every array that defines its state.
    load_arrays : (model, {name: array}) -> None, arrays already checked to fit the model.
    """
    _SERIALIZERS[cls] = Serializer(spec, arrays, load_arrays)


def register_rebuilder(type_name: str, rebuild: Callable[[dict, Any, int], Any]) -> None:
    """Rebuild specs whose "type" is type_name with rebuild(spec, path, budget).

    path names the file in error messages; budget is the most numbers the
    rebuilt model may draw (the checkpoint holds that many), so a spec from
    anyone cannot take more memory than its file promises.
    """
    _REBUILDERS[type_name] = rebuild


def serializer_for(model) -> Serializer:
    """The serializer of the first registered class in type(model)'s MRO, else PLAIN."""
    for cls in type(model).__mro__:
        if cls in _SERIALIZERS:
            return _SERIALIZERS[cls]
    return PLAIN


def rebuilder_for(type_name: str) -> Callable[[dict, Any, int], Any] | None:
    """The function registered to rebuild specs of this "type" (register_rebuilder), or None."""
    return _REBUILDERS.get(type_name)


class RegistryCodec:
    """numcnn.io's ModelCodec, answered from the registered serializers."""

    def spec(self, model) -> dict:
        return serializer_for(model).spec(model)

    def arrays(self, model) -> dict[str, np.ndarray]:
        return serializer_for(model).arrays(model)

    def load_arrays(self, model, arrays: dict[str, np.ndarray]) -> None:
        serializer_for(model).load_arrays(model, arrays)


use_model_codec(RegistryCodec())
