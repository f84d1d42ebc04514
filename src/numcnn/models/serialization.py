"""How numcnn's models describe themselves to checkpoints, and rebuild from them.

Networks of numcnn.nn modules register here (numcnn.models.registry);
the assignment's models (params_state.py) and Classifier register in
their own files. spec() is the class and constructor arguments (JSON-able);
state_arrays() every array that defines the model's state, by name;
load_state_arrays() puts them back. load_model(path) rebuilds a
checkpoint's model with its weights.

A network of numcnn.nn modules is saved as its module tree,

    {"class": "Sequential", "args": {}, "children": {
        "0": {"class": "Conv2d", "args": {"in_channels": 3, "out_channels": 16, ...}},
        ...}}

and rebuilt from it. Classes come from a fixed registry (MODULES), never
from names imported out of the file. A file may come from anyone, so a spec
is bounded before and while it is built: at most MAX_DEPTH levels and
MAX_MODULES modules, and the arrays it allocates may not exceed, in number
of elements, the model arrays the checkpoint holds (the weights are drawn
from a generator that counts them before drawing).
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict

import numpy as np

from .. import nn
from ..io import Checkpoint, CheckpointError, load_checkpoint, restore_model
from .registry import (
    available,
    build,
    build_spec_of,
    rebuilder_for,
    record_build_spec,
    register_rebuilder,
    register_serializer,
)

MAX_DEPTH = 32
MAX_MODULES = 10_000
MAX_LIST = 64  # e.g. vgg's arch, hidden widths, kernel sizes
SMALL_INT = 1 << 16  # any int a spec may hold even when the file holds few arrays
DTYPES = ("float16", "float32", "float64")
_HOW_TO_RESTORE = (
    "build the model yourself, then load the weights with "
    "numcnn.io.restore_model(numcnn.io.load_checkpoint(path), model)"
)


# -- the module tree ------------------------------------------------------------------


def _dtype_of(module: nn.Module) -> str:
    arrays = list(module.params.values()) + [v for v in module.buffers.values() if v.dtype.kind == "f"]
    return arrays[0].dtype.name if arrays else "float32"


def _pair(value):
    return list(value) if isinstance(value, tuple) else value


def _conv_args(m) -> dict:
    return dict(
        in_channels=m.in_channels,
        out_channels=m.out_channels,
        kernel_size=list(m.kernel_size),
        stride=list(m.stride),
        padding=_pair(m.padding),
        dilation=list(m.dilation),
        groups=m.groups,
        bias="bias" in m.params,
        dtype=_dtype_of(m),
    )


def _conv_transpose_args(m) -> dict:
    return dict(_conv_args(m), padding=list(m.padding), output_padding=list(m.output_padding))


def _batchnorm_args(m) -> dict:
    return dict(
        num_features=m.num_features,
        eps=m.eps,
        momentum=m.momentum,
        affine=m.affine,
        track_running_stats=m.track_running_stats,
        bias="bias" in m.params or not m.affine,
        dtype=_dtype_of(m),
    )


def _instancenorm_args(m) -> dict:
    affine = "weight" in m.params
    return dict(
        num_features=m.num_features,
        eps=m.eps,
        momentum=m.momentum,
        affine=affine,
        track_running_stats=m.track_running_stats,
        bias="bias" in m.params or not affine,
        dtype=_dtype_of(m),
    )


def _layernorm_args(m) -> dict:
    affine = "weight" in m.params
    return dict(
        normalized_shape=list(m.normalized_shape),
        eps=m.eps,
        elementwise_affine=affine,
        bias="bias" in m.params or not affine,
        dtype=_dtype_of(m),
    )


def _groupnorm_args(m) -> dict:
    affine = "weight" in m.params
    return dict(
        num_groups=m.num_groups,
        num_channels=m.num_channels,
        eps=m.eps,
        affine=affine,
        bias="bias" in m.params or not affine,
        dtype=_dtype_of(m),
    )


# class name -> (class, its constructor arguments read back from an instance)
MODULES = {
    "Sequential": (nn.Sequential, lambda m: {}),
    "Residual": (nn.Residual, lambda m: {"activation": bool(m.activation)}),
    "Conv2d": (nn.Conv2d, _conv_args),
    "ConvTranspose2d": (nn.ConvTranspose2d, _conv_transpose_args),
    "Linear": (
        nn.Linear,
        lambda m: dict(
            in_features=m.in_features, out_features=m.out_features, bias="bias" in m.params, dtype=_dtype_of(m)
        ),
    ),
    "BatchNorm1d": (nn.BatchNorm1d, _batchnorm_args),
    "BatchNorm2d": (nn.BatchNorm2d, _batchnorm_args),
    "InstanceNorm2d": (nn.InstanceNorm2d, _instancenorm_args),
    "LayerNorm": (nn.LayerNorm, _layernorm_args),
    "GroupNorm": (nn.GroupNorm, _groupnorm_args),
    "LocalResponseNorm": (nn.LocalResponseNorm, lambda m: dict(size=m.size, alpha=m.alpha, beta=m.beta, k=m.k)),
    "MaxPool2d": (
        nn.MaxPool2d,
        lambda m: dict(
            kernel_size=_pair(m.kernel_size),
            stride=_pair(m.stride),
            padding=_pair(m.padding),
            dilation=_pair(m.dilation),
        ),
    ),
    "AvgPool2d": (
        nn.AvgPool2d,
        lambda m: dict(
            kernel_size=_pair(m.kernel_size),
            stride=_pair(m.stride),
            padding=_pair(m.padding),
            count_include_pad=m.count_include_pad,
        ),
    ),
    "AdaptiveAvgPool2d": (nn.AdaptiveAvgPool2d, lambda m: dict(output_size=_pair(m.output_size))),
    "GlobalAvgPool2d": (nn.GlobalAvgPool2d, lambda m: {}),
    "ReLU": (nn.ReLU, lambda m: {}),
    "LeakyReLU": (nn.LeakyReLU, lambda m: dict(negative_slope=m.negative_slope)),
    "Flatten": (nn.Flatten, lambda m: dict(start_dim=m.start_dim, end_dim=m.end_dim)),
    "Identity": (nn.Identity, lambda m: {}),
    "Scale": (nn.Scale, lambda m: dict(factor=m.factor)),
    "Dropout": (nn.Dropout, lambda m: dict(p=m.p)),
}
_CHILD_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_]{0,63}\Z")
_MODULE_ATTRIBUTES = {"params", "grads", "buffers", "training", "activation"}
_DRAWS_WEIGHTS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)  # the classes that take rng=


def module_tree(net) -> dict | None:
    """The JSON spec of a network of numcnn modules, or None if some module is not in MODULES.

    Only exact classes count: a user's subclass (its own forward) cannot be
    rebuilt from a name.
    """
    name = type(net).__name__
    if MODULES.get(name, (None,))[0] is not type(net):
        return None
    node = {"class": name, "args": {k: _plain(v) for k, v in MODULES[name][1](net).items()}}
    children = {}
    for child_name, child in net.named_children():
        children[child_name] = module_tree(child)
        if children[child_name] is None:
            return None
    if children:
        node["children"] = children
    return node


def _plain(value):
    """A constructor argument as JSON holds it (NumPy scalars as Python numbers, tuples as lists)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


