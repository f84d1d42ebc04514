"""MPICommunicator: the Communicator over MPI (mpi4py), one rank per process, on one machine or many.

    mpiexec -n 4 -hosts a,b numcnn train ...     # every rank runs numcnn; see numcnn.cli.mpi_entry

Every collective is an MPI nonblocking one (Ibcast, Iallgather, Igatherv) of raw
bytes, polled until it completes, so that a rank waiting on a dead peer notices
and raises WorkerLost naming it instead of waiting forever:

- under MPICH's mpiexec (hydra) a rank that dies brings the whole job down at
  once (SIGKILL to every other rank; mpiexec prints the pid and host of the
  first process it reaps, mostly the dead one, and the root's first line maps
  pids to ranks: cli/mpi_entry.py); with
  `mpiexec -disable-auto-cleanup` the survivors get SIGUSR1 first, which this
  module catches: they name the dead rank within milliseconds (hydra often
  ends them soon after all the same, and may drop what they print);
- in the polling loop each rank also checks, twice a second, that the ranks
  on its own machine still run (their pids), whatever the launcher does.

Arrays travel as bytes: each message is a packed buffer (see `pack`) holding
a small pickled layout (name, dtype, shape, offset of each array) and the
arrays' bytes, 64-byte aligned, so any dtype and shape goes in one message.
Sums in rank order (sum_in_rank_order) add the gathered arrays locally in
rank order, so every rank holds the same bits.

mpi4py is imported only when a communicator is made (`import_mpi`), so
numcnn runs without it; asking for MPI without it is a UserError.
"""

from __future__ import annotations

import atexit
import os
import pickle
import signal
import socket
import sys
import threading
import time

import numpy as np

from ..config import UserError
from .comm import Communicator, WorkerLost

__all__ = ["MPICommunicator", "import_mpi", "launched_by_mpi", "pack", "unpack"]

# The environment variables MPI launchers give each rank: the job's number of ranks.
# PMI_SIZE: MPICH's hydra, Intel MPI, Slurm's srun (PMI-2); OMPI_COMM_WORLD_SIZE: Open MPI's mpirun.
LAUNCH_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")

_ALIGN = 64  # every array of a packed buffer starts on a cache line (and any dtype's alignment)
_HEADER = 16  # two int64: the pickled layout's length, where the arrays start
_CHECK_EVERY = 0.5  # seconds between two checks that the ranks on this host still run
_SPIN = 1e-4  # seconds a wait polls without sleeping, plus _SPIN_PER_BYTE for each byte it moves
_SPIN_PER_BYTE = 2e-9  # 2 ms for a megabyte: shared memory moves it in small cells, one per poll
_NAP_FIRST = 1e-5  # then sleeps between polls, growing 1.5 times a poll up to _NAP_CAP
_NAP_CAP = 5e-4  # longest sleep between two polls: the latency a waiting rank may add (2000 polls/s: <1% of a core)
_REPORT_TAG = 17  # a worker's failure, sent to the root outside the collectives


def launched_by_mpi(environ=None) -> bool:
    """True when an MPI launcher started this process as one of several ranks (never imports mpi4py)."""
    environ = os.environ if environ is None else environ
    for name in LAUNCH_VARIABLES:
        try:
            if int(environ.get(name, "")) > 1:
                return True
        except ValueError:
            continue
    return False


