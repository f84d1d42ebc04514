"""Where datasets live, and the errors loaders raise."""

from __future__ import annotations

import os
from pathlib import Path


class DataError(ValueError):
    """A dataset file that cannot be used; the message names the file and the problem."""


class DatasetNotFound(FileNotFoundError):
    """A dataset that is not on disk; the message says how to get it."""


def data_dir() -> Path:
    """The folder datasets are downloaded to and caches kept in: $NUMCNN_DATA or ~/.cache/numcnn."""
    return Path(os.environ.get("NUMCNN_DATA") or Path.home() / ".cache" / "numcnn")
