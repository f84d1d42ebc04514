"""The planner: each large convolution runs the engine measured fastest on this machine.

As FFTW's planner with its wisdom, and cuDNN's benchmark mode: the first
time a convolution problem (shapes, geometry, groups, dtype, the input's
memory layout, numcnn's and BLAS's thread counts; the batch rounded up to
a power of two) is met, every candidate that applies (candidates.py: im2col
channels-last and channels-first, Winograd F(2x2) and F(4x4), and any
registered with register_candidate) runs its forward and backward on the
layer's own arrays: one warm-up, then tuning.TUNE_REPEATS timed runs, the
median kept. To keep that cheap,

- the candidates are first screened on a quarter of the batch, and only
  those near the best there are timed on all of it (screened());
- a candidate whose first timed run is tuning.TUNE_GIVE_UP times the best
  so far, or whose warm-up forward, or forward and backward, take twice
  that even when repeated warm, is dropped early and recorded with the time
  that ruled it out (a compiled kernel's first-call compile does not count
  against it).

The winner is then also timed with its chunks scaled
(tuning.TUNE_CHUNK_SCALES). The choice and every candidate's time go to
the wisdom file (wisdom.py), which later runs on the same machine read
instead of measuring.

The rules (layout_for, tuning's Winograd thresholds) still decide when

- NUMCNN_TUNE=0 (nothing is timed, no file is read or written),
- an engine is forced (engine.use, anything but "auto"),
- the layer has fewer than tuning.TUNE_MIN_MACS multiply-adds: small
  layers, where timing would cost more than it saves (see tuning.py).

Every candidate computes the same sums, so the choice changes results by
rounding only. Timing runs forward and backward with input gradients,
whichever the caller will need: a layer that trains does both.

Extra candidates (a compiled kernel) register themselves:

    register_candidate("direct", applies, forward, backward)

with the functions of candidates.py's docstring; modules named in
EXTRA_CANDIDATE_MODULES (siblings of this one) are imported on the first
plan so they can, and skipped when absent; the direct convolution
(direct.py) is adapted by candidates.direct_candidate if it did not
register itself.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import statistics
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

from . import scratch, tuning, wisdom
from .candidates import BUILT_IN, RULES, Candidate, ConvProblem, chunk_variants, direct_candidate, rules_pick
from .choice import chosen
from .geometry import WindowGeometry
from .threads import num_threads

__all__ = [
    "Candidate",
    "ConvProblem",
    "EXTRA_CANDIDATE_MODULES",
    "Planned",
    "candidates_for",
    "clock",
    "conv_engine",
    "engine_named",
    "forget",
    "plan_key",
    "recording",
    "register_candidate",
    "tuning_enabled",
    "unregister_candidate",
]

# Sibling modules that register candidates when imported (the Numba direct convolution).
EXTRA_CANDIDATE_MODULES = ("direct",)

# The timer; tests replace it with a fake clock to count and steer measurements.
clock: Callable[[], float] = time.perf_counter

_lock = threading.RLock()
_registry: dict[str, Candidate] = {c.name: c for c in (RULES, *BUILT_IN)}
_variants = chunk_variants(tuning.TUNE_CHUNK_SCALES)
for _scaled in _variants.values():
    _registry.update({c.name: c for c in _scaled})
_extras_loaded = False
_tables: dict[str, dict[str, dict]] = {}  # wisdom file -> its plans, as read or measured in this process
_recorders: list[list] = []


def register_candidate(name: str, applies: Callable, forward: Callable, backward: Callable) -> Candidate:
    """Add a way to run convolutions for the planner to time (see candidates.py for the signatures).

    `applies(problem)` says which problems it takes (a ConvProblem). Registering a name again
    replaces the candidate. Returns the Candidate.
    """
    if not isinstance(name, str) or not name or name in ("rules", *(c.name for c in BUILT_IN)):
        raise ValueError(f"name must be a new non-empty string (not a built-in engine's), got {name!r}")
    candidate = Candidate(name, applies, forward, backward)
    with _lock:
        _registry[name] = candidate
    return candidate


def unregister_candidate(name: str) -> None:
    """Remove a candidate register_candidate added (a no-op for unknown names); plans naming it re-measure."""
    if name not in ("rules", *(c.name for c in BUILT_IN)):
        with _lock:
            _registry.pop(name, None)


def tuning_enabled() -> bool:
    """False when NUMCNN_TUNE=0: the fixed rules, nothing timed, no wisdom file."""
    return os.environ.get("NUMCNN_TUNE", "1").strip() != "0"


def _load_extras() -> None:
    """Import EXTRA_CANDIDATE_MODULES once; register the direct convolution's adapter where it runs."""
    global _extras_loaded
    if _extras_loaded:
        return
    _extras_loaded = True
    for module in EXTRA_CANDIDATE_MODULES:
        name = f"{__package__}.{module}"
        try:
            loaded = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:  # the module is there but needs something missing: say so
                warnings.warn(f"{name} offers no candidate: {error}", RuntimeWarning, stacklevel=2)
            continue
        adapted = direct_candidate(loaded) if module == "direct" else None
        if adapted is not None and adapted.name not in _registry:  # unless it registered itself
            _registry[adapted.name] = adapted


