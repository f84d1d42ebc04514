"""Write a file so that a crash leaves either the old version or the new one.

The new content goes to a temporary file beside the target, named
`.NAME.XXXXXXXX.tmp` (XXXXXXXX: tempfile's 8 random characters), which is
flushed to disk and renamed over the target. A process killed mid-write
leaves that temporary behind; remove_stale_temporaries(folder) deletes such
leftovers, and nothing else.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

# tempfile.mkstemp(prefix=".NAME.", suffix=".tmp") names: 8 characters from this alphabet
_TEMPORARY = re.compile(r"\A\..+\.[a-z0-9_]{8}\.tmp\Z", re.S)


class WriteError(OSError):
    """A file could not be written; the message names it, the cause and what was kept."""


def write_atomically(path, write: Callable[[IO[bytes]], object]) -> Path:
    """Call write(file) on a temporary file beside `path`, fsync it, then rename it over `path`.

    The new file gets the permissions 0666 minus the umask, as open() would
    give it, or keeps those of the file it replaces. Any OSError (a full disk, a read-only folder) removes the
    temporary and raises one WriteError naming the file and the cause; the
    previous file, if any, is untouched.
    """
    path = Path(path)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, _mode_for(path))  # mkstemp makes it 0600 whatever the umask
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        if isinstance(error, OSError) and not isinstance(error, WriteError):
            kept = "the previous file is kept" if path.exists() else "nothing was written"
            raise WriteError(f"cannot write {path}: {_reason(error)}; {kept}") from None
        raise
    _sync_directory(path.parent)
    return path


def remove_stale_temporaries(folder, min_age_s: float = 0.0) -> list[Path]:
    """Delete write_atomically's leftover temporaries in `folder`; returns what was removed.

    Only regular files named like its temporaries (`.NAME.XXXXXXXX.tmp`) and
    last modified at least min_age_s seconds ago are removed; no other file,
    no link, no folder. A missing folder removes nothing. Call it where no
    other process is writing into the folder (a temporary being written is
    indistinguishable from a leftover one), or pass a min_age_s.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed, now = [], time.time()
    for entry in sorted(folder.iterdir()):
        if not _TEMPORARY.match(entry.name):
            continue
        try:
            info = entry.lstat()
            if stat.S_ISREG(info.st_mode) and now - info.st_mtime >= min_age_s:
                entry.unlink()
                removed.append(entry)
        except FileNotFoundError:  # removed by someone else meanwhile
            continue
    return removed


def _mode_for(path: Path) -> int:
    """The permission bits of the file being replaced, or 0666 minus the umask for a new one."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere the only way to read it is to set it, then put it back
    os.umask(mask)
    return mask


def _reason(error: OSError) -> str:
    """The OS's words for an error (strerror), or the error's own message."""
    return error.strerror or str(error) or type(error).__name__


def _sync_directory(folder: Path) -> None:
    """Make the rename itself durable (a no-op where the file system cannot sync folders)."""
    try:
        directory = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    except OSError:
        pass  # e.g. EINVAL on file systems without directory fsync: the rename is done either way
    finally:
        os.close(directory)
