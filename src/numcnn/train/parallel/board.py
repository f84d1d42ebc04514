"""Board: the allgather of forked workers in shared memory, waited for by spinning.

Batch norm synchronizes every rank twice per layer and step (42 times a
ResNet-20 step), on a few hundred numbers each time. Relayed through the
root's pipes, every exchange puts the waiting processes to sleep and wakes
them again; on a 2-core KVM guest two copies of the step scaled 1.82-2.21x
with no exchange at all, 1.37-1.64x waiting at every exchange on a blocking
barrier, and 1.58-1.98x waiting by spinning on shared memory
(benchmarks/sync_cost.py). So each rank owns a row of the board:

    counter[r]               how many allgathers rank r has written (its own cache line)
    slot[r, g % 2]           the array of rank r's g-th allgather: a header (nbytes, ndim,
                             shape, dtype) and the bytes

allgather number g: write slot[rank, g % 2], then counter[rank] = g; wait
until every counter[q] >= g; read every slot[q, g % 2]. Two slots suffice:
a rank writes slot g % 2 again only at allgather g + 2, which it reaches
after every peer has set its counter to g + 1, that is after every peer
finished reading allgather g.

Waiting: spin (a Python loop reading the counters) for at most SPIN_SECONDS,
then sleep between polls, 10 us doubling to 1 ms, calling `check` (which
raises when a peer died or the root said stop) every CHECK_SECONDS. Spinning
burns the waiting rank's core, which is idle anyway when there is one rank
per core; with more ranks than cores it would steal the core of the very
rank being waited for, so there `spin=False` sleeps from the first poll.

The protocol relies on stores becoming visible in program order (the
counter after the slot): x86-64's memory model guarantees it, and pure
Python has no fence to ask for it elsewhere, so `board_supported()` is
False on other machines and the root relays allgather through its pipes
there.
"""

from __future__ import annotations

import mmap
import platform
import time
from collections.abc import Callable

import numpy as np

__all__ = ["Board", "board_supported"]

LINE = 64  # bytes: every counter has a cache line of its own, so writers do not contend
SLOT_BYTES = 1 << 18  # 256 KiB: batch norm's partial sums of up to ~10,000 channels
MAX_NDIM = 6
_HEADER = 16 + 8 * MAX_NDIM  # nbytes, ndim, shape; then the dtype as 8 ascii bytes
_HEADER_BYTES = LINE * 2
SPIN_SECONDS = 0.05  # longer than any batch-norm imbalance measured (1-5 ms); bounded for a peer that stalls
CHECK_SECONDS = 0.1  # how often a sleeping wait asks whether its peers still run
_NAP_FIRST, _NAP_CAP = 1e-5, 1e-3


def board_supported() -> bool:
    """Whether this machine orders stores as the board needs (x86-64)."""
    return platform.machine().lower() in ("x86_64", "amd64")


class Board:
    """Shared slots for `size` ranks; made before fork, so every child maps the same memory."""

    def __init__(self, size: int, slot_bytes: int = SLOT_BYTES):
        self.size, self.slot_bytes = size, slot_bytes
        self._slot_stride = _HEADER_BYTES + slot_bytes
        counters_bytes = LINE * size
        total = counters_bytes + size * 2 * self._slot_stride
        self._map = mmap.mmap(-1, total)  # anonymous and shared: forked children see the same pages
        self._counters = np.ndarray((size, LINE // 8), np.int64, buffer=self._map)
        self._slots_offset = counters_bytes
        self._counts = [0] * size  # allgathers each rank has made (a rank only ever reads and writes its own)

    def fits(self, array: np.ndarray) -> bool:
        """Whether the board carries `array` (the same answer on every rank for the same shape)."""
        return array.nbytes <= self.slot_bytes and array.ndim <= MAX_NDIM and len(array.dtype.str) <= 8

    def allgather(self, rank: int, array: np.ndarray, check: Callable[[], None], spin: bool) -> list[np.ndarray]:
        """Every rank's array, in rank order (copies); `check()` raises if waiting is hopeless."""
        self._counts[rank] += 1
        g = self._counts[rank]
        self._write(rank, g % 2, np.ascontiguousarray(array))
        self._counters[rank, 0] = g  # after the slot: its readers wait for this
        self._wait_for(g, check, spin)
        return [self._read(q, g % 2) for q in range(self.size)]

    def _slot(self, rank: int, parity: int) -> int:
        return self._slots_offset + (2 * rank + parity) * self._slot_stride

    def _write(self, rank: int, parity: int, array: np.ndarray) -> None:
        start = self._slot(rank, parity)
        header = np.ndarray(_HEADER // 8, np.int64, buffer=self._map, offset=start)
        header[0], header[1] = array.nbytes, array.ndim
        header[2 : 2 + array.ndim] = array.shape
        self._map[start + _HEADER : start + _HEADER + 8] = array.dtype.str.encode().ljust(8)
        data = np.ndarray(array.shape, array.dtype, buffer=self._map, offset=start + _HEADER_BYTES)
        data[...] = array

    def _read(self, rank: int, parity: int) -> np.ndarray:
        start = self._slot(rank, parity)
        header = np.ndarray(_HEADER // 8, np.int64, buffer=self._map, offset=start)
        ndim = int(header[1])
        shape = tuple(int(n) for n in header[2 : 2 + ndim])
        dtype = np.dtype(bytes(self._map[start + _HEADER : start + _HEADER + 8]).decode().strip())
        return np.ndarray(shape, dtype, buffer=self._map, offset=start + _HEADER_BYTES).copy()

    def _wait_for(self, g: int, check: Callable[[], None], spin: bool) -> None:
        counters = self._counters[:, 0]
        started = time.perf_counter()
        if spin:
            while counters.min() < g:
                if time.perf_counter() - started > SPIN_SECONDS:
                    break
            else:
                return
        nap, next_check = _NAP_FIRST, time.perf_counter() + CHECK_SECONDS
        while counters.min() < g:
            time.sleep(nap)
            nap = min(2 * nap, _NAP_CAP)
            if time.perf_counter() >= next_check:
                check()
                next_check = time.perf_counter() + CHECK_SECONDS

    def close(self) -> None:
        self._counters = None
        self._map = None  # unmapped when the last view of it goes
