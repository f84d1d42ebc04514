"""What synchronizing costs two processes that each run a whole training step.

Two processes run numcnn's ResNet-20 step on 64 images each, with one BLAS
thread and nothing exchanged, and the pair's images/s is compared with one
process alone. Then the same pair waits for each other:

    none        never (the ceiling of any data parallelism on these cores)
    step        once a step, on a blocking barrier
    bn-block    at every batch-norm exchange, on a blocking barrier (as pipes wait)
    bn-spin     at every batch-norm exchange, spinning on shared memory (as numcnn's board waits)

With --workers: numcnn's two data-parallel workers on a batch of 128, their
batch-norm exchanges relayed through the root's pipes or through the board
(numcnn/train/parallel/board.py), interleaved with one core alone.

Usage: python benchmarks/sync_cost.py [--model resnet20] [--steps 6] [--repeat 2] [--workers]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads OpenBLAS

import argparse
import multiprocessing as mp
import platform
import time

import numpy as np

MODES = ("none", "step", "bn-block", "bn-spin")


def _waiter(mode: str, rank: int, barrier, counters):
    """The function batch norm's exchange calls (it returns the array as its 'sum'), or None."""
    generation = [0]

    def spin(array):
        generation[0] += 1
        counters[rank] = generation[0]
        while min(counters[:]) < generation[0]:
            pass
        return array

    def block(array):
        barrier.wait()
        return array

    return {"bn-block": block, "bn-spin": spin}.get(mode)


def _run(model_name: str, mode: str, rank: int, steps: int, barrier, counters, results) -> None:
    from numcnn import models, nn
    from numcnn.nn.shard import BatchShard, batch_shard
    from numcnn.ops.engine import threads

    threads.set_num_threads(1)
    nn.manual_seed(0)
    model = models.Classifier(models.build(model_name))
    rng = np.random.default_rng(rank)
    X, y = rng.standard_normal((64, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, 64)
    exchange = _waiter(mode, rank, barrier, counters)

    def step():
        if exchange is None:
            model.loss(X, y)
        else:
            with batch_shard(BatchShard(0, 64, 64, exchange)):
                model.loss(X, y)
        if mode == "step":
            barrier.wait()

    step()
    step()
    barrier.wait()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    results.put(steps * 64 / (time.perf_counter() - started))


def images_per_second(model: str, mode: str, processes: int, steps: int) -> float:
    """The images/s of `processes` processes together."""
    context = mp.get_context("fork")
    barrier, counters, results = context.Barrier(processes), context.RawArray("q", processes), context.Queue()
    args = [(model, mode, rank, steps, barrier, counters, results) for rank in range(processes)]
    workers = [context.Process(target=_run, args=a) for a in args]
    for w in workers:
        w.start()
    total = sum(results.get() for _ in workers)
    for w in workers:
        w.join()
    return total


def workers_against_one_core(model_name: str, steps: int) -> tuple[float, float, float]:
    """images/s of one core on 64 images, and of two workers on 128 through the pipes and the board."""
    from numcnn import models, nn
    from numcnn.ops.engine import threads
    from numcnn.train.parallel import DataParallel, processes, start_workers

    threads.set_num_threads(1)
    nn.manual_seed(0)
    model = models.Classifier(models.build(model_name))
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((128, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, 128)

    def rate(step, rows):
        step(), step()
        started = time.perf_counter()
        for _ in range(steps):
            step()
        return steps * rows / (time.perf_counter() - started)

    def two_workers(board: bool) -> float:
        processes.board_supported = lambda: board  # read when the workers start
        with start_workers(model, 2, "processes") as comm:
            parallel = DataParallel(model, comm)
            return rate(lambda: parallel.loss(X, y), 128)

    one = rate(lambda: model.loss(X[:64], y[:64]), 64)
    pipes, board = two_workers(False), two_workers(True)
    return (one + rate(lambda: model.loss(X[:64], y[:64]), 64)) / 2, pipes, board


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workers", action="store_true", help="numcnn's two workers: pipes against the board")
    args = parser.parse_args()
    if args.workers:
        print(f"{args.model}: one core (64 images), two workers (128) through the pipes and the board, images/s")
        for _ in range(args.repeat):
            one, pipes, board = workers_against_one_core(args.model, args.steps)
            print(f"one core {one:.0f}; pipes {pipes:.0f} ({pipes / one:.2f}x); board {board:.0f} ({board / one:.2f}x)")
        return
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {args.model}, 64 images a process")
    print(f"{'one alone':>10}  " + "  ".join(f"{m:>9}" for m in MODES) + "   (pair / one)")
    for _ in range(args.repeat):
        one = images_per_second(args.model, "none", 1, args.steps)
        pairs = [images_per_second(args.model, mode, 2, args.steps) / one for mode in MODES]
        print(f"{one:10.0f}  " + "  ".join(f"{p:9.2f}" for p in pairs), flush=True)


if __name__ == "__main__":
    main()