def candidates_for(problem: ConvProblem) -> list[Candidate]:
    """Every registered candidate that applies to `problem` (chunk-scaled variants aside), the rules'
    pick first (it wins ties)."""
    _load_extras()
    scaled = {c.name for variants in _variants.values() for c in variants}
    found = [c for c in _registry.values() if c is not RULES and c.name not in scaled and c.applies(problem)]
    first = rules_pick(problem)
    return sorted(found, key=lambda c: c.name != first)


def engine_named(name: str) -> Candidate:
    """The candidate a forward chose (Conv2dCache.engine), for its backward; "" or unknown: the rules."""
    return _registry.get(name, RULES) if name else RULES


def plan_key(problem: ConvProblem) -> str:
    """The wisdom key: everything but the machine that the speed depends on."""
    N, C, H, W = problem.x_shape
    F, cg, KH, KW = problem.w_shape
    g = problem.geom
    batch = 1 << max(0, N - 1).bit_length()  # a last short batch plans with the full ones
    return (
        f"conv2d n<={batch} c{C} {H}x{W} f{F} k{KH}x{KW} s{g.stride[0]},{g.stride[1]} "
        f"p{','.join(map(str, g.pad))} d{g.dilation[0]},{g.dilation[1]} g{problem.groups} "
        f"{np.dtype(problem.dtype).name} {'nhwc' if problem.channels_last else 'nchw'} "
        f"threads{num_threads()} blas{wisdom.blas_threads()}"
    )


def conv_engine(x: np.ndarray, w: np.ndarray, geom: WindowGeometry, groups: int) -> Candidate:
    """The candidate conv2d_forward runs x (N, C, H, W) * w (F, C/groups, KH, KW) with: the rules for
    small layers, forced engines and NUMCNN_TUNE=0, else the planned one (measured on first use)."""
    if chosen() != "auto" or not tuning_enabled():
        return RULES
    problem = ConvProblem.of(x, w, geom, groups)
    if problem.macs() < tuning.TUNE_MIN_MACS:
        return RULES
    return _planned(problem, x, w)


def _table() -> tuple[object, dict[str, dict]]:
    path = wisdom.wisdom_path()
    if str(path) not in _tables:
        _tables[str(path)] = dict(wisdom.read(path))
    return path, _tables[str(path)]


def _planned(problem: ConvProblem, x: np.ndarray, w: np.ndarray) -> Candidate:
    key = plan_key(problem)
    _load_extras()  # a plan read from the wisdom may name a registered kernel
    with _lock:
        path, table = _table()
        entry = table.get(key)
        known = _registry.get(entry["choice"]) if entry else None
        measured, seconds = known is None or not known.applies(problem), 0.0
        if measured:  # never seen here, or its winner is not available in this process
            started = time.perf_counter()  # the real clock: what tuning cost, for bench tune
            times = measure(problem, x, w)
            seconds = time.perf_counter() - started
            scratch.clear()  # the losers' buffers (this thread's): the winner reallocates its own once
            best = min(times, key=times.get)
            entry = {"choice": best, "ms": {name: round(t * 1e3, 4) for name, t in times.items()}}
            table[key] = entry
            wisdom.write(path, {key: entry})
        for recorder in _recorders:
            recorder.append(Planned(problem, key, entry, measured, seconds))
        return _registry[entry["choice"]]


def _warm(run: Callable, limit: float) -> tuple[object, float]:
    """run()'s result and seconds; run again if the first (cold: a compile, pages first touched) took over limit."""
    start = clock()
    result = run()
    seconds = clock() - start
    if seconds > limit:
        start = clock()
        result = run()
        seconds = clock() - start
    return result, seconds