def import_mpi():
    """mpi4py's MPI module (initializes MPI); a UserError saying what to install when it is missing."""
    if "mpi4py.MPI" not in sys.modules:
        try:
            import mpi4py
        except ImportError:
            raise UserError(
                "training over MPI needs mpi4py and an MPI library: pip install numcnn[mpi] (mpi4py and MPICH's wheels)"
            ) from None
        # Only the main thread calls MPI; 'serialized' skips MPICH's per-call locking.
        mpi4py.rc.thread_level = "serialized"
    from mpi4py import MPI

    return MPI


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def pack(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """One uint8 buffer holding `arrays` (any dtypes and shapes).

    Layout: int64 length of the pickled layout, int64 where the arrays start,
    the pickled [(name, dtype, shape, offset from the arrays' start)], then
    each array's bytes at a 64-byte aligned offset.
    """
    arrays = {name: np.asarray(array) for name, array in arrays.items()}
    layout, offset = [], 0
    for name, array in arrays.items():
        layout.append((name, array.dtype.str, array.shape, offset))
        offset = _aligned(offset + array.nbytes)
    meta = pickle.dumps(layout, protocol=pickle.HIGHEST_PROTOCOL)
    start = _aligned(_HEADER + len(meta))
    buffer = np.empty(start + offset, dtype=np.uint8)
    buffer[:_HEADER].view(np.int64)[:] = (len(meta), start)
    buffer[_HEADER : _HEADER + len(meta)] = np.frombuffer(meta, dtype=np.uint8)
    for array, (_, _, shape, at) in zip(arrays.values(), layout):
        np.ndarray(shape, array.dtype, buffer=buffer, offset=start + at)[...] = array  # any strides: one copy
    return buffer


def unpack(buffer: np.ndarray, writeable: bool = False) -> dict[str, np.ndarray]:
    """The arrays of a buffer made by `pack`, as views into it (read-only unless writeable)."""
    meta_length, start = (int(n) for n in buffer[:_HEADER].view(np.int64))
    layout = pickle.loads(buffer[_HEADER : _HEADER + meta_length].tobytes())
    arrays = {}
    for name, dtype, shape, at in layout:
        array = np.ndarray(shape, np.dtype(dtype), buffer=buffer, offset=start + at)
        array.flags.writeable = writeable
        arrays[name] = array
    return arrays


class _FailureSignal:
    """Catches hydra's SIGUSR1 (a rank failed, under -disable-auto-cleanup) for the whole process.

    Installed once, from the main thread; the signal only sets a flag that the
    polling loops read. At exit it is blocked, so a late notice (hydra also
    sends it while the last ranks finalize) never kills a process that ended well.
    """

    noticed = False
    installed = False

    @classmethod
    def install(cls) -> None:
        if cls.installed or threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGUSR1, cls._notice)
        atexit.register(signal.pthread_sigmask, signal.SIG_BLOCK, {signal.SIGUSR1})
        cls.installed = True

    @classmethod
    def _notice(cls, signum, frame) -> None:
        cls.noticed = True


