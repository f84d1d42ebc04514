"""numcnn.train.parallel: data parallelism over whole training steps.

    comm.py           Communicator: broadcast, allgather, gather in rank order; WorkerLost
    shards.py         which rows each rank takes; the weighted sum in rank order
    model_state.py    a model's state as named arrays; whether a model can be split
    worker.py         a rank's share of a step or prediction; serve(), the loop of ranks >= 1
    data_parallel.py  DataParallel: the root's model.loss(X, y) over all ranks
    arena.py          shared memory for the arrays of every step (anonymous files, nothing pickled)
    processes.py      local workers as forked processes (pipes + shared memory)
    board.py          their allgather (batch norm's exchange): shared slots, waited for by spinning
    threads.py        local workers as threads (queues)
    start.py          start_workers(model, n, backend): the root's communicator, context-managed
    mpi.py            MPICommunicator: the same collectives over MPI (mpi4py, imported only under mpiexec)
    auto.py           choose_workers: does this model step faster on every core, measured here

Design (DP_DESIGN.md, issue 17). Rank 0, the root, runs the ordinary Solver
loop: sampling, augmentation, the update, callbacks, checkpoints and resume
stay single-process and unchanged. Ranks 1..n-1 are workers with a replica of
the model. A training step on the root samples and augments the whole batch
exactly as one worker would, then DataParallel.loss(X, y):

1. broadcast a command with the root's random states, then (broadcast_arrays)
   the root's parameters and buffers and the batch: workers always compute
   with the root's state, so the root's model is the only one that matters;
2. every rank runs model.loss on its contiguous rows (sizes differing by at
   most one) under nn.shard.batch_shard: batch norm combines its statistics
   over ranks (SyncBatchNorm semantics), dropout draws the whole batch's mask
   and keeps its rows;
3. the losses and gradients are gathered at the root and summed in rank
   order, each weighted by its fraction of the rows.

So data, augmentation and dropout masks are those of one worker; sums in a
fixed order make a run with N workers reproducible bit for bit; N = 1, 2, 3
agree within rounding. Evaluation splits its rows the same way.

Local workers are forked processes (threads where fork is missing; the
issue measured processes faster on two cores, 1.4-1.6x against 1.2-1.3x): a
forked child inherits the model; arrays travel through anonymous shared
files (memfd_create: no name in /dev/shm, so nothing can leak even after a
SIGKILL; multiprocessing.shared_memory's named segments outlive a killed
root until its resource-tracker process notices), passed once by file
descriptor over the pipe; the root waits on each pipe together with every
worker's process sentinel, so a dead worker raises WorkerLost naming it at
once; children die with the root (PR_SET_PDEATHSIG, and a parent check
right after it). Thread workers hold deep copies; their dropout draws from
private generators set to the root's global states at each step. Across
machines the same collectives run over MPI (mpi.py); ranks >= 1 run
serve(comm, model).

How many: Solver(workers=N) and `numcnn train --workers N`; --workers auto
(the CLI's default) measures, on the run's own model and batch size, a few
steps on one process against one rank per core, and keeps the parallel run
only where it is at least 10% faster (auto.py says why it is measured rather
than a threshold tuned once). A resumed run under auto keeps the workers its
checkpoint recorded, so that it continues bit for bit.

Layer: part of train; may import models, nn, ops, checks and io.
"""

from .auto import Choice, choose_workers
from .comm import Communicator, SingleProcess, Stopped, WorkerLost
from .data_parallel import DataParallel
from .model_state import unsplittable_reason
from .shards import shard_bounds
from .start import BACKENDS, available_cores, default_backend, start_workers
from .worker import serve

__all__ = [
    "BACKENDS",
    "Choice",
    "Communicator",
    "DataParallel",
    "SingleProcess",
    "Stopped",
    "WorkerLost",
    "available_cores",
    "choose_workers",
    "default_backend",
    "serve",
    "shard_bounds",
    "start_workers",
    "unsplittable_reason",
]