def _time(candidate: Candidate, problem: ConvProblem, x, w, best: float) -> float | None:
    """Median seconds of candidate's fwd+bwd on x, w; None if it failed (with a warning).

    The first forward and backward are a warm-up (scratch allocated, kernels compiled, pages
    first touched), timed only to drop a hopeless candidate early: one whose forward, or forward
    and backward, take over 2 * tuning.TUNE_GIVE_UP times the best median so far even when run a
    second time, warm, returns that time.
    """
    geom, groups, hopeless = problem.geom, problem.groups, 2 * tuning.TUNE_GIVE_UP * best
    try:
        (out, saved), forward = _warm(lambda: candidate.forward(x, w, None, geom, groups), hopeless)
        if forward > hopeless:  # spare the backward
            return forward
        # out stands in for dout: the same shape
        _, backward = _warm(lambda: candidate.backward(out, saved, w, False, geom, groups, True), hopeless - forward)
        if forward + backward > hopeless:
            return forward + backward
        samples = []
        for _ in range(tuning.TUNE_REPEATS):
            start = clock()
            out, saved = candidate.forward(x, w, None, geom, groups)
            candidate.backward(out, saved, w, False, geom, groups, True)
            samples.append(clock() - start)
            if samples[0] > tuning.TUNE_GIVE_UP * best:
                break
    except Exception as error:  # a registered kernel that cannot run here is skipped, not fatal
        warnings.warn(
            f"convolution candidate {candidate.name!r} failed, skipped: {error}", RuntimeWarning, stacklevel=4
        )
        return None
    return statistics.median(samples)


def _timed_round(pool: list[Candidate], problem: ConvProblem, x, w, times: dict[str, float]) -> None:
    """Time each of pool into times (seconds by name), each judged against the best so far."""
    for candidate in pool:
        seconds = _time(candidate, problem, x, w, min(times.values(), default=float("inf")))
        if seconds is not None:
            times[candidate.name] = seconds


def screened(pool: list[Candidate], problem: ConvProblem, x, w) -> tuple[list[Candidate], dict[str, float]]:
    """The candidates worth timing on the whole batch, and the others' times scaled up from a quarter of it.

    With tuning.TUNE_SCREEN_MIN_IMAGES images or more in that quarter, every candidate first runs
    on it; those over tuning.TUNE_GIVE_UP times the best there (the rules' pick always stays) are
    not timed on the whole batch. An engine's time grows about linearly with the images, so this
    spares the slow ones (Winograd on thin layers: seconds per cold run) most of their cost.
    """
    part = problem.x_shape[0] // 4
    if part < tuning.TUNE_SCREEN_MIN_IMAGES or len(pool) < 3:
        return pool, {}
    small: dict[str, float] = {}
    _timed_round(pool, problem._replace(x_shape=(part, *problem.x_shape[1:])), x[:part], w, small)
    best = min(small.values(), default=float("inf"))
    kept = [c for i, c in enumerate(pool) if i == 0 or small.get(c.name, float("inf")) <= tuning.TUNE_GIVE_UP * best]
    scale = problem.x_shape[0] / part
    return kept, {c.name: small[c.name] * scale for c in pool if c not in kept and c.name in small}


def measure(problem: ConvProblem, x: np.ndarray, w: np.ndarray) -> dict[str, float]:
    """Seconds of fwd+bwd for `problem` on x, w: of every candidate that survives screening (others:
    their screened time, scaled), then of the winner's chunk variants."""
    pool, times = screened(candidates_for(problem), problem, x, w)
    whole: dict[str, float] = {}
    _timed_round(pool, problem, x, w, whole)
    if not whole:  # every candidate failed: the rules (recorded as 0 ms, untimed)
        return {RULES.name: 0.0}
    _timed_round(_variants.get(min(whole, key=whole.get), []), problem, x, w, whole)
    return {**times, **whole}


def forget(ignore_file: bool = False) -> None:
    """Drop the plans held in memory (as a new process would); the wisdom files stay.

    ignore_file=True also skips reading the current wisdom file: every problem is measured
    again, and the new plans replace the file's (others in it are kept).
    """
    with _lock:
        _tables.clear()
        if ignore_file:
            _tables[str(wisdom.wisdom_path())] = {}


class Planned(NamedTuple):
    """One planned convolution call, as recording() collects them."""

    problem: ConvProblem
    key: str  # plan_key(problem)
    entry: dict  # {"choice": name, "ms": {name: ms}}
    measured: bool  # timed in this call (else read from the wisdom or planned earlier)
    seconds: float  # what the timing cost, 0 when not measured


@contextlib.contextmanager
def recording() -> Iterator[list[Planned]]:
    """Collect a Planned for every planned convolution call in the block (small layers are not planned)."""
    log: list = []
    _recorders.append(log)
    try:
        yield log
    finally:
        _recorders.remove(log)
