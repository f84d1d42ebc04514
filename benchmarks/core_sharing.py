"""What two cores give two workers on this machine: each kind of work alone, then on both cores at once.

    python benchmarks/core_sharing.py [--seconds 3]

A data-parallel step runs the same work on every core at the same moment, so
two workers can reach 2x one core only where nothing the cores share (the
memory bus, the last-level cache, a host's turbo budget, a hyper-thread's
sibling) slows them. Each probe runs for a fixed time on one process while
the other core idles, then on two processes started together (one BLAS
thread each), and prints the pair's throughput over one process's:

    fma        a Numba loop of independent multiply-adds on registers (the FMA units)
    l2         summing a 256 KB float32 array over and over (each core's own L2)
    stream     a triad over 3 x 64 MB float32 arrays (DRAM bandwidth)
    sgemm      512 x 512 float32 GEMMs (BLAS, cache-blocked: what convolutions are)
    numcnn     ResNet-20's training step (forward, backward) on 64 images, one worker's share of 128
    pytorch    the same step in PyTorch (the same network through numcnn.interop), one thread

A ratio near 2.0 means the cores do not get in each other's way for that
work; the lower it is, the more a second worker loses to what they share.

    python benchmarks/core_sharing.py --parts [--model resnet20]

times numcnn's step by part (numcnn bench profile's categories) on one core
alone and on each of two cores at once, and prints how much slower each part
runs beside the other core: the parts that lose most are the ones that need
the memory bus.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def _fma_kernel():
    import numba

    @numba.njit(fastmath=True, cache=True)
    def fma(rounds):
        acc = np.zeros(64, np.float32)
        x = np.full(64, 1.0001, np.float32)
        for _ in range(rounds):
            for i in range(64):
                acc[i] = acc[i] * x[i] + x[i]
        return acc.sum()

    return fma


def probe(kind: str):
    """A function doing one unit of `kind`'s work, and how many numbers (or flops) a unit is."""
    rng = np.random.default_rng(0)
    if kind == "fma":
        fma = _fma_kernel()
        fma(10)
        return lambda: fma(20_000), 20_000 * 64 * 2
    if kind == "l2":
        a = rng.standard_normal(64 * 1024).astype(np.float32)
        return lambda: [a.sum() for _ in range(50)], 50 * a.size
    if kind == "stream":
        a, b, c = (rng.standard_normal(16 * 2**20).astype(np.float32) for _ in range(3))
        return lambda: np.add(b, c * np.float32(3.0), out=a), 3 * a.size
    if kind == "sgemm":
        a, b = (rng.standard_normal((512, 512)).astype(np.float32) for _ in range(2))
        return lambda: a @ b, 2 * 512**3
    if kind == "numcnn":
        from numcnn import models, nn

        nn.manual_seed(0)
        model = models.Classifier(models.build("resnet20"))
        X = rng.standard_normal((64, 3, 32, 32)).astype(np.float32)
        y = rng.integers(0, 10, 64)
        model.loss(X, y)
        return lambda: model.loss(X, y), 64
    if kind == "pytorch":
        import torch

        from numcnn import models, nn
        from numcnn.interop.pytorch import to_torch

        torch.set_num_threads(1)
        nn.manual_seed(0)
        twin = to_torch(models.build("resnet20"))
        X = torch.randn(64, 3, 32, 32)
        y = torch.randint(0, 10, (64,))

        def step():
            twin.zero_grad()
            torch.nn.functional.cross_entropy(twin(X), y).backward()

        step()
        return step, 64
    raise ValueError(f"unknown probe {kind!r}")


def _run(kind: str, seconds: float, start, results) -> None:
    work, amount = probe(kind)
    work()
    start.wait()
    units, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        work()
        units += 1
    results.put(units * amount / (time.perf_counter() - began))


def throughput(kind: str, processes: int, seconds: float) -> list[float]:
    """Each process's rate (amount per second) when `processes` run `kind` at once."""
    context = mp.get_context("fork")
    start, results = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_run, args=(kind, seconds, start, results)) for _ in range(processes)]
    for w in workers:
        w.start()
    rates = [results.get() for _ in workers]
    for w in workers:
        w.join()
    return rates


def _profile(model: str, steps: int, start, results) -> None:
    from numcnn.bench.profile import profile
    from numcnn.ops.engine import threads

    threads.set_num_threads(1)
    profile(model, 1, 64)  # warm: buffers, compiled kernels, the planner's choices
    start.wait()
    results.put(profile(model, steps, 64))


def parts(model: str, steps: int) -> None:
    """Each category's ms per 64-image step alone and beside a twin, and the slowdown."""
    context = mp.get_context("fork")
    runs = {}
    for processes in (1, 2):
        start, results = context.Barrier(processes), context.Queue()
        workers = [context.Process(target=_profile, args=(model, steps, start, results)) for _ in range(processes)]
        for w in workers:
            w.start()
        runs[processes] = [results.get() for _ in workers]
        for w in workers:
            w.join()
    (alone, total), pair = runs[1][0], runs[2]
    paired = {k: np.mean([p[0].get(k, 0.0) for p in pair]) for k in alone}
    paired_total = np.mean([p[1] for p in pair])
    print(f"{model}, 64 images a step, ms: alone / each of two at once / slowdown")
    for k in sorted(alone, key=alone.get, reverse=True):
        print(f"  {k:40} {alone[k]:7.1f} {paired[k]:7.1f} {paired[k] / max(alone[k], 1e-9):6.2f}x")
    print(f"  {'step':40} {total:7.1f} {paired_total:7.1f} {paired_total / total:6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", action="store_true", help="numcnn's step by part, alone and paired")
    parser.add_argument("--model", default="resnet20", help="for --parts")
    parser.add_argument("--steps", type=int, default=5, help="for --parts")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--probes", nargs="+", default=["fma", "l2", "stream", "sgemm", "numcnn", "pytorch"])
    args = parser.parse_args()
    if args.parts:
        return parts(args.model, args.steps)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; one BLAS thread per process")
    print(f"{'probe':8} {'one alone':>12} {'each of two':>12} {'pair / one':>10}")
    for kind in args.probes:
        (alone,) = throughput(kind, 1, args.seconds)
        pair = throughput(kind, 2, args.seconds)
        print(
            f"{kind:8} {alone:12.4g} {min(pair):12.4g} {sum(pair) / alone:10.2f}   (each: {pair[0]:.4g}, {pair[1]:.4g})"
        )


if __name__ == "__main__":
    main()
