"""How numcnn's models describe themselves to checkpoints, and rebuild from them.

spec() is the class and constructor arguments (JSON-able); state_arrays()
every array that defines the model's state, by name; load_state_arrays()
puts them back. load_model(path) rebuilds a checkpoint's model with its
weights.
"""

from __future__ import annotations

import numpy as np

from ..checkpoint import Checkpoint, CheckpointError, load_checkpoint, restore_model


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


def build_from_spec(spec: dict, path="checkpoint"):
    """The model a spec describes, with fresh weights."""
    from . import Classifier, FullyConnectedNet, ThreeLayerConvNet, TwoLayerNet, rebuild
    kind, config = spec.get("type"), spec.get("config")
    if config is None:
        raise CheckpointError(f"{path}: the checkpoint's {kind} has no recorded constructor arguments; "
                              f"build the model yourself and load the weights with restore_model")
    config = dict(config)
    if kind == "Classifier":
        net_spec = config.pop("net")
        if net_spec is None:
            raise CheckpointError(f"{path}: the checkpoint's network was not built by numcnn.models.build; "
                                  f"build it yourself and load the weights with restore_model")
        return Classifier(rebuild(net_spec), **config)
    classes = {"ThreeLayerConvNet": ThreeLayerConvNet, "FullyConnectedNet": FullyConnectedNet,
               "TwoLayerNet": TwoLayerNet}
    if kind not in classes:
        raise CheckpointError(f"{path}: cannot rebuild a {kind}; build it yourself and load the weights "
                              f"with restore_model")
    if "dtype" in config:
        config["dtype"] = np.dtype(config["dtype"])
    if isinstance(config.get("input_dim"), list):
        config["input_dim"] = tuple(config["input_dim"])
    state = np.random.get_state()  # the constructor draws weights: leave np.random as it was
    try:
        return classes[kind](**config)
    finally:
        np.random.set_state(state)


def load_model(path_or_checkpoint):
    """Rebuild the model a checkpoint holds and load its weights."""
    checkpoint = path_or_checkpoint if isinstance(path_or_checkpoint, Checkpoint) else load_checkpoint(path_or_checkpoint)
    model = build_from_spec(checkpoint.model_spec, checkpoint.path)
    restore_model(checkpoint, model)
    return model
