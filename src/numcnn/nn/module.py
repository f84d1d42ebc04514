"""Module: the stateful wrapper around an op pair.

A Module owns its parameters (`params`), their gradients (`grads`) and any
running statistics (`buffers`), each a dict of NumPy arrays keyed by short
names ("weight", "bias", "running_mean"). Child modules assigned as
attributes are registered in order, so that `named_parameters()` and
`state_dict()` use dotted names ("features.0.weight") exactly as PyTorch
does, and a state dict moves between the two frameworks one to one.

`forward(x)` computes the output and keeps the cache of that call on the
module; `backward(dout)` consumes it, sets (never accumulates) the
gradients and returns dx. A backward with no fresh forward raises instead
of silently reusing a stale cache.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterator

import numpy as np

from ..checks import float_dtype


class Module(ABC):
    """Base class of layers and networks."""

    def __init__(self) -> None:
        object.__setattr__(self, "_children", OrderedDict())
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.training = True
        self._cache = None
        self._cache_fresh = False  # a forward's cache waits for its one backward
        self._ran_forward = False

    # -- children -----------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        children = self.__dict__.get("_children")
        if isinstance(value, Module):
            if children is None:
                raise RuntimeError("call Module.__init__() before assigning child modules")
            children[name] = value
        elif children is not None and name in children:
            del children[name]
        object.__setattr__(self, name, value)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._children.items()

    def children(self) -> Iterator[Module]:
        yield from self._children.values()

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._children.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    # -- forward and backward --------------------------------------------------
    @abstractmethod
    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute the output and remember what backward needs."""

    @abstractmethod
    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Set self.grads from dout and the last forward's cache; return dx."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def _remember(self, cache) -> None:
        """Keep the cache of this forward for exactly one backward."""
        self._cache = cache
        self._cache_fresh = True
        self._ran_forward = True

    def _recall(self):
        """The cache of the last forward, which a backward may use once."""
        if not self._cache_fresh:
            raise RuntimeError(
                f"{type(self).__name__}.backward() needs a forward() first: it was called "
                + ("twice for one forward" if self._ran_forward else "before any forward")
            )
        self._cache_fresh = False
        cache, self._cache = self._cache, None  # release the memory
        return cache

    def _set_grads(self, **grads: np.ndarray | None) -> None:
        """self.grads = {name: grad} for this module's own parameters, each cast to its parameter's dtype.

        The ops compute in the input's dtype, so float64 data through float32
        parameters gives float64 gradients; the optimizer must get the
        parameter's. A None gradient, or one for a parameter the module was
        built without (a norm's bias with bias=False), is dropped.
        """
        self.grads = {
            name: grad.astype(self.params[name].dtype, copy=False)
            for name, grad in grads.items()
            if grad is not None and name in self.params
        }

    # -- modes ---------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    # -- parameters, gradients, state ------------------------------------------
    def named_parameters(self) -> Iterator[tuple[str, np.ndarray]]:
        for prefix, module in self.named_modules():
            for key, value in module.params.items():
                yield (f"{prefix}.{key}" if prefix else key), value

    def parameters(self) -> Iterator[np.ndarray]:
        for _, value in self.named_parameters():
            yield value

    def named_grads(self) -> Iterator[tuple[str, np.ndarray]]:
        for prefix, module in self.named_modules():
            for key, value in module.grads.items():
                yield (f"{prefix}.{key}" if prefix else key), value

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        for prefix, module in self.named_modules():
            for key, value in module.buffers.items():
                yield (f"{prefix}.{key}" if prefix else key), value

    def num_parameters(self) -> int:
        return sum(int(p.size) for p in self.parameters())

    def zero_grad(self) -> None:
        """Set every gradient to zeros (backward sets them anew anyway)."""
        for module in self.modules():
            module.grads = {key: np.zeros_like(value) for key, value in module.params.items()}

    def locate(self, dotted_name: str) -> tuple[Module, str]:
        """The module owning a dotted parameter or buffer name, and the short key."""
        *path, key = dotted_name.split(".")
        module = self
        for part in path:
            if part not in module._children:
                raise KeyError(f"{type(self).__name__} has no submodule {'.'.join(path)!r} (in {dotted_name!r})")
            module = module._children[part]
        if key not in module.params and key not in module.buffers:
            raise KeyError(f"{type(self).__name__} has no parameter or buffer {dotted_name!r}")
        return module, key

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Copies of every parameter and buffer, by dotted name, in registration order."""
        state = OrderedDict()
        for prefix, module in self.named_modules():
            for key, value in list(module.params.items()) + list(module.buffers.items()):
                state[f"{prefix}.{key}" if prefix else key] = np.array(value, copy=True)
        return state

    def load_state_dict(self, state: dict, strict: bool = True) -> tuple[list[str], list[str]]:
        """Copy arrays into the module's parameters and buffers, checking names and shapes.

        Values may be NumPy arrays or anything np.asarray accepts (PyTorch
        tensors after .numpy()). With strict, missing or unexpected names
        raise KeyError; without, they are returned as (missing, unexpected).
        A shape mismatch always raises ValueError, before anything is copied.
        """
        own = self.state_dict()
        missing = [name for name in own if name not in state]
        unexpected = [name for name in state if name not in own]
        if strict and (missing or unexpected):
            raise KeyError(
                f"state dict does not match {type(self).__name__}: missing {missing}, unexpected {unexpected}"
            )
        updates = []
        for name, value in state.items():
            if name not in own:
                continue
            value = np.asarray(value)
            if value.shape != own[name].shape:
                raise ValueError(
                    f"{name}: the state dict holds shape {value.shape}, the module needs {own[name].shape}"
                )
            updates.append((name, value))
        for name, value in updates:
            module, key = self.locate(name)
            target = module.params if key in module.params else module.buffers
            target[key] = value.astype(target[key].dtype, copy=True)
        return missing, unexpected

    def to(self, dtype) -> Module:
        """Cast floating parameters, gradients and buffers (float64 for gradient checks)."""
        dtype = float_dtype(dtype)
        for module in self.modules():
            for store in (module.params, module.grads, module.buffers):
                for key, value in store.items():
                    if np.issubdtype(value.dtype, np.floating):
                        store[key] = value.astype(dtype)
        return self

    # -- printing --------------------------------------------------------------
    def extra_repr(self) -> str:
        """The constructor arguments worth showing, as in PyTorch."""
        return ""

    def __repr__(self) -> str:
        return "\n".join(self._summary_lines("", 0)) + f"\nparameters: {self.num_parameters():,}"

    def _summary_lines(self, name: str, depth: int) -> list[str]:
        own = sum(int(p.size) for p in self.params.values())
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in self.params.items())
        label = f"({name}): " if name else ""
        head = f"{'  ' * depth}{label}{type(self).__name__}({self.extra_repr()})"
        if own:
            head += f"  [{shapes}; {own:,} params]"
        lines = [head]
        for child_name, child in self._children.items():
            lines.extend(child._summary_lines(child_name, depth + 1))
        return lines
