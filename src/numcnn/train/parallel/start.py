"""start_workers: the root's communicator over local workers, processes or threads.

    with start_workers(model, 2) as comm:          # forks one worker holding a copy of model
        loss, grads = DataParallel(model, comm).loss(X, y)

While workers run, this process (the root) also runs one BLAS thread and
numcnn's ops serially: every core has one rank, and idle BLAS threads would
spin on the cores the workers need. Both are restored when the
communicator is closed. The thread pool of numcnn's ops is shut down before
forking (set_num_threads does it): a forked child must never use a pool
whose threads it does not have.
"""

from __future__ import annotations

import contextlib
import os

from ...ops.engine import threads as engine_threads
from .comm import Communicator
from .processes import fork_available, start_processes
from .threads import start_threads

__all__ = ["BACKENDS", "available_cores", "default_backend", "start_workers"]

BACKENDS = ("auto", "processes", "threads")


def available_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def default_backend() -> str:
    """processes where fork exists (they measured faster: the issue's table), else threads."""
    return "processes" if fork_available() else "threads"


class _Restoring(Communicator):
    """A communicator that puts the root's thread settings back when closed."""

    def __init__(self, inner: Communicator, restore):
        self.inner, self._restore = inner, restore
        self.rank, self.size = inner.rank, inner.size

    def broadcast(self, message=None):
        return self.inner.broadcast(message)

    def broadcast_arrays(self, arrays):
        return self.inner.broadcast_arrays(arrays)

    def allgather(self, array):
        return self.inner.allgather(array)

    def gather_arrays(self, arrays):
        return self.inner.gather_arrays(arrays)

    def sum_in_rank_order(self, array):
        return self.inner.sum_in_rank_order(array)

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self._restore.close()

    def __getattr__(self, name):  # pids of processes, ...
        return getattr(self.inner, name)


def start_workers(model, n: int, backend: str = "auto") -> Communicator:
    """n ranks (this process the root, n - 1 workers with replicas of model); close() stops them.

    backend: 'processes' (fork), 'threads', or 'auto' (default_backend()).
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 2:
        raise ValueError(f"n must be an int of at least 2 (ranks, the root included), got {n!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    chosen = default_backend() if backend == "auto" else backend
    if chosen == "processes" and not fork_available():
        raise ValueError("backend 'processes' needs fork, which this platform lacks; use 'threads'")
    restore = contextlib.ExitStack()
    previous = engine_threads.num_threads()
    engine_threads.set_num_threads(1)  # also shuts the op thread pool down before forking
    restore.callback(engine_threads.set_num_threads, previous)
    restore.enter_context(engine_threads.one_blas_thread())
    try:
        if chosen == "processes":  # waits spin only while every rank has a core of its own
            inner = start_processes(model, n, spin=n <= available_cores())
        else:
            inner = start_threads(model, n)
    except BaseException:
        restore.close()
        raise
    return _Restoring(inner, restore)
