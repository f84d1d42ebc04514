"""Where datasets live, and the errors loaders raise."""

from __future__ import annotations

import os
import tarfile
import zipfile
import zlib
from pathlib import Path


class DataError(ValueError):
    """A dataset file that cannot be used; the message names the file and the problem."""


class DatasetNotFound(FileNotFoundError):
    """A dataset that is not on disk; the message says how to get it."""


# What damaged compressed or archived bytes raise: tarfile's errors, zipfile's BadZipFile,
# gzip's OSError and EOFError, zlib.error for bad deflate data, and zipfile's
# NotImplementedError (an unknown compression method) or RuntimeError (an "encrypted" flag)
# when a header bit is flipped. Loaders turn them into one DataError that names the file.
DAMAGED_FILE_ERRORS = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zlib.error,
    OSError,
    EOFError,
    NotImplementedError,
    RuntimeError,
)


def describe(error: BaseException) -> str:
    """'Type: message' on one line (tarfile, for one, lists each method it tried on its own line)."""
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def data_dir() -> Path:
    """The folder datasets are downloaded to and caches kept in: $NUMCNN_DATA or ~/.cache/numcnn."""
    return Path(os.environ.get("NUMCNN_DATA") or Path.home() / ".cache" / "numcnn")
