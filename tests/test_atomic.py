"""Atomic writes: permissions, one clean error on a full disk, and leftover temporaries."""

import argparse
import errno
import os
import subprocess
import sys

import pytest

from numcnn import cli
from numcnn.io import WriteError, remove_stale_temporaries, write_atomically


@pytest.fixture
def umask():
    """Set the umask for one test and put the old one back."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_0666_minus_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    path = write_atomically(tmp_path / "f.bin", lambda f: f.write(b"data"))
    assert path.stat().st_mode & 0o777 == mode
    assert path.read_bytes() == b"data"


def test_a_replaced_file_keeps_its_permissions(tmp_path, umask):
    path = write_atomically(tmp_path / "f.bin", lambda f: f.write(b"old"))
    path.chmod(0o640)
    write_atomically(path, lambda f: f.write(b"new"))
    assert path.stat().st_mode & 0o777 == 0o640 and path.read_bytes() == b"new"


def _full_disk_after_some_bytes(file):
    file.write(b"x" * 1000)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_raises_one_line_naming_the_file_and_keeps_the_old_one(tmp_path):
    path = write_atomically(tmp_path / "last.npz", lambda f: f.write(b"old"))
    with pytest.raises(WriteError) as caught:
        write_atomically(path, _full_disk_after_some_bytes)
    message = str(caught.value)
    assert message == f"cannot write {path}: No space left on device; the previous file is kept"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no chained tracebacks
    assert isinstance(caught.value, OSError)  # callers catching OSError still do
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["last.npz"]


def test_a_failed_first_write_says_nothing_was_written(tmp_path):
    with pytest.raises(WriteError, match="new.bin: No space left on device; nothing was written"):
        write_atomically(tmp_path / "new.bin", _full_disk_after_some_bytes)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_mid_write_is_not_turned_into_a_write_error(tmp_path):
    def interrupted(file):
        file.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(tmp_path / "f.bin", interrupted)
    assert list(tmp_path.iterdir()) == []


def test_the_cli_prints_a_write_error_as_one_line_and_exits_2(monkeypatch, capsys, tmp_path):
    def run(args):
        write_atomically(tmp_path / "last.npz", _full_disk_after_some_bytes)

    parser = argparse.ArgumentParser(prog="numcnn")
    parser.set_defaults(command="train", run=run)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"numcnn train: error: cannot write {tmp_path / 'last.npz'}: No space left on device; nothing was written\n"
    )


_KILLED_MID_WRITE = """
import os, signal, sys
from numcnn.io import write_atomically
def write(f):
    f.write(b"x" * 4096); f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
write_atomically(sys.argv[1], write)
"""


def test_a_kill_mid_write_leaves_a_temporary_that_remove_stale_temporaries_removes(tmp_path):
    target = tmp_path / "last.npz"
    target.write_bytes(b"previous")
    subprocess.run([sys.executable, "-c", _KILLED_MID_WRITE, str(target)], check=False)
    leftovers = [p for p in tmp_path.iterdir() if p != target]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".last.npz.")  # the failure reproduced
    assert remove_stale_temporaries(tmp_path) == leftovers
    assert [p.name for p in tmp_path.iterdir()] == ["last.npz"]
    assert target.read_bytes() == b"previous"


def test_remove_stale_temporaries_never_removes_anything_else(tmp_path):
    others = [
        "last.npz",
        "notes.txt",
        ".last.npz.tmp",
        ".last.npz.abc.tmp",
        "last.npz.abcdefgh.tmp",
        ".last.npz.ABCDEFGH.tmp",
        ".last.npz.abcdefgh.tmp.bak",
        ".abcdefgh.tmp",
        "metrics.jsonl",
    ]
    for name in others:
        (tmp_path / name).write_text("keep")
    (tmp_path / ".folder.abcdefgh.tmp").mkdir()
    (tmp_path / ".link.abcdefgh.tmp").symlink_to(tmp_path / "notes.txt")
    stale = tmp_path / ".metrics.jsonl.k2_x9qz0.tmp"
    stale.write_text("leftover")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others + [".folder.abcdefgh.tmp", ".link.abcdefgh.tmp"])
    assert (tmp_path / "notes.txt").read_text() == "keep"


def test_remove_stale_temporaries_spares_recent_ones_when_asked_and_missing_folders(tmp_path):
    fresh = tmp_path / ".best.npz.abcdefgh.tmp"
    fresh.write_text("being written")
    assert remove_stale_temporaries(tmp_path, min_age_s=3600) == []
    assert fresh.exists()
    assert remove_stale_temporaries(tmp_path / "missing") == []
