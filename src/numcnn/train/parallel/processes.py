"""Workers as forked processes: pipes for small commands, shared memory for arrays.

The root forks ranks 1..n-1 when training starts; each child inherits the
model (no pickling) and serves the worker loop (worker.serve). Commands and
the small arrays of batch-norm synchronization go through one pipe per
worker; the model state, the batch and the gradients through shared memory
(arena.py). The root relays allgather: every rank sends its part to the
root, which sends the list back, in rank order.

Failures: the root waits on a worker's pipe together with every worker's
process sentinel (multiprocessing.connection.wait), so a worker that dies
raises WorkerLost naming it at once, never a hang. A child dies with the
root: prctl(PR_SET_PDEATHSIG, SIGKILL) and a check that its parent is still
the root right after it (the root may have died before the prctl). Children
ignore Ctrl-C (the root stops them at the end of its step). Each child runs
one BLAS thread and numcnn's ops serially: the parallelism is the workers.
"""

from __future__ import annotations

import ctypes
import os
import signal
import traceback
from multiprocessing import get_context
from multiprocessing.connection import wait
from multiprocessing.reduction import recv_handle, send_handle

import numpy as np

from .arena import Inbox, Outbox
from .comm import Communicator, Stopped, WorkerLost, expected

__all__ = ["ProcessRoot", "ProcessWorker", "fork_available", "start_processes"]

PR_SET_PDEATHSIG = 1
STOP_SECONDS = 5.0  # how long a stopping worker may take before it is killed


def fork_available() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def _death(process) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        try:
            return f"signal {-code}, {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}" if code is not None else "its pipe closed"


class ProcessRoot(Communicator):
    """Rank 0 of forked workers: sends commands, relays allgather, reads gradients."""

    rank = 0

    def __init__(self, processes, connections):
        self.size = len(processes) + 1
        self._processes, self._connections = processes, connections
        self._outbox, self._inboxes = Outbox(), [Inbox() for _ in processes]
        self._closed = False

    # -- receiving, with every worker watched
    def _lost(self, index: int, during: str) -> WorkerLost:
        process = self._processes[index]
        process.join(0.5)
        return WorkerLost(f"worker {index + 1} (pid {process.pid}) died ({_death(process)}) during {during}")

    def _receive(self, index: int, during: str):
        connection = self._connections[index]
        sentinels = {p.sentinel: i for i, p in enumerate(self._processes)}
        while True:
            ready = wait([connection, *sentinels], timeout=1.0)
            if connection in ready:
                try:
                    message = connection.recv()
                except (EOFError, OSError):
                    raise self._lost(index, during) from None
                if message[0] == "error":
                    raise WorkerLost(
                        f"worker {index + 1} (pid {self._processes[index].pid}) failed during {during}:\n{message[1]}"
                    )
                return message
            for sentinel in ready:
                raise self._lost(sentinels[sentinel], during)

    def _send_all(self, message, during: str) -> None:
        for index, connection in enumerate(self._connections):
            try:
                connection.send(message)
            except (BrokenPipeError, OSError):
                raise self._lost(index, during) from None

    # -- collectives
    def broadcast(self, message=None):
        self._send_all(("message", message), "a broadcast")
        return message

    def broadcast_arrays(self, arrays):
        layout, fd = self._outbox.write(arrays)
        for index, connection in enumerate(self._connections):
            try:
                connection.send(("arrays", layout, fd is not None))
                if fd is not None:
                    send_handle(connection, fd, self._processes[index].pid)
            except (BrokenPipeError, OSError):
                raise self._lost(index, "a broadcast of arrays") from None
        return dict(arrays)

    def allgather(self, array):
        parts = [np.asarray(array)]
        for index in range(len(self._processes)):
            parts.append(self._receive(index, "a batch-norm exchange")[1])
        self._send_all(("parts", parts), "a batch-norm exchange")
        return parts

    def gather_arrays(self, arrays):
        gathered = [dict(arrays)]
        for index, connection in enumerate(self._connections):
            _, layout, new_file = self._receive(index, "the gradients' gather")
            if new_file:
                self._inboxes[index].adopt(recv_handle(connection), layout)
            gathered.append(self._inboxes[index].read(layout))
        return gathered

    def close(self) -> None:
        """Stop every worker (killed if it does not stop in STOP_SECONDS); idempotent."""
        if self._closed:
            return
        self._closed = True
        for connection in self._connections:
            try:
                connection.send(("stop",))
            except (BrokenPipeError, OSError):
                pass
        for process in self._processes:
            process.join(STOP_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
        for connection in self._connections:
            connection.close()
        self._outbox.close()
        for inbox in self._inboxes:
            inbox.close()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes]


class ProcessWorker(Communicator):
    """Rank r >= 1 in a forked child: the other side of ProcessRoot's pipe."""

    def __init__(self, rank: int, size: int, connection):
        self.rank, self.size, self._connection = rank, size, connection
        self._inbox, self._outbox = Inbox(), Outbox()

    def _receive(self, kind: str):
        try:
            message = self._connection.recv()
        except (EOFError, OSError):
            raise Stopped from None
        return expected(message, kind, self.rank)

    def broadcast(self, message=None):
        return self._receive("message")[1]

    def broadcast_arrays(self, arrays):
        _, layout, new_file = self._receive("arrays")
        if new_file:
            self._inbox.adopt(recv_handle(self._connection), layout)
        return self._inbox.read(layout)

    def allgather(self, array):
        self._connection.send(("part", np.asarray(array)))
        return self._receive("parts")[1]

    def gather_arrays(self, arrays):
        layout, fd = self._outbox.write(arrays)
        self._connection.send(("arrays", layout, fd is not None))
        if fd is not None:
            send_handle(self._connection, fd, os.getppid())
        return None

    def report(self, error: BaseException) -> None:
        """Tell the root why this worker cannot go on (it raises WorkerLost with this text)."""
        try:
            self._connection.send(("error", "".join(traceback.format_exception(error)).rstrip()))
        except (BrokenPipeError, OSError):
            pass

    def close(self) -> None:
        self._connection.close()
        self._outbox.close()
        self._inbox.close()


def _die_with(root_pid: int) -> None:
    """Be killed when the root dies; exit now if it already has."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the pipe's end-of-file still stops the loop
        pass
    if os.getppid() != root_pid:
        os._exit(1)


def _child(rank: int, size: int, connection, others, model, root_pid: int) -> None:
    _die_with(root_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the root's to handle
    for other in others:  # the root's ends: a worker must see end-of-file when the root goes
        other.close()
    from ...ops.engine import threads
    from .worker import serve

    threads.set_num_threads(1)
    comm = ProcessWorker(rank, size, connection)
    with threads.one_blas_thread():
        serve(comm, model)
    comm.close()


def start_processes(model, size: int) -> ProcessRoot:
    """Fork size - 1 workers holding copies of `model`; the root's communicator.

    Call with numcnn's op thread pool shut down (threads.set_num_threads does it): a forked
    child must not inherit a pool whose threads do not exist in it.
    """
    context = get_context("fork")
    processes, connections = [], []
    try:
        for rank in range(1, size):
            ours, theirs = context.Pipe(duplex=True)
            process = context.Process(
                target=_child,
                args=(rank, size, theirs, [*connections, ours], model, os.getpid()),
                name=f"numcnn-worker-{rank}",
                daemon=True,
            )
            process.start()
            theirs.close()
            processes.append(process)
            connections.append(ours)
    except BaseException:
        ProcessRoot(processes, connections).close()
        raise
    return ProcessRoot(processes, connections)
