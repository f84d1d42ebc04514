"""Shared memory for the arrays ranks exchange every step: nothing big is pickled.

A writer (the root for the model state and the batch; each worker for its
gradients) lays its named arrays out in one anonymous shared file (Linux
memfd_create; an unlinked temporary file elsewhere) mapped into memory, and
sends only the layout: (name, dtype, shape, offset) per array. When the
arrays outgrow the file, the writer makes a bigger one and passes its file
descriptor once over the pipe (SCM_RIGHTS); the reader maps it. The files
have no name anywhere (/dev/shm stays empty): they disappear when the last
process holding them closes them or dies, so nothing can leak, even after
a SIGKILL.

A writer never rewrites its file before the reader has used the previous
arrays: every exchange is answered before the next one starts.
"""

from __future__ import annotations

import mmap
import os
import tempfile

import numpy as np

__all__ = ["Layout", "Outbox", "Inbox"]

ALIGN = 64  # bytes: every array starts on a cache line
Layout = tuple  # (generation, capacity, [(name, dtype str, shape, offset), ...])


def _new_file(size: int) -> int:
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("numcnn-parallel", os.MFD_CLOEXEC)
    else:
        with tempfile.TemporaryFile() as f:
            fd = os.dup(f.fileno())
    os.ftruncate(fd, size)
    return fd


class Outbox:
    """The writing side: write(arrays) -> (layout, fd or None); fd is set when the file changed."""

    def __init__(self):
        self.fd: int | None = None
        self._map: mmap.mmap | None = None
        self._capacity = 0
        self._generation = 0

    def write(self, arrays: dict[str, np.ndarray]) -> tuple[Layout, int | None]:
        entries, offset = [], 0
        arrays = {name: np.asarray(a) for name, a in arrays.items()}
        for name, a in arrays.items():
            offset = -(-offset // ALIGN) * ALIGN
            entries.append((name, a.dtype.str, a.shape, offset))
            offset += a.nbytes
        new_fd = None
        if offset > self._capacity:
            new_fd = self._grow(offset)
        for (_, dtype, shape, start), a in zip(entries, arrays.values()):
            np.ndarray(shape, dtype, buffer=self._map, offset=start)[...] = a
        return (self._generation, self._capacity, entries), new_fd

    def _grow(self, needed: int) -> int:
        capacity = max(needed + needed // 4, 2 * self._capacity, 1 << 16)
        capacity = -(-capacity // mmap.PAGESIZE) * mmap.PAGESIZE
        fd = _new_file(capacity)
        if self.fd is not None:  # the old mapping lives on while views of it exist
            os.close(self.fd)
        self.fd, self._map, self._capacity = fd, mmap.mmap(fd, capacity), capacity
        self._generation += 1
        return fd

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self._map = None


class Inbox:
    """The reading side: adopt(fd) when a new file came, then read(layout) -> read-only views."""

    def __init__(self):
        self._map: mmap.mmap | None = None
        self._generation = 0

    def adopt(self, fd: int, layout: Layout) -> None:
        generation, capacity, _ = layout
        try:
            self._map = mmap.mmap(fd, capacity)
        finally:
            os.close(fd)  # the mapping keeps the file alive
        self._generation = generation

    def read(self, layout: Layout) -> dict[str, np.ndarray]:
        generation, _, entries = layout
        if generation != self._generation:
            raise RuntimeError(f"shared arrays of generation {generation} arrived before their file")
        arrays = {}
        for name, dtype, shape, offset in entries:
            view = np.ndarray(shape, dtype, buffer=self._map, offset=offset)
            view.flags.writeable = False
            arrays[name] = view
        return arrays

    def close(self) -> None:
        self._map = None