class _BudgetedGenerator(np.random.Generator):
    """A Generator that refuses to draw more than `budget` numbers in all, before drawing them.

    Layers draw their weights from it, so a spec asking for a 65 TiB weight
    is refused before any memory is taken.
    """

    def __init__(self, budget: int, seed: int = 0):
        super().__init__(np.random.PCG64(seed))
        self.budget = budget

    def _take(self, size) -> None:
        count = math.prod(size) if isinstance(size, tuple) else int(size or 1)
        if count > self.budget:
            raise _OverBudget(
                f"its layers ask for {count:,} more weights than the {self.budget:,} numbers left in the file"
            )
        self.budget -= count

    def uniform(self, low=0.0, high=1.0, size=None):
        self._take(size)
        return super().uniform(low, high, size)

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        self._take(size)
        return super().standard_normal(size, dtype, out)

    def normal(self, loc=0.0, scale=1.0, size=None):
        self._take(size)
        return super().normal(loc, scale, size)


class _OverBudget(ValueError):
    pass


class _Builder:
    """Builds a module tree from a spec, within the limits a checkpoint's arrays set."""

    def __init__(self, budget: int):
        self.rng = _BudgetedGenerator(budget)
        self.allocated, self.budget = 0, budget
        self.largest_int = max(budget, SMALL_INT)
        self.modules = 0

    def build(self, node, depth: int = 1) -> nn.Module:
        if depth > MAX_DEPTH:
            raise _OverBudget(f"its module tree is nested deeper than {MAX_DEPTH} levels")
        self.modules += 1
        if self.modules > MAX_MODULES:
            raise _OverBudget(f"it has more than {MAX_MODULES} modules")
        if not isinstance(node, dict) or not isinstance(node.get("class"), str):
            raise ValueError(f"a module must be an object with a 'class' name, got {_short(node)}")
        if node["class"] not in MODULES:
            raise ValueError(f"unknown module class {node['class'][:60]!r} (known: {', '.join(sorted(MODULES))})")
        cls = MODULES[node["class"]][0]
        args, children = node.get("args", {}), node.get("children", {})
        if not isinstance(args, dict) or not isinstance(children, dict):
            raise ValueError(f"a {cls.__name__}'s 'args' and 'children' must be objects")
        kwargs = {str(k): self.value(v, k) for k, v in args.items()}
        for name in children:
            if not _CHILD_NAME.match(name) or hasattr(nn.Residual, name) or name in _MODULE_ATTRIBUTES:
                raise ValueError(f"{_short(name)} cannot name a child module")
        built = {name: self.build(child, depth + 1) for name, child in children.items()}
        return self.construct(cls, kwargs, built)

    def construct(self, cls, kwargs: dict, children: dict) -> nn.Module:
        if cls is nn.Sequential:
            return nn.Sequential(OrderedDict(children), **kwargs)
        if cls is nn.Residual:
            if set(children) - {"body", "shortcut"} or "body" not in children:
                raise ValueError(f"a Residual's children are 'body' and 'shortcut', got {sorted(children)}")
            return nn.Residual(children["body"], children.get("shortcut"), **kwargs)
        if children:
            raise ValueError(f"a {cls.__name__} has no children, got {sorted(children)}")
        if "dtype" in kwargs:
            kwargs["dtype"] = _float_dtype(kwargs["dtype"])
        module = cls(**kwargs, rng=self.rng) if cls in _DRAWS_WEIGHTS else cls(**kwargs)
        self.allocated += sum(int(a.size) for a in (*module.params.values(), *module.buffers.values()))
        if self.allocated > self.budget:
            raise _OverBudget(f"its modules hold more numbers than the {self.budget:,} in the file")
        return module

    def value(self, value, name):
        """A JSON argument as a constructor takes it: lists become tuples; ints bounded."""
        if isinstance(value, list):
            if len(value) > MAX_LIST:
                raise _OverBudget(f"argument {name!r} is a list of {len(value)} (at most {MAX_LIST})")
            return tuple(self.value(v, name) for v in value)
        if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
            return value
        if isinstance(value, int):
            if abs(value) > self.largest_int:
                raise _OverBudget(f"argument {name!r} = {value} exceeds {self.largest_int:,}")
            return value
        raise ValueError(f"argument {name!r} has an unexpected value {_short(value)}")


