"""The planner: engines chosen by measurement, kept in a wisdom file per machine.

Timings are never asserted: a fake clock (planner.clock) counts how often
the planner times, and a fake measure steers which candidate wins.
"""

import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_close, channels_last
from numcnn import models, nn
from numcnn.ops import conv2d_backward, conv2d_backward_naive, conv2d_forward, conv2d_forward_naive, engine
from numcnn.ops.engine import candidates, geometry, planner, tuning, wisdom
from numcnn.ops.engine.layout import is_channels_last
from numcnn.train import Solver

SHAPES = {  # x shape, w shape, stride, pad, dilation, groups
    "3x3 winograd-shaped": ((2, 4, 7, 7), (6, 4, 3, 3), 1, 1, 1, 1),
    "3x3 16 channels": ((2, 16, 6, 5), (16, 16, 3, 3), 1, 1, 1, 1),
    "stride 2": ((3, 3, 9, 8), (5, 3, 3, 3), 2, 1, 1, 1),
    "groups 2, uneven pad": ((2, 6, 8, 8), (4, 3, 3, 3), 1, (1, 0), 1, 2),
    "dilation 2, 2x3 kernel": ((2, 4, 9, 7), (3, 4, 2, 3), 1, 2, 2, 1),
    "7x7 stem": ((2, 3, 11, 11), (4, 3, 7, 7), 1, 3, 1, 1),
}


@pytest.fixture
def fake_clock(monkeypatch):
    """A clock that ticks 1 s per reading; returns the readings so far (a counter)."""
    readings = itertools.count()
    seen = []

    def clock():
        seen.append(next(readings))
        return float(seen[-1])

    monkeypatch.setattr(planner, "clock", clock)
    planner.forget()
    yield seen
    planner.forget()


@pytest.fixture
def tune_small(monkeypatch, fake_clock):
    """Plan every layer, however small (tests use tiny arrays)."""
    monkeypatch.setattr(tuning, "TUNE_MIN_MACS", 0)
    monkeypatch.delenv("NUMCNN_TUNE", raising=False)
    return fake_clock


def _arrays(x_shape, w_shape, rng, layout_last=False):
    x = rng.standard_normal(x_shape)
    return (channels_last(x) if layout_last else x), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])


def _all_candidates(problem):
    found = planner.candidates_for(problem)
    scaled = [v for c in found for v in candidates.chunk_variants(tuning.TUNE_CHUNK_SCALES).get(c.name, [])]
    return found + scaled


@pytest.mark.parametrize("name", SHAPES)
@pytest.mark.parametrize("layout_last", [False, True], ids=["nchw", "nhwc"])
def test_every_candidate_matches_the_loop_version(name, layout_last, monkeypatch):
    monkeypatch.setattr(tuning, "CHUNK_BYTES", 4096)  # several chunks even on these tiny arrays
    x_shape, w_shape, stride, pad, dilation, groups = SHAPES[name]
    x, w, b = _arrays(x_shape, w_shape, np.random.default_rng(0), layout_last)
    out_ref, cache_ref = conv2d_forward_naive(x, w, b, stride, pad, dilation, groups)
    dout = np.random.default_rng(1).standard_normal(out_ref.shape)
    dx_ref, dw_ref, db_ref = conv2d_backward_naive(dout, cache_ref)
    geom = geometry.window_geometry(x_shape[2:], w_shape[2:], stride, pad, dilation)
    found = _all_candidates(candidates.ConvProblem.of(x, w, geom, groups))
    names = {c.name for c in found}
    assert {"im2col channels-last", "im2col channels-first"} <= names
    assert ("winograd F(4x4)" in names) == (w_shape[2:] == (3, 3) and stride == 1 and dilation == 1 and groups == 1)
    for candidate in found:
        out, saved = candidate.forward(x, w, b, geom, groups)
        np.testing.assert_array_equal(saved, x)  # the cache keeps x's values, whatever its memory
        dx, dw, db = candidate.backward(dout, saved, w, True, geom, groups, True)
        for got, want, what in ((out, out_ref, "out"), (dx, dx_ref, "dx"), (dw, dw_ref, "dw"), (db, db_ref, "db")):
            assert_close(got, want, rtol=1e-9, atol=1e-10, name=f"{candidate.name}: {what}")
        assert candidate.backward(dout, saved, w, False, geom, groups, False)[::2] == (None, None)


