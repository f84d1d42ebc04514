"""Checkpoints that execute no code when loaded and never leave a broken file behind.

A checkpoint is one NumPy .npz file (read with allow_pickle=False): the
arrays (parameters, running statistics, optimizer state, best parameters,
random-generator state) plus a JSON header holding everything else, where
each array appears as {"__array__": key}. The header records the format
version and the model's spec, a JSON object this file stores without
reading it: numcnn.models writes there how to rebuild the model (its class
and constructor arguments; for a network of numcnn.nn modules, its module
tree), and numcnn.models.load_model rebuilds it.

Writes are atomic: the file is written to a temporary name in the same
folder, flushed to disk (fsync) and renamed over the old one, so killing the
process at any moment leaves either the previous checkpoint or the new
one. Loading reads every array (the zip format checks each one's CRC)
before parsing any of them, then checks each array's size and dtype and
the header's schema, and raises CheckpointError, naming the file, for
anything truncated, corrupted, too new or of another model; it never
returns partial weights.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

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

    numcnn.models.load_model(path) rebuilds the model it describes (numcnn's
    models, and any network made of numcnn.nn's modules).
    """

    path: Path
    model_spec: dict
    model_arrays: dict[str, np.ndarray]
    state: dict = field(default_factory=dict)
    version: int = FORMAT_VERSION


# -- the model codec ----------------------------------------------------------------
# This file knows arrays and JSON, not models. How a model object becomes a
# spec and named arrays, and takes arrays back, is registered by
# numcnn.models (numcnn.models.registry), which numcnn's __init__ imports, so
# it is in place before any checkpoint is written or restored.


class ModelCodec(Protocol):
    """How model objects become a checkpoint's (spec, arrays) and take their arrays back."""

    def spec(self, model) -> dict:
        """{"type": str, "config": dict | None, "modules": dict | None}, JSON-able."""

    def arrays(self, model) -> dict[str, np.ndarray]:
        """Every array that defines the model's state, by name."""

    def load_arrays(self, model, arrays: dict[str, np.ndarray]) -> None:
        """Put arrays (already checked to have the model's names and shapes) into the model."""


_codec: ModelCodec | None = None


def use_model_codec(codec: ModelCodec) -> None:
    """Make save_checkpoint and restore_model describe models with `codec` (numcnn.models calls this)."""
    global _codec
    _codec = codec


def _model_codec() -> ModelCodec:
    if _codec is None:
        raise RuntimeError("no model codec is registered: import numcnn.models first")
    return _codec


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
    """Write the model and the training state to `path` atomically; returns the path.

    The model is described by the registered codec (numcnn.models: its
    models, any network of numcnn.nn modules, any object with a `params`
    dict); write_checkpoint takes a spec and arrays directly.
    """
    codec = _model_codec()
    return write_checkpoint(path, codec.spec(model), codec.arrays(model), solver_state)


def write_checkpoint(
    path, model_spec: dict, model_arrays: dict[str, np.ndarray], solver_state: dict | None = None
) -> Path:
    """Write a checkpoint from plain data, atomically; returns the path.

    Parameters
    ----------
    path : where the .npz file goes (its folder must exist).
    model_spec : JSON-able {"type": str, "config": dict | None, "modules": dict | None}.
    model_arrays : name -> array of real numbers (the model's weights and statistics).
    solver_state : nested dicts, lists, scalars and arrays; arrays are stored beside the header.
    """
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    for key, value in model_arrays.items():
        arrays[f"model/{key}"] = value
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model": model_spec,
        "model_arrays": sorted(k[len("model/") :] for k in arrays),
        "state": _pack(solver_state or {}, "state", arrays),
    }
    arrays[_HEADER] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    write_atomically(path, lambda f: np.savez(f, **arrays))
    return path


