"""choose_workers: whether this model trains faster on every core, measured on this machine.

Splitting a step over n ranks divides its compute by about n and adds a cost
that does not shrink with it: the model state and batch written to shared
memory, a pipe round trip per worker, and one exchange per batch-norm layer
in the forward and the backward (tens of microseconds each). Small steps
(a few milliseconds: tiny networks, tiny images) can lose; large ones gain
up to n. Neither side is a constant worth tuning once: both depend on the
network, the batch, the cores, the BLAS and the load. So the choice is
measured, on the run's own model and batch size: the median time of a few
steps on one process (as numcnn runs without workers: ops split over
threads) against the median with one rank per core. Parallel wins when it is
at least MARGIN faster; a near tie keeps one process, whose path is the
simpler one (and the assignment's).

How many steps are timed adapts to their size: enough for BUDGET_SECONDS
per side, at least MIN_STEPS and at most MAX_STEPS. The model is left as it
was: parameters, running statistics and random generators are restored.

The choice is kept, as the engines' plans are, in numcnn's wisdom file for
this machine (ops.engine.wisdom), keyed by the model's arrays (names, shapes,
dtypes), the batch and the cores: a later run of the same model reads it and
measures nothing, so the default `numcnn train` pays for the measurement
(about half a second) only once per machine.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np

from ...nn.random_state import capture_random_states, restore_random_states
from ...ops.engine import wisdom
from .data_parallel import DataParallel
from .model_state import load_model_arrays, model_arrays, unsplittable_reason
from .start import available_cores, start_workers

__all__ = ["Choice", "choose_workers"]

MARGIN = 0.9  # parallel must take at most 90% of one process's step time
BUDGET_SECONDS = 0.3  # per side: a fraction of a second for the digits, a few steps for a ResNet
MIN_STEPS, MAX_STEPS = 2, 8


@dataclass(frozen=True)
class Choice:
    """What choose_workers decided, and why.

    Attributes:
        workers: The number of workers to train with (1: one process, no workers).
        why: One line saying why, e.g. the two measured step times.
    """

    workers: int
    why: str


def _median_step(step, X, y) -> float:
    """Median seconds of step(X, y) after one warm-up, over as many steps as the budget allows."""
    started = time.perf_counter()
    step(X, y)  # warm-up: buffers allocated, kernels chosen
    first = time.perf_counter() - started
    count = int(min(MAX_STEPS, max(MIN_STEPS, BUDGET_SECONDS // max(first, 1e-6))))
    times = []
    for _ in range(count):
        started = time.perf_counter()
        step(X, y)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def choose_workers(model, X, y, cores: int | None = None, backend: str = "auto") -> Choice:
    """The workers to train `model` on batches like (X, y) with: cores if that measures faster, else 1."""
    cores = available_cores() if cores is None else cores
    if cores < 2:
        return Choice(1, "one core")
    reason = unsplittable_reason(model)
    if reason:
        return Choice(1, f"the model cannot be split over workers: {reason}")
    if len(X) < cores:
        return Choice(1, f"a batch of {len(X)} cannot be split over {cores} workers")
    key = wisdom_key(model, X, cores, backend)
    remembered = wisdom.read(wisdom.wisdom_path()).get(key)
    if remembered is not None and set(remembered["ms"]) == {"1", str(cores)}:
        one, split = remembered["ms"]["1"] / 1e3, remembered["ms"][str(cores)] / 1e3
        return Choice(int(remembered["choice"]), _described(one, split, cores) + " (measured before: numcnn wisdom)")
    saved, randomness = {k: np.array(v) for k, v in model_arrays(model).items()}, capture_random_states(model)
    try:
        one = _median_step(model.loss, X, y)
        with start_workers(model, cores, backend) as comm:
            parallel = DataParallel(model, comm)
            split = _median_step(parallel.loss, X, y)
    finally:
        load_model_arrays(model, saved)
        restore_random_states(model, randomness)
    workers = cores if split <= MARGIN * one else 1
    wisdom.write(wisdom.wisdom_path(), {key: {"choice": str(workers), "ms": {"1": one * 1e3, str(cores): split * 1e3}}})
    return Choice(workers, _described(one, split, cores))


def _described(one: float, split: float, cores: int) -> str:
    return f"a step took {one * 1e3:.1f} ms on one process, {split * 1e3:.1f} ms on {cores} workers"


def wisdom_key(model, X, cores: int, backend: str) -> str:
    """What the measured choice depends on: the model's arrays (names, shapes, dtypes), the batch, the cores."""
    arrays = sorted((name, np.shape(a), np.asarray(a).dtype.str) for name, a in model_arrays(model).items())
    model_id = hashlib.sha256(repr((type(model).__name__, arrays)).encode()).hexdigest()[:16]
    return f"workers {type(model).__name__} {model_id} batch {tuple(np.shape(X))} {X.dtype} cores {cores} {backend}"
