"""Checkpoints that execute no code when loaded and never leave a broken file behind.

A checkpoint is one NumPy .npz file (read with allow_pickle=False): the
arrays (parameters, running statistics, optimizer state, best parameters,
random-generator state) plus a JSON header holding everything else, where
each array appears as {"__array__": key}. The header records the format
version and how to rebuild the model (its class and constructor
arguments), so a checkpoint of a known model rebuilds it.

Writes are atomic: the file is written to a temporary name in the same
folder, flushed to disk (fsync) and renamed over the old one, so killing the
process at any moment leaves either the previous checkpoint or the new
one. Loading reads every array (the zip format checks each one's CRC) and
raises CheckpointError, naming the file, for anything truncated, corrupted,
too new or of another model; it never returns partial weights.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import write_atomically

FORMAT = "numcnn-checkpoint"
FORMAT_VERSION = 1
_HEADER = "__header__"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


@dataclass
class Checkpoint:
    """What a checkpoint holds: the model's spec and arrays, and the training state.

    numcnn.models.load_model(path) rebuilds the model it describes.
    """

    path: Path
    model_spec: dict
    model_arrays: dict[str, np.ndarray]
    state: dict = field(default_factory=dict)
    version: int = FORMAT_VERSION


# -- the model protocol ------------------------------------------------------------
# A model describes itself with spec() (class and constructor arguments,
# JSON-able) and state_arrays() / load_state_arrays(arrays); numcnn's models
# all do. Any other object with a `params` dict is saved by its params.

def model_spec(model) -> dict:
    if hasattr(model, "spec"):
        return model.spec()
    return {"type": type(model).__name__, "config": getattr(model, "config", None)}


def model_arrays(model) -> dict[str, np.ndarray]:
    if hasattr(model, "state_arrays"):
        return model.state_arrays()
    return {f"params.{k}": np.asarray(v) for k, v in model.params.items()}


def _load_arrays(model, arrays: dict) -> None:
    if hasattr(model, "load_state_arrays"):
        model.load_state_arrays(arrays)
    else:
        for key, value in arrays.items():
            model.params[key.split(".", 1)[1]] = value.copy()


# -- packing nested state into JSON + arrays --------------------------------------

def _pack(value, prefix: str, arrays: dict):
    if isinstance(value, np.ndarray):
        arrays[prefix] = value
        return {"__array__": prefix}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _pack(v, f"{prefix}.{k}", arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_pack(v, f"{prefix}.{i}", arrays) for i, v in enumerate(value)]
    return value


def _unpack(value, arrays: dict):
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        return {k: _unpack(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack(v, arrays) for v in value]
    return value


# -- writing and reading -------------------------------------------------------------

def save_checkpoint(path, model, solver_state: dict | None = None) -> Path:
    """Write the model and the training state to `path` atomically; returns the path."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    for key, value in model_arrays(model).items():
        arrays[f"model/{key}"] = value
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model": model_spec(model),
        "model_arrays": sorted(k[len("model/"):] for k in arrays),
        "state": _pack(solver_state or {}, "state", arrays),
    }
    arrays[_HEADER] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    write_atomically(path, lambda f: np.savez(f, **arrays))
    return path


def load_checkpoint(path) -> Checkpoint:
    """Read a whole checkpoint, or raise CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}  # reads (and CRC-checks) all
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, NotImplementedError) as error:
        # NotImplementedError: zipfile's answer to a corrupted compression-method field
        raise CheckpointError(f"{path}: not a readable numcnn checkpoint (truncated or corrupted?): {error}") from None
    if _HEADER not in arrays:
        raise CheckpointError(f"{path}: not a numcnn checkpoint (no header)")
    try:
        header = json.loads(arrays.pop(_HEADER).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: corrupted checkpoint header: {error}") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a numcnn checkpoint (format {header.get('format')!r})")
    version = header.get("version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: corrupted checkpoint header: no valid format version ({version!r})")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer numcnn (format version {version}); "
                              f"this numcnn reads versions up to {FORMAT_VERSION}: upgrade numcnn")
    model = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    if sorted(model) != header.get("model_arrays"):
        raise CheckpointError(f"{path}: corrupted checkpoint: its arrays do not match its header")
    try:
        state = _unpack(header.get("state", {}), arrays)
    except KeyError as error:
        raise CheckpointError(f"{path}: corrupted checkpoint: missing array {error}") from None
    return Checkpoint(path, header["model"], model, state, version)


def restore_model(checkpoint: Checkpoint, model) -> None:
    """Load a checkpoint's weights into `model`; refuse a checkpoint of another model.

    Everything is checked (class, constructor arguments, array names and
    shapes) before anything is changed.
    """
    spec = _jsonable(model_spec(model))
    saved = checkpoint.model_spec
    if saved.get("type") != spec["type"] or (
            saved.get("config") is not None and spec["config"] is not None and saved["config"] != spec["config"]):
        raise CheckpointError(f"{checkpoint.path}: it holds a {saved.get('type')} {saved.get('config')}, "
                              f"not this {spec['type']} {spec['config']}")
    own, arrays = model_arrays(model), checkpoint.model_arrays
    missing, unexpected = sorted(set(own) - set(arrays)), sorted(set(arrays) - set(own))
    wrong = [f"{k} {arrays[k].shape} (model: {own[k].shape})"
             for k in own if k in arrays and arrays[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        raise CheckpointError(f"{checkpoint.path}: its arrays do not fit this model: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}, wrong shapes {wrong[:5]}")
    _load_arrays(model, arrays)


def _jsonable(value):
    return json.loads(json.dumps(value))