def load_checkpoint(path) -> Checkpoint:
    """Read a whole checkpoint, or raise CheckpointError naming the file.

    Integrity first: every member's bytes are read (zip checks each CRC)
    before any array header is parsed; then each array's header must
    promise exactly the bytes that follow it, and its dtype must be a real
    number (integer or float; bool, too, in the training state). The JSON
    header is checked against its schema before anything uses it.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    arrays = _read_arrays(path)
    if _HEADER not in arrays:
        raise CheckpointError(f"{path}: not a numcnn checkpoint (no header)")
    header = _parse_header(arrays.pop(_HEADER), path)
    model = {k[len("model/") :]: v for k, v in arrays.items() if k.startswith("model/")}
    if sorted(model) != header["model_arrays"]:
        raise CheckpointError(f"{path}: corrupted checkpoint: its arrays do not match its header")
    for key, value in model.items():
        if value.dtype.kind not in "iuf":
            raise CheckpointError(
                f"{path}: model array {key!r} holds {value.dtype} values; "
                f"a model's arrays are real numbers (integer or float)"
            )
    try:
        state = _unpack(header["state"], arrays)
    except KeyError as error:
        raise CheckpointError(f"{path}: corrupted checkpoint: missing array {error}") from None
    return Checkpoint(path, header["model"], model, state, header["version"])


# -- reading, with every check before anything is trusted ------------------------------

_MAX_JSON_DEPTH = 200  # numcnn writes a depth of about 4 per module level
_MAX_INFLATION = 1100  # deflate cannot expand data by more than about 1032 times
_MAX_NPY_HEADER = 10_000  # NumPy's own limit for a header it parses safely


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array in the archive by name; any damage is a CheckpointError naming the file."""
    try:
        members = _read_members(path)
    except CheckpointError:
        raise
    except Exception as error:  # noqa: BLE001  zipfile answers damage with many types (RuntimeError for
        # a flipped encryption flag, NotImplementedError for a flipped method, struct.error, ...)
        raise CheckpointError(
            f"{path}: not a readable numcnn checkpoint (truncated or corrupted?): {_describe(error)}"
        ) from None
    arrays = {}
    for name in list(members):
        arrays[name[: -len(".npy")]] = _parse_npy(members.pop(name), name, path)
    return arrays


def _read_members(path: Path) -> dict[str, bytes]:
    """The bytes of each .npy member, all CRC-checked, with sizes bounded by the file's size."""
    size = path.stat().st_size
    members = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            limit = size if info.compress_type == zipfile.ZIP_STORED else size * _MAX_INFLATION
            if info.file_size > limit:
                raise CheckpointError(
                    f"{path}: corrupted checkpoint: member {info.filename!r} claims "
                    f"{info.file_size} bytes in a {size}-byte file"
                )
            if not info.filename.endswith(".npy") or info.filename in members:
                raise CheckpointError(f"{path}: not a numcnn checkpoint (unexpected member {info.filename[:80]!r})")
            members[info.filename] = archive.read(info)  # raises BadZipFile on a CRC mismatch
    return members


