"""A pickle reader that builds data and nothing else.

The CIFAR-10 python release is pickled dicts of NumPy arrays, and unpickling
a file from the internet can run any code it names. This unpickler only
constructs dicts, lists, tuples, strings, bytes, numbers and NumPy arrays;
any other callable a pickle asks for (os.system, eval, ...) is refused with
DataError before it is looked up.
"""

from __future__ import annotations

import io
import pickle

from .errors import DataError

# What a pickled NumPy array needs: its class, its dtype, and the
# reconstruction helper (moved to numpy._core in NumPy 2).
_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "set"),
    ("builtins", "bytearray"), ("__builtin__", "dict"), ("__builtin__", "list"),
    ("_codecs", "encode"),  # how Python 2 pickles bytes read with encoding='latin1'
}


class RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str, **kwargs):
        super().__init__(file, **kwargs)
        self.source = source

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise DataError(f"{self.source}: refusing to load a pickle that asks for {module}.{name}; "
                            f"numcnn only reads pickles of plain data and NumPy arrays")
        return super().find_class(module, name)


def safe_load(data: bytes, source: str, encoding: str = "bytes"):
    """Unpickle `data` (from `source`, for messages) allowing plain data and arrays only."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), source, encoding=encoding).load()
    except DataError:
        raise
    except Exception as error:  # truncated or garbled pickles raise many types
        raise DataError(f"{source}: not a readable pickle ({type(error).__name__}: {error})") from None
