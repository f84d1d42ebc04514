"""Classifier: gives any Module network the CS231n Solver protocol.

    model = Classifier(net, reg=5e-4)
    scores = model.loss(X)              # evaluation mode
    loss, grads = model.loss(X, y)      # training mode, forward + backward

`model.params` maps dotted parameter names to arrays, and assigning to it
(as the Solver's update rules do, `model.params[name] = next_w`) writes
through to the network. The L2 term 0.5 * reg * sum(W**2) covers the
weights of Linear, Conv2d and ConvTranspose2d layers, never biases or
normalization parameters. Buffers (running statistics) live in the network
and are reachable through `model.buffers`.
"""

from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np

from .. import ops
from ..nn import Conv2d, ConvTranspose2d, Linear, Module, Sequential
from .from_spec import rebuild_network
from .registry import build_spec_of, register_rebuilder, register_serializer
from .serialization import module_tree


class ParameterView(MutableMapping):
    """Dotted name -> parameter array of a Module; assignment replaces the module's array."""

    def __init__(self, net: Module, store: str = "params"):
        self._net, self._store = net, store

    def _names(self):
        getter = self._net.named_parameters if self._store == "params" else self._net.named_buffers
        return [name for name, _ in getter()]

    def __getitem__(self, name):
        module, key = self._net.locate(name)
        store = getattr(module, self._store)
        if key not in store:
            raise KeyError(name)
        return store[key]

    def __setitem__(self, name, value):
        module, key = self._net.locate(name)
        store = getattr(module, self._store)
        if key not in store:
            raise KeyError(name)
        value = np.asarray(value)
        if value.shape != store[key].shape:
            raise ValueError(f"{name} must keep its shape {store[key].shape}, got {value.shape}")
        store[key] = value

    def __delitem__(self, name):
        raise TypeError("parameters cannot be removed from a network")

    def __iter__(self):
        return iter(self._names())

    def __len__(self):
        return len(self._names())


def regularized_names(net: Module) -> list[str]:
    """Dotted names of the weights that L2 regularization covers."""
    names = []
    for prefix, module in net.named_modules():
        if isinstance(module, (Linear, Conv2d, ConvTranspose2d)):
            names.append(f"{prefix}.weight" if prefix else "weight")
    return names


def _first_conv(net: Module) -> Conv2d | None:
    """The network's first layer, if it is a convolution."""
    first = net
    while isinstance(first, Sequential) and len(first):
        first = first[0]
    return first if isinstance(first, Conv2d) else None


class Classifier:
    """A Module network with a classification loss: params and loss(X, y=None).

    loss: 'softmax' (cross-entropy, optionally with label_smoothing) or 'svm'.
    In loss(), the network's first convolution skips its input gradient,
    which nothing uses (the network itself is left as it was, for other
    callers of its backward); pass input_grad=True to keep it.
    """

    def __init__(
        self,
        net: Module,
        reg: float = 0.0,
        loss: str = "softmax",
        label_smoothing: float = 0.0,
        input_grad: bool = False,
    ):
        if not isinstance(net, Module):
            raise ValueError(f"net must be a numcnn.nn.Module, got {type(net).__name__}")
        if loss not in ("softmax", "svm"):
            raise ValueError(f"loss must be 'softmax' or 'svm', got {loss!r}")
        if label_smoothing and loss != "softmax":
            raise ValueError("label_smoothing applies to the softmax loss only")
        self.net, self.reg, self.loss_name, self.label_smoothing = net, reg, loss, label_smoothing
        self.config = dict(reg=reg, loss=loss, label_smoothing=label_smoothing, net=build_spec_of(net))
        self.params = ParameterView(net, "params")
        self.buffers = ParameterView(net, "buffers")
        self.regularized = regularized_names(net)
        self._spared = None if input_grad else _first_conv(net)  # its dx is skipped in loss()

    def spec(self) -> dict:
        """Class and arguments; "modules" is the network's module tree (None if it cannot be rebuilt)."""
        return {"type": "Classifier", "config": self.config, "modules": module_tree(self.net)}

    def state_arrays(self) -> dict[str, np.ndarray]:
        return dict(self.net.state_dict())

    def load_state_arrays(self, arrays: dict) -> None:
        self.net.load_state_dict(arrays)

    def scores(self, X) -> np.ndarray:
        """Class scores in evaluation mode (dropout off, running statistics used)."""
        self.net.eval()
        return self.net(X)

    def loss(self, X, y=None):
        if y is None:
            return self.scores(X)
        self.net.train()
        scores = self.net(X)
        if self.loss_name == "softmax":
            loss, dscores = ops.softmax_loss(scores, y, label_smoothing=self.label_smoothing)
        else:
            loss, dscores = ops.svm_loss(scores, y)
        self._backward(dscores)
        grads = dict(self.net.named_grads())
        if self.reg:
            for name in self.regularized:
                W = self.params[name]
                loss += 0.5 * self.reg * float(np.sum(W * W, dtype=np.float64))
                grads[name] = grads[name] + self.reg * W
        return loss, grads

    def _backward(self, dscores) -> None:
        if self._spared is None:
            self.net.backward(dscores)
            return
        kept, self._spared.input_grad = self._spared.input_grad, False
        try:
            self.net.backward(dscores)
        finally:
            self._spared.input_grad = kept

    def __repr__(self) -> str:
        return f"Classifier(reg={self.reg}, loss={self.loss_name!r})\n{self.net!r}"


def _rebuild(spec: dict, path, budget: int) -> Classifier:
    """A Classifier spec's model: its network (module tree or build() name), then the loss settings."""
    net = rebuild_network(spec, path, budget)
    return Classifier(net, **{k: v for k, v in (spec.get("config") or {}).items() if k != "net"})


register_serializer(
    Classifier, spec=Classifier.spec, arrays=Classifier.state_arrays, load_arrays=Classifier.load_state_arrays
)
register_rebuilder("Classifier", _rebuild)
