"""`numcnn bench ops --tuned`: every convolution engine against the planner's choice and PyTorch.

For each convolution of bench_ops (and the thin layers), float32 NCHW at
its batch: the fwd+bwd ms of each candidate engine (planner.candidates_for:
im2col channels-last and channels-first, Winograd F(2x2) and F(4x4) where
they apply, registered kernels), the rules' pick (NUMCNN_TUNE=0), the
planner's choice (read from the wisdom file or measured now, as a training
run would) and its time through conv2d_forward / conv2d_backward, and
PyTorch's. Interleaved, best of `repeat` (bench.ops's conventions).
"""

from __future__ import annotations

import time

import numpy as np

from .. import ops
from ..ops.engine import planner, tuning, wisdom
from ..ops.engine.candidates import ConvProblem, rules_pick
from ..ops.engine.geometry import window_geometry
from .ops import CASES, THIN_CASES, Case, settle, torch_functions

SHORT = {
    "im2col channels-last": "im2col CL",
    "im2col channels-first": "im2col CF",
    "winograd F(2x2)": "F(2x2)",
    "winograd F(4x4)": "F(4x4)",
}


def short(name: str) -> str:
    """A candidate's name shortened for the table, e.g. "im2col CL chx2"."""
    for long, brief in SHORT.items():
        name = name.replace(long, brief)
    return name.replace(", chunks ", " ch")


def time_case(case: Case, repeat: int, torch) -> dict:
    """Best fwd+bwd seconds of each candidate, of the planned conv2d, and of PyTorch; the names chosen."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(case.x_shape, dtype=np.float32)
    w = rng.standard_normal(case.w_shape, dtype=np.float32)
    b = rng.standard_normal(case.w_shape[0], dtype=np.float32)
    params = case.params
    geom = window_geometry(x.shape[2:], w.shape[2:], params["stride"], params["pad"], 1)
    problem = ConvProblem.of(x, w, geom, 1)
    start = time.perf_counter()
    out, cache = ops.conv2d_forward(x, w, b, **params)  # plans it, as the first step of a run would
    planning = time.perf_counter() - start
    dout = rng.standard_normal(out.shape, dtype=np.float32)
    runs = {}
    for c in planner.candidates_for(problem):
        runs[c.name] = lambda c=c: c.backward(dout, c.forward(x, w, b, geom, 1)[1], w, True, geom, 1, True)
    runs["tuned"] = lambda: ops.conv2d_backward(dout, ops.conv2d_forward(x, w, b, **params)[1])
    if torch is not None:
        runs["torch"] = torch_functions(case, (x, w, b), dout, torch)[1]
    times = {name: [] for name in runs}
    for fn in runs.values():  # warm-up: scratch allocated
        fn()
    for _ in range(repeat):
        for name, fn in runs.items():
            if name == "torch" or name == next(iter(runs)):
                settle()  # the other framework's idle threads stop spinning first
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    best = {name: min(t) for name, t in times.items()}
    choice = cache.engine or "rules"  # below the size threshold, or tuning off
    return {"best": best, "rules": rules_pick(problem), "choice": choice, "planning": planning}


def tuned_table(names, repeat: int, torch) -> int:
    """Print the `numcnn bench ops --tuned` table; returns 0.

    One row per convolution case (names: the cases to run; None: all of them): each
    engine's fwd+bwd ms, the rules' pick, the planner's choice and its time, PyTorch's
    time (torch: the module, or None) and the ratio.
    """
    cases = [c for c in CASES + THIN_CASES if c.kind == "conv" and (names is None or c.name in names)]
    print(f"wisdom: {wisdom.wisdom_path()} (tuning {'on' if planner.tuning_enabled() else 'off: NUMCNN_TUNE=0'})")
    print(f"float32 NCHW inputs; fwd+bwd ms, best of {repeat}; under {tuning.TUNE_MIN_MACS:.3g} MACs the rules run")
    engines = ["im2col channels-last", "im2col channels-first", "winograd F(2x2)", "winograd F(4x4)"]
    header = (
        f"{'op':<14} {'x':<18} "
        + " ".join(f"{SHORT[e]:>9}" for e in engines)
        + f" {'other':>14} | {'rules':>9} {'tuned':>16} {'ms':>7} {'torch':>7} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for case in cases:
        r = time_case(case, repeat, torch)
        best = r["best"]
        ms = lambda name: f"{best[name] * 1e3:9.1f}" if name in best else f"{'-':>9}"
        others = [n for n in best if n not in engines and n not in ("tuned", "torch")]
        other = ", ".join(f"{short(n)} {best[n] * 1e3:.1f}" for n in others) or "-"
        torch_ms = best.get("torch")
        ratio = f"{best['tuned'] / torch_ms:6.2f}" if torch_ms else f"{'-':>6}"
        print(
            f"{case.name:<14} {str(case.x_shape):<18} "
            + " ".join(ms(e) for e in engines)
            + f" {other:>14} | {SHORT.get(r['rules'], r['rules']):>9} {short(r['choice']):>16} "
            f"{best['tuned'] * 1e3:7.1f} {(torch_ms or 0) * 1e3:7.1f} {ratio}",
            flush=True,
        )
    return 0
