"""Where a training step spends its time: GEMMs, copies, transforms, batch norm, elementwise.

    python benchmarks/profile_step.py [--models resnet20 airbench] [--steps 3]
    numcnn bench profile

The parts are measured on one core (numcnn's chunk threads off, BLAS on one
thread), so that they add up to the step: each timed function's own time
excludes the timed functions it calls. A step is forward, backward and the
update, float32, batch 128, as in bench_train; the step is also timed on
every core, as training runs it, to show how well it scales.

Why one core: with BLAS on two cores and the ops serial (this profile's
first form), a copy into a patch buffer that the other core's GEMM thread
had just read ran 2x slower than the same copy alone (measured on the
2-core EPYC of BENCHMARKS.md, 0.93 vs 0.43 ms for a 16-channel chunk): the
cache lines have to come back from the other core. That charged the GEMM's
threading to the im2col copies, which no training run pays in that form.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections import defaultdict

import numpy as np

from .. import ops
from ..ops.engine import direct, layout, threads, winograd
from .ops import blas_description
from .train import RULES, batch, numcnn_model, numcnn_step

# (module or class, function name, category): the functions whose time is attributed; all public
# pieces of the engine (numcnn.ops.engine), looked up through their module or Layout class at call time.
TIMED = [
    (layout.Layout, "padded", "conv: padding copies"),
    (layout.ChannelsLast, "im2col", "conv: im2col copies"),
    (layout.ChannelsFirst, "im2col", "conv: im2col copies"),
    (layout, "col2im", "conv: col2im adds"),
    (layout, "col2im_taps", "conv: col2im adds"),
    (layout, "channels_last_copy", "conv: layout copies"),
    (direct, "conv_output", "conv: direct kernels"),  # the compiled engine, where the planner or rules chose it
    (direct, "conv_input_grad", "conv: direct kernels"),
    (direct, "conv_weight_grad", "conv: direct kernels"),
    (ops, "conv2d_forward", "conv: the rest"),
    (ops, "conv2d_backward", "conv: the rest"),
    (ops, "batchnorm_forward", "batch norm"),
    (ops, "batchnorm_backward", "batch norm"),
    (ops, "relu_forward", "ReLU"),
    (ops, "relu_backward", "ReLU"),
    (ops, "max_pool2d_forward", "pooling"),
    (ops, "max_pool2d_backward", "pooling"),
    (ops, "global_avg_pool_forward", "pooling"),
    (ops, "global_avg_pool_backward", "pooling"),
    (ops, "linear_forward", "linear"),
    (ops, "linear_backward", "linear"),
    (ops, "softmax_loss", "loss"),
]
GEMM = "conv: GEMMs"
# Winograd's transforms are reached through its Tiling records, not module attributes.
WINOGRAD_TRANSFORMS = ("input_transform", "output_transform", "output_grad_transform")


class _Clock:
    """Self time per category: a call's time minus that of the timed calls inside it."""

    def __init__(self):
        self.totals = defaultdict(float)
        self.stack = []

    def wrap(self, fn, category):
        def timed(*args, **kwargs):
            self.stack.append(0.0)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                inner = self.stack.pop()
                self.totals[category] += elapsed - inner
                if self.stack:
                    self.stack[-1] += elapsed

        return timed


class _NumpyWithTimedMatmul:
    """numpy as the engine's GEMM modules (layout, winograd) see it, with matmul timed."""

    def __init__(self, clock):
        self.matmul = clock.wrap(np.matmul, GEMM)

    def __getattr__(self, name):
        return getattr(np, name)


@contextlib.contextmanager
def instrumented(clock: _Clock):
    """Within the block, each function of TIMED, the engine's matmul and Winograd's transforms
    charge their own time to clock; the originals are put back on the way out.
    """
    saved = [(module, name, getattr(module, name)) for module, name, _ in TIMED]
    saved += [(module, "np", module.np) for module in (layout, winograd)]
    saved.append((winograd, "TILINGS", winograd.TILINGS))
    try:
        for module, name, category in TIMED:
            setattr(module, name, clock.wrap(getattr(module, name), category))
        winograd.TILINGS = {
            m: tiling._replace(
                **{f: clock.wrap(getattr(tiling, f), "conv: Winograd transforms") for f in WINOGRAD_TRANSFORMS}
            )
            for m, tiling in winograd.TILINGS.items()
        }
        for module in (layout, winograd):
            module.np = _NumpyWithTimedMatmul(clock)
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def _warm_step(name: str, batch_size: int):
    """A network's training step and a batch for it, run once so its buffers exist."""
    step = numcnn_step(numcnn_model(name), name)
    X, y = batch(batch_size)
    step(X, y)
    return step, X, y


def step_time(name: str, steps: int, batch_size: int) -> float:
    """Milliseconds per training step with the ops' usual threading (median of `steps`)."""
    step, X, y = _warm_step(name, batch_size)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(X, y)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def profile(name: str, steps: int, batch_size: int) -> tuple[dict, float]:
    """Milliseconds per step by category, and the step's total, in the current threading."""
    step, X, y = _warm_step(name, batch_size)
    clock = _Clock()
    update = clock.wrap(step, f"update ({RULES[name][0]}) and Python")
    with instrumented(clock):
        start = time.perf_counter()
        for _ in range(steps):
            update(X, y)
        total = (time.perf_counter() - start) / steps
    return {k: 1000 * v / steps for k, v in clock.totals.items()}, 1000 * total


def main(argv=None) -> int:
    """`numcnn bench profile`: print each model's step time and where it goes, by category; returns 0."""
    parser = argparse.ArgumentParser(prog="numcnn bench profile", description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet20", "airbench"], choices=list(RULES))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)
    cores = threads.num_threads()
    print(
        f"BLAS: {blas_description()}; float32, batch {args.batch_size}; "
        f"parts on one core, the whole step also on {cores}"
    )
    for name in args.models:
        everywhere = step_time(name, args.steps, args.batch_size)
        threads.warm_up_blas()  # OpenBLAS's single-threaded GEMMs are slow until one threaded GEMM ran
        threads.set_num_threads(1)
        try:
            with threads.one_blas_thread():
                parts, total = profile(name, args.steps, args.batch_size)
        finally:
            threads.set_num_threads(cores)
        print(
            f"\n{name}: {total:.0f} ms per training step on one core; "
            f"{everywhere:.0f} ms on {cores} ({total / everywhere:.2f}x faster)"
        )
        for category, ms in sorted(parts.items(), key=lambda item: -item[1]):
            print(f"  {category:<30} {ms:8.1f} ms  {100 * ms / total:5.1f}%")
    return 0