def _pid_runs(pid: int) -> bool:
    """Whether process `pid` (on this host) still runs: exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True  # no /proc (macOS): existing is running


def _pid_space() -> str:
    """Which processes' pids this process can check: its machine's boot and its pid namespace.

    Two ranks see each other's pids when both match (host names can repeat across containers).
    """
    try:
        with open("/proc/sys/kernel/random/boot_id") as boot:
            return f"{boot.read().strip()}:{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return socket.gethostname()  # no /proc (macOS): one pid space per host


class MPICommunicator(Communicator):
    """The Communicator over an MPI communicator (default COMM_WORLD, duplicated: our messages stay apart).

    Made on every rank at the same point (the constructor is collective: the
    ranks exchange host names and pids, to name a rank that dies).
    """

    def __init__(self, comm=None, grace: float = 2.0):
        MPI = import_mpi()
        self._mpi = MPI
        self._comm = (MPI.COMM_WORLD if comm is None else comm).Dup()
        self.rank, self.size = self._comm.Get_rank(), self._comm.Get_size()
        self._grace = grace  # seconds to look for a dead local rank after a failure notice
        self.broken = False
        self._closed = False
        _FailureSignal.install()
        self.host, self.pid_space = socket.gethostname(), _pid_space()
        # every rank's (host name, pid, pid space): to name a rank, and to check the ones whose pids we see
        self.peers: list[tuple[str, int, str]] = self._comm.allgather((self.host, os.getpid(), self.pid_space))

    def ranks_here(self) -> int:
        """How many ranks share this machine (this one included)."""
        return sum(space == self.pid_space for _, _, space in self.peers)

    def describe(self, rank: int) -> str:
        """'rank 1 (pid 1234 on host)'."""
        host, pid, _ = self.peers[rank]
        return f"rank {rank} (pid {pid} on {host})"

    def ranks_line(self) -> str:
        """One line naming every rank's pid and host (mpiexec names a dead rank by its pid)."""
        return f"MPI: {self.size} ranks: " + ", ".join(self.describe(r) for r in range(self.size))

    # -- collectives ---------------------------------------------------------------------

    def broadcast(self, message=None):
        if self.is_root:
            data = np.frombuffer(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL), dtype=np.uint8)
            self._bcast(np.array([data.size], dtype=np.int64), "a command")
            self._bcast(data, "a command")
            return message
        length = np.zeros(1, dtype=np.int64)
        self._bcast(length, "a command")
        data = np.empty(int(length[0]), dtype=np.uint8)
        self._bcast(data, "a command")
        return pickle.loads(data.tobytes())

    def broadcast_arrays(self, arrays):
        if self.is_root:
            buffer = pack(arrays)
            self._bcast(np.array([buffer.size], dtype=np.int64), "arrays")
            self._bcast(buffer, "arrays")
            return dict(arrays)
        size = np.zeros(1, dtype=np.int64)
        self._bcast(size, "arrays")
        buffer = np.empty(int(size[0]), dtype=np.uint8)
        self._bcast(buffer, "arrays")
        return unpack(buffer)

    def allgather(self, array):
        array = np.asarray(array)
        out = np.empty((self.size, *array.shape), dtype=array.dtype)  # a 0-d array stays 0-d
        send = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
        self._wait(self._comm.Iallgather(send, out.reshape(self.size, -1).view(np.uint8)), "an allgather", out.nbytes)
        return [out[r] for r in range(self.size)]

    def gather_arrays(self, arrays):
        buffer = pack(arrays)
        sizes = np.zeros(self.size, dtype=np.int64) if self.is_root else None
        self._wait(self._comm.Igather(np.array([buffer.size], dtype=np.int64), sizes, root=0), "a gather")
        if not self.is_root:
            self._wait(self._comm.Igatherv(buffer, None, root=0), "a gather", buffer.nbytes)
            return None
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        gathered = np.empty(int(sizes.sum()), dtype=np.uint8)
        request = self._comm.Igatherv(buffer, [gathered, (sizes, offsets), self._mpi.BYTE], root=0)
        self._wait(request, "a gather", gathered.nbytes)
        parts = [unpack(gathered[o : o + s], writeable=True) for o, s in zip(offsets, sizes)]
        parts[0] = dict(arrays)
        return parts

    def report(self, error: BaseException) -> None:
        """Tell the root that this worker failed (the root raises WorkerLost with the error); best effort.

        Sent point to point beside the collectives, which the root keeps polling;
        waits at most two seconds for the root to take it.
        """
        if self.is_root or self.broken:
            return
        text = np.frombuffer(f"{type(error).__name__}: {error}".encode(), dtype=np.uint8)
        request = self._comm.Issend(text, dest=0, tag=_REPORT_TAG)
        deadline = time.perf_counter() + 2.0
        while not request.Test() and time.perf_counter() < deadline:
            time.sleep(1e-3)

    def close(self):
        """Stop using the communicator. A broken one (a rank died) is left alone: freeing it could wait."""
        if self._closed:
            return
        self._closed = True
        if not self.broken:
            self._comm.Free()

    # -- waiting, and noticing a dead rank -----------------------------------------------

    def _bcast(self, buffer: np.ndarray, what: str) -> None:
        self._wait(self._comm.Ibcast(buffer.view(np.uint8), root=0), what, buffer.nbytes)

    def _wait(self, request, what: str, nbytes: int = 0) -> None:
        """Poll `request` until done: spin while it may be moving data (MPI progresses only inside
        Test), then sleep between polls (a rank waiting on slower ranks leaves its core to others)."""
        if self.broken:
            raise WorkerLost(f"MPI communicator of rank {self.rank} is unusable: a rank died earlier")
        started = time.perf_counter()
        spin = _SPIN + nbytes * _SPIN_PER_BYTE
        next_check, noticed_at, nap = started + _CHECK_EVERY, None, _NAP_FIRST
        while not request.Test():
            now = time.perf_counter()
            if now - started < spin:
                continue
            if _FailureSignal.noticed and noticed_at is None:
                noticed_at = now
                next_check = now
            if now >= next_check:
                self._check_peers(what, noticed_at is not None and now - noticed_at > self._grace)
                next_check = now + (0.05 if noticed_at is not None else _CHECK_EVERY)
            time.sleep(nap)
            nap = min(nap * 1.5, _NAP_CAP)

    def _check_peers(self, what: str, give_up: bool) -> None:
        """WorkerLost naming a worker that reported its failure, or the ranks of this machine that no longer
        run; after a failure notice and its grace, whoever it may be."""
        status = self._mpi.Status()
        if self.is_root and self._comm.Iprobe(source=self._mpi.ANY_SOURCE, tag=_REPORT_TAG, status=status):
            text = np.empty(status.Get_count(self._mpi.BYTE), dtype=np.uint8)
            self._comm.Recv(text, source=status.Get_source(), tag=_REPORT_TAG)
            self.broken = True
            raise WorkerLost(f"MPI {self.describe(status.Get_source())} failed: {text.tobytes().decode()}")
        dead = [r for r, (_, pid, space) in enumerate(self.peers) if space == self.pid_space and not _pid_runs(pid)]
        if dead:
            self.broken = True
            names = ", ".join(self.describe(r) for r in dead)
            raise WorkerLost(f"MPI {names} died (rank {self.rank} was waiting for {what})")
        if give_up:
            self.broken = True
            elsewhere = [self.describe(r) for r, (_, _, space) in enumerate(self.peers) if space != self.pid_space]
            raise WorkerLost(
                f"mpiexec reported a dead MPI rank (rank {self.rank} was waiting for {what}); the ranks "
                f"beside this one on {self.host} run, so it is one of: {', '.join(elsewhere) or 'none'}"
            )