def _net_losses(steps=3):
    nn.manual_seed(0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((24, 3, 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, 24)
    model = models.Classifier(models.small_cnn(num_classes=4, in_channels=3, width=8))
    data = {"X_train": X[:16], "y_train": y[:16], "X_val": X[16:], "y_val": y[16:]}
    solver = Solver(model, data, batch_size=8, num_epochs=1, seed=0, verbose=False, update_rule="sgd")
    solver.train()
    return np.array(solver.loss_history)


def test_a_tuned_run_and_an_untuned_one_agree_within_rounding(tune_small, monkeypatch):
    # steer every layer away from the rules' pick, so the tuned run really runs other engines
    def measure(problem, x, w):
        first = candidates.rules_pick(problem)
        return {c.name: 9.0 if c.name == first else 1.0 + i for i, c in enumerate(planner.candidates_for(problem))}

    monkeypatch.setattr(planner, "measure", measure)
    with planner.recording() as log:
        tuned = _net_losses()
    assert log and all(entry["choice"] != candidates.rules_pick(problem) for problem, _, entry, *_ in log)
    monkeypatch.setenv("NUMCNN_TUNE", "0")
    untuned = _net_losses()
    assert len(tuned) == len(untuned) == 2
    np.testing.assert_allclose(tuned, untuned, rtol=1e-5)


def _conv(shape=((4, 16, 6, 6), (16, 16, 3, 3))):
    x, w, b = _arrays(*shape, np.random.default_rng(0))
    return conv2d_forward(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), pad=1)


def test_the_wisdom_file_is_written_then_read_back_without_timing(tune_small):
    out, cache = _conv()
    timed = len(tune_small)
    assert timed > 0 and cache.engine == candidates.rules_pick(
        candidates.ConvProblem.of(cache.x, cache.w, cache.geom, 1)
    )
    content = json.loads(wisdom.wisdom_path().read_text())
    assert content["machine"] == wisdom.machine() and len(content["plans"]) == 1
    ((key, entry),) = content["plans"].items()
    assert key.startswith("conv2d n<=4 c16 6x6 f16 k3x3 s1,1 p1,1,1,1 d1,1 g1 float32 nchw")
    assert entry["choice"] == cache.engine and set(entry["ms"]) >= {"im2col channels-last", "winograd F(2x2)"}
    planner.forget()  # as a new process would
    again, cache2 = _conv()
    assert len(tune_small) == timed and cache2.engine == cache.engine  # read, not re-timed
    np.testing.assert_array_equal(again, out)
    conv2d_backward(np.ones_like(out), cache2)  # the backward runs the same candidate
    assert len(tune_small) == timed


def test_a_foreign_wisdom_file_is_ignored_with_a_warning_and_rewritten(tune_small):
    path = wisdom.wisdom_path()
    path.parent.mkdir(parents=True)
    other = {**wisdom.machine(), "blas": "mkl 2024 SkylakeX"}
    key = planner.plan_key(candidates.ConvProblem.of(*_probe_arrays()))
    foreign = {
        "format": wisdom.FORMAT,
        "version": 1,
        "machine": other,
        "plans": {key: {"choice": "winograd F(2x2)", "ms": {}}},
    }
    path.write_text(json.dumps(foreign))
    with pytest.warns(
        RuntimeWarning, match="wisdom file .*: foreign: written for .*mkl 2024.*; ignored, it will be rewritten"
    ):
        _conv()
    assert len(tune_small) > 0  # measured here, not taken from the other machine
    content = json.loads(path.read_text())
    assert content["machine"] == wisdom.machine() and content["plans"][key]["choice"] != "winograd F(2x2)"


def test_wisdom_measured_on_other_engine_code_is_ignored(tune_small, tmp_path):
    path = wisdom.wisdom_path()
    path.parent.mkdir(parents=True)
    key = planner.plan_key(candidates.ConvProblem.of(*_probe_arrays()))
    stale = {**wisdom.machine(), "engines": "0" * 16}  # same machine, yesterday's kernels
    plans = {key: {"choice": "winograd F(2x2)", "ms": {}}}
    path.write_text(json.dumps({"format": wisdom.FORMAT, "version": 1, "machine": stale, "plans": plans}))
    with pytest.warns(RuntimeWarning, match="foreign: written for .*'engines': '0000"):
        _conv()
    assert len(tune_small) > 0
    # the hash follows the sources: a copy of the engine's files hashes the same, one changed byte not
    copy = tmp_path / "engine"
    shutil.copytree(Path(wisdom.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert wisdom.engines_hash(copy) == wisdom.machine()["engines"]
    kernels = copy / "direct_kernels.py"
    kernels.write_text(kernels.read_text().replace("fastmath=CONTRACT", "fastmath=True", 1))
    assert wisdom.engines_hash(copy) != wisdom.machine()["engines"]


@contextlib.contextmanager
def registered(name, forward, backward, applies=candidates.always):
    """A candidate in the planner while the block runs, removed after it whatever happens."""
    planner.register_candidate(name, applies, forward, backward)
    try:
        yield
    finally:
        planner.unregister_candidate(name)


def _probe_arrays():
    x, w, _ = _arrays((4, 16, 6, 6), (16, 16, 3, 3), np.random.default_rng(0))
    return x.astype(np.float32), w.astype(np.float32), geometry.window_geometry((6, 6), (3, 3), 1, 1, 1), 1


@pytest.mark.parametrize(
    "text, problem",
    [
        ('{"format": "numcnn wisdom", "version": 1, "machine": {', "not JSON"),
        ("[1, 2]", "not a numcnn wisdom file"),
        (None, "its plans are not"),  # right machine, wrong types
    ],
    ids=["truncated", "a list", "wrong types"],
)
def test_a_damaged_wisdom_file_is_ignored_with_a_warning(tune_small, text, problem):
    path = wisdom.wisdom_path()
    path.parent.mkdir(parents=True)
    if text is None:
        plans = {"k": {"choice": 3, "ms": {"a": "fast"}}}
        text = json.dumps({"format": wisdom.FORMAT, "version": 1, "machine": wisdom.machine(), "plans": plans})
    path.write_text(text)
    with pytest.warns(RuntimeWarning, match=f"damaged: {problem}"):
        out, cache = _conv()
    assert len(tune_small) > 0 and np.isfinite(out).all()
    assert len(json.loads(path.read_text())["plans"]) == 1  # rewritten whole


def test_tune_0_keeps_the_rules_times_nothing_and_writes_no_file(tune_small, monkeypatch):
    monkeypatch.setenv("NUMCNN_TUNE", "0")
    out, cache = _conv()
    assert tune_small == [] and cache.engine == "" and not wisdom.wisdom_path().exists()
    monkeypatch.delenv("NUMCNN_TUNE")
    tuned, _ = _conv()
    assert_close(tuned, out, rtol=1e-5, atol=1e-5)


def test_a_forced_engine_and_a_small_layer_are_not_timed(fake_clock, monkeypatch):
    monkeypatch.delenv("NUMCNN_TUNE", raising=False)
    _conv()  # below tuning.TUNE_MIN_MACS
    monkeypatch.setattr(tuning, "TUNE_MIN_MACS", 0)
    with engine.use("im2col"):
        _, cache = _conv()
    assert fake_clock == [] and cache.engine == "" and not wisdom.wisdom_path().exists()


def test_the_default_training_run_times_nothing(fake_clock, monkeypatch):
    """numcnn train's defaults (smallcnn on 8x8 digits, batch 64): every layer under the threshold."""
    monkeypatch.delenv("NUMCNN_TUNE", raising=False)
    from numcnn.train.build import build_model

    model = build_model("smallcnn", (1, 8, 8), 10)
    X = np.random.default_rng(0).standard_normal((64, 1, 8, 8)).astype(np.float32)
    with planner.recording() as log:
        model.loss(X, np.zeros(64, int))
    assert log == [] and fake_clock == [] and not wisdom.wisdom_path().exists()
    assert 64 * 8 * 8 * 32 * 32 * 9 < tuning.TUNE_MIN_MACS < 128 * 32 * 32 * 16 * 16 * 9  # its widest; CIFAR's thinnest


def test_a_registered_candidate_is_timed_chosen_and_run_both_ways(tune_small, monkeypatch):
    calls = []
    pad = lambda geom: (geom.pad[0], geom.pad[2])  # symmetric padding in this test

    def forward(x, w, b, geom, groups):
        calls.append("forward")
        return conv2d_forward_naive(x, w, b, geom.stride, pad(geom), geom.dilation, groups)[0], x

    def backward(dout, x, w, with_bias, geom, groups, input_grad):
        calls.append("backward")
        b = np.zeros(w.shape[0], x.dtype) if with_bias else None
        cache = conv2d_forward_naive(x, w, b, geom.stride, pad(geom), geom.dilation, groups)[1]
        dx, dw, db = conv2d_backward_naive(dout, cache)
        return (dx if input_grad else None), dw, db

    with registered("loops", forward, backward, applies=lambda problem: problem.x_shape[0] <= 4):
        monkeypatch.setattr(
            planner,
            "measure",
            lambda problem, x, w: {c.name: 0.5 if c.name == "loops" else 1.0 for c in planner.candidates_for(problem)},
        )
        out, cache = _conv()
        assert cache.engine == "loops" and calls == ["forward"]
        dx, dw, db = conv2d_backward(np.ones_like(out), cache)
        assert calls == ["forward", "backward"]
        with engine.use("im2col"):
            ref_out, ref_cache = _conv()
            ref = conv2d_backward(np.ones_like(out), ref_cache)
        for got, want in zip((out, dx, dw, db), (ref_out, *ref)):
            assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert "loops" not in {c.name for c in planner.candidates_for(candidates.ConvProblem.of(*_probe_arrays()))}


def test_register_candidate_refuses_a_built_in_name():
    with pytest.raises(ValueError, match="name must be a new non-empty string"):
        planner.register_candidate("im2col channels-last", lambda p: True, None, None)


def test_bench_tune_fills_the_wisdom_ahead_of_a_run(tmp_path):
    env = {**os.environ, "NUMCNN_DATA": str(tmp_path / "data"), "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    env.pop("NUMCNN_TUNE", None)
    run = lambda *extra: subprocess.run(
        [sys.executable, "-m", "numcnn.cli", "bench", "tune", "--model", "threelayer", "--batch-size", "8", *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    first = run("--min-macs", "0")
    assert first.returncode == 0, first.stderr
    path = tmp_path / "data" / "wisdom.json"
    assert f"wisdom: {path}" in first.stdout
    plans = json.loads(path.read_text())["plans"]
    assert len(plans) == 1 and next(iter(plans)).startswith("conv2d n<=8 c3 32x32 f32 k7x7")
    choice = next(iter(plans.values()))["choice"]
    assert f"-> {choice}" in first.stdout and "measured now" in first.stdout
    second = run("--min-macs", "0")
    assert second.returncode == 0 and "from the wisdom file" in second.stdout and f"-> {choice}" in second.stdout
    small = run()  # at the default threshold, batch 8 is too small to plan
    assert small.returncode == 0 and "below the size threshold" in small.stdout


def test_bench_ops_tuned_prints_each_engine_and_the_choice(capsys):
    from numcnn.bench.ops import main

    assert main(["--tuned", "--cases", "cs231n conv", "--repeat", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert f"wisdom: {wisdom.wisdom_path()} (tuning on)" in out and "im2col CF" in out
    row = next(line for line in out.splitlines() if line.startswith("cs231n conv"))
    engines, choice = row.split("|")
    assert len(engines.split()) == 2 + 4 + 4 + 1  # name (2 words), shape (4), 4 engines, other
    assert engines.split()[-3:] == ["-", "-", "-"]  # stride 2: no Winograd, no other kernel
    assert choice.split()[:2] == ["im2col", "CF"] and choice.split()[2] == "rules"  # 5.4e6 MACs: the rules


def test_a_hopeless_candidate_is_dropped_after_its_forward_cold_and_warm(tune_small, monkeypatch):
    offset, calls = [0.0], []
    ticking = planner.clock
    monkeypatch.setattr(planner, "clock", lambda: ticking() + offset[0])

    def forward(x, w, b, geom, groups):
        offset[0] += 100.0  # this kernel's forward "takes" 100 s
        return candidates.IM2COL_CL.forward(x, w, b, geom, groups)

    def backward(*args):
        calls.append("backward")
        return candidates.IM2COL_CL.backward(*args)

    with registered("slow", forward, backward), planner.recording() as log:
        _conv()
    ((_, _, entry, measured, _),) = log
    assert measured and entry["choice"] != "slow" and entry["ms"]["slow"] >= 100e3 and calls == []


def test_the_direct_convolutions_adapter_runs_its_three_sums(monkeypatch):
    """candidates.direct_candidate over a stand-in for engine/direct.py (im2col's sums behind its API)."""
    from numcnn.ops.engine import im2col

    seen = []
    stand_in = types.SimpleNamespace(
        available=lambda: True,
        direct_conv_applies=lambda geom, groups, C, F, dtype: groups == 1 and F % 8 == 0,
        conv_output=lambda x, w, geom: seen.append(is_channels_last(x)) or im2col.conv_output(x, w, geom, 1),
        conv_input_grad=lambda dout, w, geom: im2col.conv_input_grad(dout, w, geom, 1, w.shape[1]),
        conv_weight_grad=lambda x, dout, geom: im2col.conv_weight_grad(x, dout, geom, 1, (dout.shape[1], *w.shape[1:])),
    )
    candidate = candidates.direct_candidate(stand_in)
    x, w, b = _arrays((2, 4, 6, 6), (8, 4, 3, 3), np.random.default_rng(0))
    geom = geometry.window_geometry((6, 6), (3, 3), 1, 1, 1)
    assert candidate.name == "direct" and candidate.applies(candidates.ConvProblem.of(x, w, geom, 1))
    assert not candidate.applies(candidates.ConvProblem.of(x, w[:6], geom, 1))
    out, saved = candidate.forward(x, w, b, geom, 1)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    got = (out, *candidate.backward(dout, saved, w, True, geom, 1, True))
    ref_out, ref_cache = conv2d_forward_naive(x, w, b, 1, 1)
    for a, want in zip(got, (ref_out, *conv2d_backward_naive(dout, ref_cache))):
        assert_close(a, want, rtol=1e-9, atol=1e-10)
    assert seen == [True]  # the kernels are handed channels-last images
    assert candidates.direct_candidate(types.SimpleNamespace(**{**vars(stand_in), "available": lambda: False})) is None
    assert candidates.direct_candidate(types.SimpleNamespace(available=lambda: True)) is None


def test_a_kernels_first_call_compile_does_not_rule_it_out(tune_small, monkeypatch):
    offset, calls = [0.0], []
    ticking = planner.clock
    monkeypatch.setattr(planner, "clock", lambda: ticking() + offset[0])

    def forward(x, w, b, geom, groups):
        offset[0] += 100.0 if not calls else 0.0  # the first call compiles: 100 s
        calls.append("forward")
        return candidates.IM2COL_CL.forward(x, w, b, geom, groups)

    def backward(*args):
        calls.append("backward")
        return candidates.IM2COL_CL.backward(*args)

    with registered("compiled", forward, backward), planner.recording() as log:
        _conv()
    ((_, _, entry, *_),) = log
    assert entry["ms"]["compiled"] < 10e3  # timed warm, like the others
    assert calls.count("forward") == 2 + tuning.TUNE_REPEATS and calls.count("backward") == 1 + tuning.TUNE_REPEATS


def test_candidates_far_behind_on_a_quarter_batch_are_not_timed_on_the_whole(tune_small, monkeypatch):
    offset, batches = [0.0], []
    ticking = planner.clock
    monkeypatch.setattr(planner, "clock", lambda: ticking() + offset[0])

    def forward(x, w, b, geom, groups):
        offset[0] += 100.0  # always far behind
        batches.append(x.shape[0])
        return candidates.IM2COL_CL.forward(x, w, b, geom, groups)

    with registered("slowpoke", forward, candidates.IM2COL_CL.backward), planner.recording() as log:
        _conv(((64, 16, 6, 6), (16, 16, 3, 3)))  # a quarter: 16 images, tuning.TUNE_SCREEN_MIN_IMAGES
    ((_, _, entry, *_),) = log
    assert set(batches) == {16} and entry["choice"] != "slowpoke"
    assert entry["ms"]["slowpoke"] >= 4 * 100e3  # its quarter-batch time, scaled to the batch
    assert {"im2col channels-last", "im2col channels-first", "winograd F(2x2)"} <= set(entry["ms"])
