"""The planner's wisdom: which engine won for each problem, kept in a small JSON file per machine.

As FFTW's wisdom: measurements are worth keeping only on the machine that
made them, so the file names the machine it belongs to,

    {"format": "numcnn wisdom", "version": 1,
     "machine": {"cpu": ..., "cpu_flags": sha256 of the sorted flags, "blas": ..., "numcnn": ..., "numpy": ...,
                 "engines": sha256 of the engine's source files},
     "plans": {KEY: {"choice": NAME, "ms": {NAME: median fwd+bwd ms, ...}}, ...}}

and a file written under another CPU, BLAS library or kernel, numcnn
version or engine code is ignored (one warning) and replaced on the next
write. So is a damaged file (not JSON, wrong types): wisdom only ever
saves time, so a bad file costs a re-measurement, never a crash. The
engine code's hash is there because numcnn's version does not change with
every commit, and a timing of yesterday's kernel says nothing about
today's (a checkout of main would otherwise keep choices its own engines
never won). Writes are atomic
(numcnn.io.write_atomically): a killed process leaves the old file or the
new one.

Where: $NUMCNN_WISDOM if set, else wisdom.json in numcnn's data folder
($NUMCNN_DATA or ~/.cache/numcnn, numcnn.data.data_dir).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import platform
import threading
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

FORMAT = "numcnn wisdom"
VERSION = 1

_lock = threading.Lock()
_warned: set[tuple[str, str]] = set()


def wisdom_path() -> Path:
    """The wisdom file: $NUMCNN_WISDOM, else DATA/wisdom.json (DATA = numcnn.data.data_dir())."""
    explicit = os.environ.get("NUMCNN_WISDOM")
    if explicit:
        return Path(explicit)
    from ...data import data_dir  # the data folder's one definition; imported only when wisdom is used

    return data_dir() / "wisdom.json"


def _cpu() -> tuple[str, str]:
    """(CPU model, sha256 of its sorted flags) from /proc/cpuinfo, else platform's words and no flags."""
    model, flags = "", ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = (part.strip() for part in line.partition(":"))
                if key == "model name" and not model:
                    model = value
                elif key in ("flags", "Features") and not flags:
                    flags = " ".join(sorted(value.split()))
    except OSError:
        pass
    return model or platform.processor() or platform.machine(), hashlib.sha256(flags.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _blas_pool() -> dict:
    """threadpoolctl's description of NumPy's BLAS ({} without threadpoolctl), read once (it scans libraries)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {}
    for pool in threadpool_info():
        if pool.get("user_api") == "blas" and "numpy" in pool.get("filepath", ""):
            return pool
    return {}


def _blas() -> str:
    """NumPy's BLAS: 'internal_api version architecture' (threadpoolctl), or 'unknown'."""
    pool = _blas_pool()
    return f"{pool.get('internal_api')} {pool.get('version')} {pool.get('architecture')}" if pool else "unknown"


def blas_threads() -> int:
    """BLAS's thread count when the process started using wisdom (0: unknown); part of a plan's key."""
    return int(_blas_pool().get("num_threads") or 0)


@functools.lru_cache(maxsize=1)
def machine() -> dict[str, str]:
    """What a measurement depends on besides the problem: CPU, BLAS, numcnn and NumPy versions, engine code."""
    cpu, flags = _cpu()
    return {
        "cpu": cpu,
        "cpu_flags": flags,
        "blas": _blas(),
        "numcnn": _numcnn_version(),
        "numpy": np.__version__,
        "engines": engines_hash(),
    }


def engines_hash(folder: Path | None = None) -> str:
    """sha256 (16 hex digits) of the engine's source files (`folder`, default numcnn/ops/engine: its
    *.py), in name order."""
    digest = hashlib.sha256()
    for source in sorted((folder or Path(__file__).parent).glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:16]


def _numcnn_version() -> str:
    """numcnn.__version__, read as numcnn/__init__.py does (importing numcnn would import its floors above ops)."""
    try:
        return version("numcnn")
    except PackageNotFoundError:
        return "0.0.0+source"


def warn_once(path: Path, problem: str, consequence: str = "ignored, it will be rewritten") -> None:
    """One warning per file and kind of problem (the words before the first colon) per process."""
    kind = (str(path), problem.split(":")[0])
    if kind in _warned:
        return
    _warned.add(kind)
    warnings.warn(f"numcnn wisdom file {path}: {problem}; {consequence}", RuntimeWarning, stacklevel=4)


def _valid_plans(plans) -> bool:
    if not isinstance(plans, dict):
        return False
    for key, entry in plans.items():
        if not (isinstance(key, str) and isinstance(entry, dict) and isinstance(entry.get("choice"), str)):
            return False
        ms = entry.get("ms")
        if not isinstance(ms, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for k, v in ms.items()
        ):
            return False
    return True


def read(path: Path) -> dict[str, dict]:
    """The plans stored in `path` for this machine; {} (with one warning) if damaged or foreign.

    A missing file is simply empty: no warning.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as error:
        warn_once(path, f"unreadable: {error}")
        return {}
    try:
        content = json.loads(text)
    except ValueError as error:
        warn_once(path, f"damaged: not JSON ({error})")
        return {}
    if not (isinstance(content, dict) and content.get("format") == FORMAT and content.get("version") == VERSION):
        warn_once(path, "damaged: not a numcnn wisdom file of version 1")
        return {}
    if content.get("machine") != machine():
        warn_once(path, f"foreign: written for {content.get('machine')!r}, this is {machine()!r}")
        return {}
    if not _valid_plans(content.get("plans")):
        warn_once(path, "damaged: its plans are not {key: {'choice': str, 'ms': {str: number}}}")
        return {}
    return content["plans"]


def write(path: Path, plans: dict[str, dict]) -> None:
    """Merge `plans` into the file's own (other processes may have added some) and write it atomically.

    A file that cannot be written costs one warning: the plans stay in memory.
    """
    from ...io import WriteError, write_atomically

    with _lock:
        merged = {**read(path), **plans} if path.exists() else dict(plans)
        content = {"format": FORMAT, "version": VERSION, "machine": machine(), "plans": merged}
        data = json.dumps(content, indent=1, sort_keys=True).encode()
        try:
            write_atomically(path, lambda f: f.write(data))
        except WriteError as error:
            warn_once(path, f"not writable: {error}", "the plans are kept in memory only")
