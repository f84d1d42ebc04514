"""Threads: run an op's chunks of images on several cores, and size the chunks.

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

import contextlib
import contextvars
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

try:
    from threadpoolctl import ThreadpoolController
except ImportError:  # optional: without it, chunks run serially
    ThreadpoolController = None

from . import tuning
from .choice import chunk_scale

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
            warm_up_blas()
            _pool = ThreadPoolExecutor(_num_threads, thread_name_prefix="numcnn")
            _blas = _blas or ThreadpoolController()
        return _pool


def warm_up_blas() -> None:
    """One GEMM large enough for BLAS to use its own threads, before any held to one thread.

    OpenBLAS 0.3.31 runs single-threaded GEMMs about half as fast in a
    process where no GEMM has yet run multi-threaded (BENCHMARKS.md, "What
    made it faster"). A 256x256x256 product (under a millisecond) is the
    smallest that OpenBLAS splits over threads.
    """
    import numpy as np

    a = np.ones((256, 256), np.float32)
    a @ a


def vector_sums(rows, axis: int = 0):
    """Sums of a 2-D array along `axis` by a BLAS matrix-vector product, on one BLAS thread.

    A product with a ones vector beats NumPy's axis sum when rows are short
    (NumPy's inner loop would run over only a row's 16-64 numbers). One BLAS
    thread, because OpenBLAS threads woken by a call spin for about 0.1 s
    after it, on the cores numcnn's chunk threads want next (BENCHMARKS.md,
    "batch norm's sums on one BLAS thread").
    """
    import numpy as np

    ones = np.ones(rows.shape[axis], rows.dtype)
    if getattr(_in_worker, "active", False):  # map_chunks holds BLAS to one thread already
        return ones @ rows if axis == 0 else rows @ ones
    with one_blas_thread():
        return ones @ rows if axis == 0 else rows @ ones


def one_blas_thread():
    """A context in which BLAS runs on one thread (a no-op without threadpoolctl)."""
    if ThreadpoolController is None:
        return contextlib.nullcontext()
    global _blas
    with _lock:
        if _blas is None:
            _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


def per_thread(start: int, stop: int) -> list[tuple[int, int]]:
    """[start, stop) split in one consecutive range per thread (fewer if there are fewer items)."""
    threads = max(1, min(num_threads(), stop - start))
    step = max(1, -(-(stop - start) // threads))
    return [(a, min(stop, a + step)) for a in range(start, stop, step)]


def map_chunks(
    task: Callable[[int, int], T], ranges: Sequence[tuple[int, int]], threads: int | None = None
) -> list[list[T]]:
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
    # Each worker runs in a copy of the caller's context, so a scoped engine
    # choice (engine.use) holds inside the chunks too; one copy per worker,
    # since a context cannot be entered by two threads at once.
    with _blas.limit(limits=1, user_api="blas"):
        futures = [pool.submit(contextvars.copy_context().run, work, j) for j in range(workers)]
        return [future.result() for future in futures]


def summed_in_order(per_worker: list[list[T]]) -> T:
    """The sum of map_chunks's results: chunks within a worker, then workers, always in that order.

    Floating-point addition is not associative; a fixed order makes a
    reduction over chunks reproducible bit for bit for a thread count.
    """
    return sum(sum(partials) for partials in per_worker)


def chunk_size(n: int, bytes_per_image: int, threads: int = 1, target_bytes: int | None = None) -> int:
    """Images per chunk: about target_bytes of scratch, and work for every thread.

    Parameters
    ----------
    n : images in the batch
    bytes_per_image : scratch one image needs (its patch matrix, say)
    threads : workers that will take the chunks; with more than one, chunks
        shrink so that each worker gets at least one (if that leaves each at
        least tuning.MIN_PARALLEL_BYTES)
    target_bytes : scratch per chunk, tuning.CHUNK_BYTES by default

    Returns
    -------
    images per chunk, between 1 and n
    """
    if target_bytes is None:  # scaled in a choice.scaled_chunks block (the planner's knob)
        target_bytes = int(tuning.CHUNK_BYTES * chunk_scale())
    size = target_bytes // max(1, bytes_per_image)
    if threads > 1:
        per_worker = -(-n // threads)
        if per_worker * bytes_per_image >= tuning.MIN_PARALLEL_BYTES:
            size = min(size, per_worker)
    return max(1, min(n, size))


def chunk_ranges(n: int, chunk: int) -> list[tuple[int, int]]:
    """Split n images into consecutive [start, stop) chunks of `chunk` images."""
    return [(start, min(n, start + chunk)) for start in range(0, n, chunk)]


def blocks_for_threads(n: int, nbytes: int, multiple: int = 1) -> list[tuple[int, int]]:
    """[0, n) in one block per thread when an array of nbytes is worth sharing, else one block.

    Parameters
    ----------
    n : rows or images to split
    nbytes : bytes the pass streams through memory; below
        tuning.PARALLEL_BYTES_PER_THREAD per thread, one block
    multiple : every block but the last is a multiple of this many

    Returns
    -------
    consecutive [start, stop) ranges covering [0, n)
    """
    threads = num_threads()
    if threads < 2 or nbytes < threads * tuning.PARALLEL_BYTES_PER_THREAD:
        return [(0, n)]
    step = -(-(n // multiple) // threads) * multiple
    return [(start, min(n, start + step)) for start in range(0, n, step)]
