"""Rebuilding a model from a checkpoint's spec, safely: load_model(path) is the model with its weights.

Classes come from a fixed registry (serialization.MODULES), never from names
imported out of the file. A file may come from anyone, so a spec is bounded
before and while it is built: at most MAX_DEPTH levels and MAX_MODULES
modules, and the arrays it allocates may not exceed, in number of elements,
the model arrays the checkpoint holds (the weights are drawn from a
generator that counts them before drawing).
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict

import numpy as np

from .. import nn
from ..io import Checkpoint, CheckpointError, load_checkpoint, restore_model
from .registry import available, build, rebuilder_for, record_build_spec, register_rebuilder
from .serialization import MODULES

MAX_DEPTH = 32
MAX_MODULES = 10_000
MAX_LIST = 64  # e.g. vgg's arch, hidden widths, kernel sizes
SMALL_INT = 1 << 16  # any int a spec may hold even when the file holds few arrays
DTYPES = ("float16", "float32", "float64")
_HOW_TO_RESTORE = (
    "build the model yourself, then load the weights with "
    "numcnn.io.restore_model(numcnn.io.load_checkpoint(path), model)"
)
_CHILD_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_]{0,63}\Z")
_MODULE_ATTRIBUTES = {"params", "grads", "buffers", "training", "activation"}
_DRAWS_WEIGHTS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)  # the classes that take rng=


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


register_rebuilder("Module", rebuild_network)
