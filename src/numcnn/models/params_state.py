"""How the assignment's models (TwoLayerNet, FullyConnectedNet, ThreeLayerConvNet) are saved and rebuilt.

Their state is `params` (W1, b1, gamma1, ...) plus FullyConnectedNet's
batch-norm running statistics in `bn_params`; their spec is the class name
and constructor arguments (`config`). Rebuilding checks the number of
weights a config asks for against what the checkpoint holds before
anything is drawn.
"""

from __future__ import annotations

import numpy as np

from .from_spec import MAX_LIST, _float_dtype, _OverBudget, _short, not_recorded
from .registry import register_serializer


class ParamsState:
    """The protocol for the assignment's models: params, plus FullyConnectedNet's bn_params."""

    def spec(self) -> dict:
        return {"type": type(self).__name__, "config": self.config}

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"params.{k}": np.asarray(v) for k, v in self.params.items()}
        for i, bn_param in enumerate(getattr(self, "bn_params", [])):
            for key in ("running_mean", "running_var"):
                if key in bn_param:
                    arrays[f"bn_params.{i}.{key}"] = np.asarray(bn_param[key])
        return arrays

    def load_state_arrays(self, arrays: dict) -> None:
        for key, value in arrays.items():
            kind, rest = key.split(".", 1)
            if kind == "params":
                self.params[rest] = value.astype(self.params[rest].dtype, copy=True)
            else:
                index, name = rest.split(".")
                self.bn_params[int(index)][name] = value.copy()


def assignment_rebuilder(cls):
    """rebuild(spec, path, budget) for TwoLayerNet, FullyConnectedNet or ThreeLayerConvNet: the
    size its config asks for is checked against the budget before anything is drawn."""

    def rebuild(spec: dict, path, budget: int):
        if spec.get("config") is None:
            raise not_recorded(path, spec.get("type"))
        config = dict(spec["config"])
        if "dtype" in config:
            config["dtype"] = _float_dtype(config["dtype"])
        if isinstance(config.get("input_dim"), list):
            config["input_dim"] = tuple(config["input_dim"])
        weights = _assignment_weights(cls.__name__, config)
        if weights > budget:
            raise _OverBudget(f"its config asks for {weights:,} weights, the file holds {budget:,} numbers")
        return cls(**config)

    return rebuild


def _assignment_weights(kind: str, config: dict) -> int:
    """How many weights an assignment model's constructor draws (its weight matrices' sizes)."""

    def positive(name, value):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {_short(value)}")
        return value

    classes = positive("num_classes", config.get("num_classes", 10))
    if kind == "TwoLayerNet":
        dims = [
            positive("input_dim", config.get("input_dim", 3 * 32 * 32)),
            positive("hidden_dim", config.get("hidden_dim", 100)),
            classes,
        ]
    elif kind == "FullyConnectedNet":
        hidden = config.get("hidden_dims")
        if not isinstance(hidden, list) or len(hidden) > MAX_LIST:
            raise ValueError(f"hidden_dims must be a list of at most {MAX_LIST} ints, got {_short(hidden)}")
        dims = [
            positive("input_dim", config.get("input_dim", 3 * 32 * 32)),
            *(positive("hidden_dims", h) for h in hidden),
            classes,
        ]
    else:
        shape = config.get("input_dim", (3, 32, 32))
        if not isinstance(shape, tuple) or len(shape) != 3:
            raise ValueError(f"input_dim must be (C, H, W), got {_short(shape)}")
        C, H, W = (positive("input_dim", v) for v in shape)
        F = positive("num_filters", config.get("num_filters", 32))
        size = positive("filter_size", config.get("filter_size", 7))
        hidden = positive("hidden_dim", config.get("hidden_dim", 100))
        return F * C * size * size + F * (H // 2) * (W // 2) * hidden + hidden * classes
    return sum(a * b for a, b in zip(dims, dims[1:]))


register_serializer(
    ParamsState, spec=ParamsState.spec, arrays=ParamsState.state_arrays, load_arrays=ParamsState.load_state_arrays
)
