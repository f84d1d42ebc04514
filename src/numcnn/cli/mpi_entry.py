"""`mpiexec -n 4 [-hosts a,b] numcnn train ...`: one training run over MPI ranks.

cli/train_cmd.py comes here when an MPI launcher started the process as one
of several ranks (train.parallel.mpi.launched_by_mpi reads the launcher's
environment, so mpi4py is imported only then). Every rank makes the same
MPICommunicator; then

- rank 0 (the root) runs `numcnn train` as one process would: data, the
  Solver (given the communicator, which splits every step and evaluation
  over the ranks), checkpoints, metrics, plots, --resume from its last.npz.
  When training begins it sends the other ranks its model (pickled once: the
  replica is then exact, frozen and regularized weights included); if it
  fails before that, it tells them to stop;
- ranks >= 1 need no data (every batch comes by broadcast): they take the
  model and run the worker loop, train.parallel.serve, until the root stops them.

When a rank dies, MPICH's mpiexec ends every rank within a second and prints
the pid and host of the first process it reaps (mostly the dead one; in 4 of
about 20 runs measured, one it stopped itself, or no banner at all); the root's
first line ("MPI: 2 ranks: rank 0 (pid ... on a), rank 1 (...)") says which
rank a pid is. A rank that is still
let run names the dead one itself (WorkerLost) and stops; a worker whose step
fails reports its error to the root first.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback

from ..train import UserError
from ..train.callbacks import Callback
from ..train.parallel import WorkerLost, serve
from ..train.parallel.mpi import MPICommunicator

__all__ = ["ModelToRanks", "train_over_mpi"]

_LINGER = 5.0  # seconds a failed worker waits, so that the root can print its report before mpiexec ends both


class ModelToRanks(Callback):
    """On the root: when training begins, send the model to the ranks waiting for it (once)."""

    def __init__(self, comm: MPICommunicator):
        self.comm, self.sent = comm, False

    def on_train_begin(self, solver) -> None:
        if not self.sent:
            self.comm.broadcast({"kind": "model", "model": solver.model})
            self.sent = True

    def stop_waiting_ranks(self) -> None:
        """The root failed before training: the ranks still waiting for a model may go."""
        if not self.sent and not self.comm.broken:
            self.comm.broadcast({"kind": "stop"})
            self.sent = True


def _share_cores(comm: MPICommunicator) -> None:
    """Ranks on one host split its cores: numcnn's op threads (and BLAS, at one thread per rank)."""
    from ..ops.engine import threads as engine_threads

    here = comm.ranks_here()
    if here > 1:
        per_rank = max(1, (os.cpu_count() or 1) // here)
        engine_threads.set_num_threads(per_rank)
        if per_rank == 1:
            engine_threads.one_blas_thread().__enter__()  # for the life of this process


def _exit_now(status: int) -> None:
    """Leave without MPI_Finalize, which would wait for the dead rank."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def train_over_mpi(args, train_here) -> int:
    """This rank's part of `numcnn train`; train_here(args, callbacks=, communicator=) is the one-process run."""
    comm = MPICommunicator()
    _share_cores(comm)
    if comm.is_root:
        return _root(comm, args, train_here)
    return _worker(comm)


def _root(comm: MPICommunicator, args, train_here) -> int:
    print(comm.ranks_line(), flush=True)
    handoff = ModelToRanks(comm)
    try:
        if args.workers != "auto":
            raise UserError(f"--workers {args.workers}: under mpiexec the MPI ranks are the workers (mpiexec -n)")
        if args.batch_size < comm.size:
            raise UserError(
                f"--batch-size {args.batch_size} cannot be split over {comm.size} MPI ranks: "
                f"give at least {comm.size}, or fewer ranks"
            )
        return train_here(args, callbacks=[handoff], communicator=comm)
    except WorkerLost as error:
        print(f"numcnn train: {error}", file=sys.stderr)
        _exit_now(1)
    finally:
        handoff.stop_waiting_ranks()


def _worker(comm: MPICommunicator) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # mpiexec passes Ctrl-C to every rank: the root stops them
    try:
        message = comm.broadcast(None)
        if message["kind"] == "model":
            serve(comm, message["model"])
    except WorkerLost as error:
        print(f"numcnn train (MPI rank {comm.rank}): {error}", file=sys.stderr)
        _exit_now(1)
    except Exception:
        print(f"numcnn train (MPI rank {comm.rank}) failed:\n{traceback.format_exc()}", file=sys.stderr)
        sys.stderr.flush()
        time.sleep(_LINGER)  # serve() reported it: the root prints it and stops the run
        _exit_now(1)
    comm.close()
    return 0
