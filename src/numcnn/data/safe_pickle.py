"""A pickle reader that builds data and nothing else.

The CIFAR-10 python release is pickled dicts of NumPy arrays, and unpickling
a file from the internet can run any code it names. This unpickler never
hands the pickle a real callable: every name it may ask for maps to a
checking stand-in, so it can only build dicts, lists, tuples, strings,
bytes, numbers and NumPy arrays of plain numeric dtypes.

Why stand-ins and not an allow-list of real names: numpy.ndarray and
numpy.dtype look harmless, but ndarray(shape, dtype('O'), buffer) makes an
object array whose "objects" are pointers read from the file (a segfault, or
worse), and a dtype's pickled state can make it structured or void. So:

- numpy.ndarray may only be named as the class _reconstruct rebuilds; calling
  it (the raw-buffer constructor) is refused;
- numpy.dtype builds a pending dtype whose state must be that of a plain
  number (no fields, no sub-arrays); object dtypes only where the caller
  allows them, and then only filled from a list of already-built objects;
- an array's pickled state must give a shape, such a dtype and exactly
  prod(shape) * itemsize bytes; the array is then made by np.frombuffer.

Anything else is refused with DataError naming the file.
"""

from __future__ import annotations

import io
import math
import pickle

import numpy as np

from .errors import DataError

# Plain numeric dtypes, by their pickled spec (np.dtype(x).__reduce__()[1][0])
NUMERIC_DTYPES = frozenset({"b1", "u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f2", "f4", "f8"})
_RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}
_FROMBUFFER = {("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}  # protocol 5
_SCALAR = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}
_CONTAINERS = {
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
    ("__builtin__", "dict"): dict,
    ("__builtin__", "list"): list,
}


class _NdarrayName:
    """What the pickle gets for numpy.ndarray: usable only as _reconstruct's first argument."""

    __slots__ = ("unpickler",)

    def __init__(self, unpickler):
        self.unpickler = unpickler

    def __call__(self, *args, **kwargs):
        raise self.unpickler.refuse("calls the raw-buffer constructor numpy.ndarray(shape, dtype, buffer)")

    def __setstate__(self, state):
        raise self.unpickler.refuse("gives numpy.ndarray itself a state")


class _PendingDtype:
    """numpy.dtype(spec, align, copy) before its pickled state is applied (by BUILD)."""

    def __init__(self, unpickler, spec, align=False, copy=False):
        if not isinstance(spec, (str, bytes)):
            raise unpickler.refuse(f"asks for a dtype from {type(spec).__name__}, not a type code")
        self.unpickler, self.spec = unpickler, spec.decode("latin1") if isinstance(spec, bytes) else spec
        allowed = unpickler.dtypes | ({"O8", "O4"} if unpickler.allow_objects else set())
        if self.spec not in allowed:
            raise unpickler.refuse(
                f"asks for dtype {self.spec!r}; only plain numbers "
                f"{'and objects ' if unpickler.allow_objects else ''}are read "
                f"(no object, void or structured dtypes)"
            )
        self.dtype = np.dtype(self.spec)

    def __setstate__(self, state):
        # (version, byte order, sub-array, names, fields, itemsize, alignment, flags[, metadata])
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[2:5] == (None, None, None)):
            raise self.unpickler.refuse(f"gives dtype {self.spec!r} a structured or sub-array state")
        order = state[1].decode("latin1") if isinstance(state[1], bytes) else state[1]
        if order not in ("<", ">", "|", "="):
            raise self.unpickler.refuse(f"gives dtype {self.spec!r} the byte order {order!r}")
        self.dtype = self.dtype.newbyteorder(order) if order in "<>" else self.dtype


class _PendingArray:
    """_reconstruct(ndarray, (0,), b'b') before BUILD gives it (version, shape, dtype, fortran, data)."""

    def __init__(self, unpickler):
        self.unpickler, self.array = unpickler, None

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) in (4, 5)):
            raise self.unpickler.refuse("gives an array a state that is not (version, shape, dtype, fortran, data)")
        shape, dtype, fortran, raw = state[-4:]
        self.array = _build_array(self.unpickler, shape, dtype, "F" if fortran else "C", raw)