def _parse_npy(data: bytes, name: str, path: Path) -> np.ndarray:
    """One .npy member's array; its header must promise exactly the bytes that follow it."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(stream, max_header_size=_MAX_NPY_HEADER)
    except Exception as error:  # noqa: BLE001  the header is a Python literal: ValueError, SyntaxError,
        # tokenize.TokenError, ... for one that is malformed
        raise CheckpointError(
            f"{path}: corrupted checkpoint: array {name!r} has an unreadable header: {_describe(error)}"
        ) from None
    if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise CheckpointError(f"{path}: array {name!r} holds {dtype} values; checkpoints hold real numbers only")
    count = math.prod(shape)
    offset = stream.tell()
    if min(shape, default=0) < 0 or count * dtype.itemsize != len(data) - offset:
        raise CheckpointError(
            f"{path}: corrupted checkpoint: array {name!r} of shape {shape} does not "
            f"match its {len(data) - offset} bytes"
        )
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    array = flat.reshape(shape[::-1]).T if fortran_order else flat.reshape(shape)
    return array.copy(order="K")  # writable, and no longer tied to the archive's bytes


def _parse_header(raw: np.ndarray, path: Path) -> dict:
    """The JSON header, checked against the schema numcnn writes."""
    try:
        header = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise CheckpointError(f"{path}: corrupted checkpoint header: {_describe(error)}") from None
    if _json_depth(header) > _MAX_JSON_DEPTH:
        raise CheckpointError(f"{path}: corrupted checkpoint header: nested deeper than {_MAX_JSON_DEPTH} levels")
    if not isinstance(header, dict):
        raise CheckpointError(
            f"{path}: corrupted checkpoint header: a JSON object was expected, got a {type(header).__name__}"
        )
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a numcnn checkpoint (format {_short(header.get('format'))})")
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{path}: corrupted checkpoint header: no valid format version ({_short(version)})")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by a newer numcnn (format version {version}); "
            f"this numcnn reads versions up to {FORMAT_VERSION}: upgrade numcnn"
        )
    problem = _schema_problem(header)
    if problem:
        raise CheckpointError(f"{path}: corrupted checkpoint header: {problem}")
    header.setdefault("state", {})
    return header


def _schema_problem(header: dict) -> str | None:
    """What in the header does not have the type numcnn writes, or None."""
    model = header.get("model")
    if not isinstance(model, dict):
        return f"'model' must be an object, got {_short(model)}"
    if not isinstance(model.get("type"), str):
        return f"'model.type' must be a string, got {_short(model.get('type'))}"
    if not isinstance(model.get("config"), (dict, type(None))):
        return f"'model.config' must be an object or null, got {_short(model.get('config'))}"
    if not isinstance(model.get("modules"), (dict, type(None))):
        return f"'model.modules' must be an object or null, got {_short(model.get('modules'))}"
    names = header.get("model_arrays")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        return f"'model_arrays' must be a list of names, got {_short(names)}"
    references = []
    _collect_references(header.get("state", {}), references)
    if not all(isinstance(reference, str) for reference in references):
        return "an array reference in 'state' is not a name"
    return None


def _collect_references(value, found: list) -> None:
    """Every {"__array__": key} value in a JSON tree, iteratively (the depth is bounded anyway)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if set(item) == {"__array__"}:
                found.append(item["__array__"])
            else:
                stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _json_depth(value) -> int:
    """How deeply lists and objects nest in a parsed JSON value (0 for a scalar)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _describe(error: BaseException) -> str:
    """An exception as one line: its message, or its type when it has none."""
    text = " ".join(str(error).split())
    return text or type(error).__name__


def restore_model(checkpoint: Checkpoint, model) -> None:
    """Load a checkpoint's weights into `model`; refuse a checkpoint of another model.

    Everything is checked (class, constructor arguments, array names and
    shapes) before anything is changed.
    """
    codec = _model_codec()
    spec = _jsonable(codec.spec(model))
    saved = checkpoint.model_spec
    if saved.get("type") != spec["type"] or (
        saved.get("config") is not None and spec["config"] is not None and saved["config"] != spec["config"]
    ):
        raise CheckpointError(
            f"{checkpoint.path}: it holds a {saved.get('type')} {saved.get('config')}, "
            f"not this {spec['type']} {spec['config']}"
        )
    own, arrays = codec.arrays(model), checkpoint.model_arrays
    missing, unexpected = sorted(set(own) - set(arrays)), sorted(set(arrays) - set(own))
    wrong = [
        f"{k} {arrays[k].shape} (model: {own[k].shape})" for k in own if k in arrays and arrays[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{checkpoint.path}: its arrays do not fit this model: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, wrong shapes {wrong[:5]}"
        )
    codec.load_arrays(model, arrays)


def _jsonable(value):
    return json.loads(json.dumps(value))
