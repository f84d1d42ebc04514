"""Run an op's chunks of images on several threads.

NumPy releases the GIL inside copies, ufunc loops and BLAS calls, so the
chunks of a convolution (im2col copy, GEMM, col2im adds) can run on several
cores at once. BLAS already uses every core for one GEMM, but the copies
and adds around it are single-threaded NumPy; splitting the chunks over
threads puts every core to work on them too. While the workers run, BLAS
is held to one thread each (otherwise T workers would start T x cores BLAS
threads, which measured slower than serial). That needs threadpoolctl
(`pip install numcnn[fast]`); without it the ops run serially, as they do
with set_num_threads(1).

Chunks are dealt to workers statically (worker j takes chunks j, j+T, ...)
and each worker's results come back in order, so a reduction over chunks is
summed in the same order every time: results are reproducible bit for bit
for a given thread count.

The number of threads is NUMCNN_NUM_THREADS, or the number of cores up to
4; set_num_threads(1) runs everything serially.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

try:
    from threadpoolctl import ThreadpoolController
except ImportError:  # optional: without it, chunks run serially
    ThreadpoolController = None

T = TypeVar("T")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_num_threads = int(os.environ.get("NUMCNN_NUM_THREADS", "0")) or min(os.cpu_count() or 1, 4)
_in_worker = threading.local()
_blas = None  # a ThreadpoolController, made on first use (it scans loaded libraries)


def num_threads() -> int:
    """Threads the ops use: 1 without threadpoolctl."""
    return _num_threads if ThreadpoolController is not None else 1


def set_num_threads(n: int) -> None:
    """Threads the ops split their chunks over (1: serial)."""
    global _num_threads, _pool
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    with _lock:
        _num_threads = n
        if _pool is not None:
            _pool.shutdown(wait=True)
            _pool = None


def _executor() -> ThreadPoolExecutor:
    global _pool, _blas
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_num_threads, thread_name_prefix="numcnn")
            _blas = ThreadpoolController()
        return _pool


def map_chunks(task: Callable[[int, int], T], ranges: Sequence[tuple[int, int]],
               threads: int | None = None) -> list[list[T]]:
    """Run task(start, stop) for every chunk; return each worker's results, in order.

    With T = min(threads, num_threads(), len(ranges)) workers, worker j runs
    ranges[j], ranges[j + T], ... sequentially. Called from inside a worker
    (an op within an op) it runs serially.
    """
    workers = min(num_threads() if threads is None else threads, num_threads(), len(ranges))
    if workers <= 1 or getattr(_in_worker, "active", False):
        return [[task(start, stop) for start, stop in ranges]]

    def work(j: int) -> list[T]:
        _in_worker.active = True
        try:
            return [task(start, stop) for start, stop in ranges[j::workers]]
        finally:
            _in_worker.active = False

    pool = _executor()
    with _blas.limit(limits=1, user_api="blas"):
        futures = [pool.submit(work, j) for j in range(workers)]
        return [future.result() for future in futures]