def _float_dtype(name):
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {_short(name)}")
    return np.dtype(name)


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# -- rebuilding a checkpoint's model ------------------------------------------------------


def build_from_spec(spec: dict, path="checkpoint", budget: int | None = None):
    """The model a spec describes, with fresh weights (leaving np.random and nn's generator alone).

    budget: the most numbers its arrays may hold (load_model passes the
    number the checkpoint holds); None for no limit.
    """
    budget = (1 << 62) if budget is None else budget
    try:
        state = np.random.get_state()  # the assignment's models draw from np.random: leave it as it was
        try:
            return _build(spec, path, budget)
        finally:
            np.random.set_state(state)
    except CheckpointError:
        raise
    except (_OverBudget, ValueError, TypeError, KeyError, IndexError, OverflowError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise CheckpointError(f"{path}: the checkpoint's model cannot be rebuilt from its spec: {reason}") from None


def _build(spec: dict, path, budget: int):
    kind = spec.get("type")
    rebuild = rebuilder_for(kind)
    if rebuild is None:
        if spec.get("config") is None:
            raise not_recorded(path, kind)
        raise CheckpointError(f"{path}: cannot rebuild a {_short(kind)} from a checkpoint; {_HOW_TO_RESTORE}")
    return rebuild(spec, path, budget)


def not_recorded(path, kind) -> CheckpointError:
    """The error for a spec that does not say how to build its model."""
    return CheckpointError(
        f"{path}: the checkpoint does not record how to build its {kind} (it holds a "
        f"module that is not one of numcnn.nn's, or was written before numcnn saved "
        f"module trees); {_HOW_TO_RESTORE}"
    )


def rebuild_network(spec: dict, path, budget: int) -> nn.Module:
    """The network a "Module" (or "Classifier") spec holds: from its module tree, else by its build() name."""
    config, tree = spec.get("config"), spec.get("modules")
    if tree is not None:
        net = _Builder(budget).build(tree)
        build_spec = (config or {}).get("net")
        if build_spec is not None:
            record_build_spec(net, build_spec)
        return net
    if config is None or config.get("net") is None:
        raise not_recorded(path, spec.get("type"))
    return _build_by_name(dict(config["net"]), budget)  # written before module trees were saved


def _build_by_name(build_spec: dict, budget: int):
    """models.build() again from a build spec, its weights drawn within the budget."""
    name, num_classes = build_spec.pop("name", None), build_spec.pop("num_classes", None)
    if name not in available():
        raise ValueError(f"unknown model {_short(name)}")
    limits = _Builder(budget)
    kwargs = {str(k): limits.value(v, k) for k, v in build_spec.items()}
    if "dtype" in kwargs:
        kwargs["dtype"] = _float_dtype(kwargs["dtype"])
    return build(name, limits.value(num_classes, "num_classes"), rng=limits.rng, **kwargs)


def load_model(path_or_checkpoint):
    """Rebuild the model a checkpoint holds and load its weights.

    Works for numcnn's models and for any network made of numcnn.nn's
    modules (saved directly or inside a Classifier); for anything else,
    build the model yourself and call
    numcnn.io.restore_model(load_checkpoint(path), model).
    """
    checkpoint = (
        path_or_checkpoint if isinstance(path_or_checkpoint, Checkpoint) else load_checkpoint(path_or_checkpoint)
    )
    budget = sum(int(a.size) for a in checkpoint.model_arrays.values())
    model = build_from_spec(checkpoint.model_spec, checkpoint.path, budget)
    restore_model(checkpoint, model)
    return model


def module_spec(net: nn.Module) -> dict:
    """A bare network's spec: its module tree, and its build() arguments when build() made it."""
    return {"type": "Module", "config": {"net": build_spec_of(net)}, "modules": module_tree(net)}


register_serializer(
    nn.Module,
    spec=module_spec,
    arrays=lambda net: dict(net.state_dict()),
    load_arrays=lambda net, arrays: net.load_state_dict(arrays),
)
register_rebuilder("Module", rebuild_network)
