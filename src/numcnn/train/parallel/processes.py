"""Workers as forked processes: pipes for small commands, shared memory for arrays.

The root forks ranks 1..n-1 when training starts; each child inherits the
model (no pickling) and serves the worker loop (worker.serve). Commands go
through one pipe per worker; the model state, the batch and the gradients
through shared memory (arena.py). Allgather, batch norm's exchange, goes
through the board (board.py): shared slots each rank writes and every rank
reads, waited for by spinning, since sleeping on a pipe and waking again at
each of a step's dozens of exchanges cost two workers a quarter of their
speed. Where the board cannot be used (not x86-64, or an array too big for
its slots) the root relays it through the pipes: every rank sends its part
to the root, which sends the list back, in rank order.

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
from .board import Board, board_supported
from .comm import Communicator, Stopped, WorkerLost, expected

__all__ = ["ProcessRoot", "ProcessWorker", "fork_available", "start_processes"]

PR_SET_PDEATHSIG = 1
STOP_SECONDS = 5.0  # how long a stopping worker may take before it is killed


def fork_available() -> bool:
    """Whether this platform can fork worker processes (the "processes" backend needs it)."""
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

    def __init__(self, processes, connections, board: Board | None = None, spin: bool = True):
        self.size = len(processes) + 1
        self._processes, self._connections = processes, connections
        self._board, self._spin = board, spin
        self._outbox, self._inboxes = Outbox(), [Inbox() for _ in processes]
        self._early: dict[int, tuple] = {}  # a worker's message read by _check_workers before its time
        self._closed = False

    # -- receiving, with every worker watched
    def _lost(self, index: int, during: str) -> WorkerLost:
        process = self._processes[index]
        process.join(0.5)
        return WorkerLost(f"worker {index + 1} (pid {process.pid}) died ({_death(process)}) during {during}")

    def _receive(self, index: int, during: str):
        if index in self._early:
            return self._early.pop(index)
        connection = self._connections[index]
        sentinels = {p.sentinel: i for i, p in enumerate(self._processes)}
        while True:
            ready = wait([connection, *sentinels], timeout=1.0)
            if connection in ready:
                return self._take(index, during)
            for sentinel in ready:
                raise self._lost(sentinels[sentinel], during)

    def _take(self, index: int, during: str):
        """The worker's next message, which is there to read; WorkerLost for its failure or end-of-file."""
        try:
            message = self._connections[index].recv()
        except (EOFError, OSError):
            raise self._lost(index, during) from None
        if message[0] == "error":
            raise WorkerLost(
                f"worker {index + 1} (pid {self._processes[index].pid}) failed during {during}:\n{message[1]}"
            )
        return message

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

    def _check_workers(self) -> None:
        """WorkerLost if a worker died or reported a failure (it sends nothing else mid-step)."""
        sentinels = {p.sentinel: i for i, p in enumerate(self._processes)}
        waiting = [c for i, c in enumerate(self._connections) if i not in self._early]
        for ready in wait([*waiting, *sentinels], timeout=0):
            if ready in sentinels:
                raise self._lost(sentinels[ready], "a batch-norm exchange")
            index = self._connections.index(ready)
            # a worker that already finished the exchange may have sent its gradients: kept for the gather
            self._early[index] = self._take(index, "a batch-norm exchange")

    def allgather(self, array):
        array = np.asarray(array)
        if self._board is not None and self._board.fits(array):
            return self._board.allgather(0, array, self._check_workers, self._spin)
        parts = [array]
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
        if self._board is not None:
            self._board.close()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes]


class ProcessWorker(Communicator):
    """Rank r >= 1 in a forked child: the other side of ProcessRoot's pipe."""

    def __init__(self, rank: int, size: int, connection, board: Board | None = None, spin: bool = True):
        self.rank, self.size, self._connection = rank, size, connection
        self._inbox, self._outbox = Inbox(), Outbox()
        self._board, self._spin = board, spin

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

    def _check_root(self) -> None:
        """Stopped if the root said anything mid-exchange (only a stop can come) or went away."""
        if self._connection.poll(0):
            self._receive("parts")  # raises Stopped for a stop or end-of-file

    def allgather(self, array):
        array = np.asarray(array)
        if self._board is not None and self._board.fits(array):
            return self._board.allgather(self.rank, array, self._check_root, self._spin)
        self._connection.send(("part", array))
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


def _child(rank: int, size: int, connection, others, model, root_pid: int, board, spin: bool) -> None:
    _die_with(root_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the root's to handle
    for other in others:  # the root's ends: a worker must see end-of-file when the root goes
        other.close()
    from ...ops.engine import threads
    from .worker import serve

    threads.set_num_threads(1)
    comm = ProcessWorker(rank, size, connection, board, spin)
    with threads.one_blas_thread():
        serve(comm, model)
    comm.close()


def start_processes(model, size: int, spin: bool = True) -> ProcessRoot:
    """Fork size - 1 workers holding copies of `model`; the root's communicator.

    spin: whether waits for batch norm's exchanges spin (board.py); give False when there are
    more ranks than cores. Call with numcnn's op thread pool shut down (threads.set_num_threads
    does it): a forked child must not inherit a pool whose threads do not exist in it.
    """
    context = get_context("fork")
    processes, connections = [], []
    board = Board(size) if board_supported() else None
    try:
        for rank in range(1, size):
            ours, theirs = context.Pipe(duplex=True)
            process = context.Process(
                target=_child,
                args=(rank, size, theirs, [*connections, ours], model, os.getpid(), board, spin),
                name=f"numcnn-worker-{rank}",
                daemon=True,
            )
            process.start()
            theirs.close()
            processes.append(process)
            connections.append(ours)
    except BaseException:
        ProcessRoot(processes, connections, board).close()
        raise
    return ProcessRoot(processes, connections, board, spin)