def _build_array(unpickler, shape, dtype, order: str, raw) -> np.ndarray:
    """A new array from checked parts: a shape of ints, a pending dtype, and exactly its bytes
    (or, for object dtypes, a list of exactly prod(shape) already-built objects)."""
    refuse = unpickler.refuse
    if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
        raise refuse(f"gives an array the shape {shape!r}")
    if not isinstance(dtype, _PendingDtype):
        raise refuse(f"gives an array the dtype {type(dtype).__name__}")
    if order not in ("C", "F"):
        raise refuse(f"gives an array the memory order {order!r}")
    count = math.prod(shape)
    if dtype.dtype.kind == "O":
        if not (isinstance(raw, list) and len(raw) == count):
            raise refuse(f"gives an object array of {count} items something other than a list of them")
        flat = np.empty(count, dtype=object)
        for i, item in enumerate(_finish(raw, unpickler, set())):  # its items are all built by now
            flat[i] = item
        return flat.reshape(shape, order=order)
    if isinstance(raw, str):  # Python 2 str read with encoding='latin1'
        raw = raw.encode("latin1")
    if isinstance(raw, pickle.PickleBuffer):
        raw = bytes(raw)
    expected = count * dtype.dtype.itemsize
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != expected:
        size = f"{len(raw)} bytes" if isinstance(raw, (bytes, bytearray)) else f"a {type(raw).__name__}"
        raise refuse(f"gives an array of shape {shape} and dtype {dtype.dtype} {size} (expected {expected} bytes)")
    return np.frombuffer(raw, dtype.dtype).reshape(shape, order=order).copy(order=order)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain data and numeric NumPy arrays; `source` names the file in errors.

    dtypes: the array dtypes allowed (pickled type codes). allow_objects: also
    object arrays, which NumPy can only fill from a pickled list of objects
    that this unpickler has itself built (as np.save writes them).
    """

    def __init__(self, file, source: str, dtypes=NUMERIC_DTYPES, allow_objects: bool = False, **kwargs):
        super().__init__(file, **kwargs)
        self.source, self.dtypes, self.allow_objects = source, frozenset(dtypes), allow_objects

    def refuse(self, what: str) -> DataError:
        return DataError(
            f"{self.source}: refusing to load a pickle that {what}; "
            f"numcnn only reads pickles of plain data and numeric NumPy arrays"
        )

    def find_class(self, module: str, name: str):
        key = (module, name)
        if key in _CONTAINERS:
            return _CONTAINERS[key]
        if key == ("numpy", "ndarray"):
            return _NdarrayName(self)
        if key == ("numpy", "dtype"):
            return lambda *args: _PendingDtype(self, *args)
        if key in _RECONSTRUCT:
            return self._reconstruct
        if key in _FROMBUFFER:
            return lambda raw, dtype, shape, order="C": _build_array(self, shape, dtype, order, raw)
        if key in _SCALAR:
            return self._scalar
        if key == ("_codecs", "encode"):  # how protocol 2 pickles bytes
            return self._encode
        raise self.refuse(f"asks for {module}.{name}")

    def _reconstruct(self, cls, shape=None, code=None):
        if not isinstance(cls, _NdarrayName):
            raise self.refuse(f"asks _reconstruct for a {type(cls).__name__}")
        return _PendingArray(self)

    def _scalar(self, dtype, raw=None):
        raw = raw.encode("latin1") if isinstance(raw, str) else raw
        if (
            not isinstance(dtype, _PendingDtype)
            or dtype.dtype.kind == "O"
            or not isinstance(raw, bytes)
            or len(raw) != dtype.dtype.itemsize
        ):
            raise self.refuse("asks for a NumPy scalar that is not a plain number")
        return np.frombuffer(raw, dtype.dtype)[0]

    def _encode(self, text, encoding="utf-8"):
        if not isinstance(text, str) or encoding.lower().replace("-", "") not in ("latin1", "utf8"):
            raise self.refuse("asks _codecs.encode for something other than text to latin-1 bytes")
        return text.encode(encoding)


_PLAIN_KEYS = (str, bytes, int, float, bool, type(None))


def _finish(obj, unpickler, active: set, finished: dict | None = None):
    """obj with every pending array and dtype replaced by the real one (refused if never given its state).

    active: ids of the containers being finished (one met again is a cycle);
    finished: id -> result of those done, so that shared ones are walked once.
    """
    finished = {} if finished is None else finished
    if isinstance(obj, _PendingArray):
        if obj.array is None:
            raise unpickler.refuse("leaves an array without its data")
        return obj.array
    if isinstance(obj, _PendingDtype):
        return obj.dtype
    if isinstance(obj, (set, frozenset)):
        if not all(isinstance(item, _PLAIN_KEYS) for item in obj):
            raise unpickler.refuse("puts something other than plain values in a set")
        return obj
    if not isinstance(obj, (dict, list, tuple)):
        if not isinstance(obj, (*_PLAIN_KEYS, bytearray, complex, np.ndarray, np.generic)):
            raise unpickler.refuse(f"builds a {type(obj).__name__}")
        return obj
    if id(obj) in finished:
        return finished[id(obj)]
    if id(obj) in active:
        raise unpickler.refuse("holds a container inside itself")
    active.add(id(obj))
    finished[id(obj)] = result = _finish_container(obj, unpickler, active, finished)
    active.discard(id(obj))
    return result


def _finish_container(obj, unpickler, active, finished):
    """A dict (changed in place, so shared references stay shared), list (likewise) or tuple, finished."""
    if isinstance(obj, dict):
        done = {}
        for key, value in obj.items():
            if not isinstance(key, _PLAIN_KEYS):
                raise unpickler.refuse(f"uses a {type(key).__name__} as a dict key")
            done[key] = _finish(value, unpickler, active, finished)
        obj.clear()
        obj.update(done)  # in place, so that shared references stay shared
        return obj
    if isinstance(obj, list):
        obj[:] = [_finish(item, unpickler, active, finished) for item in obj]
        return obj
    return tuple(_finish(item, unpickler, active, finished) for item in obj)


def safe_load(data: bytes, source: str, encoding: str = "bytes", dtypes=NUMERIC_DTYPES, allow_objects: bool = False):
    """Unpickle `data` (from `source`, for messages) allowing plain data and numeric arrays only."""
    try:
        unpickler = RestrictedUnpickler(
            io.BytesIO(data), source, dtypes=dtypes, allow_objects=allow_objects, encoding=encoding
        )
        return _finish(unpickler.load(), unpickler, set())
    except DataError:
        raise
    except Exception as error:  # truncated or garbled pickles raise many types
        raise DataError(f"{source}: not a readable pickle ({type(error).__name__}: {error})") from None
