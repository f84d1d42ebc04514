import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from numcnn import models
from numcnn.io import CheckpointError, load_checkpoint
from numcnn.train.solver import Callback, Solver, TrainingDiverged
from solver_run import make_run, outcome

HERE = Path(__file__).parent


class Recorder:
    """A model that records which samples each step saw (X holds sample indices)."""

    def __init__(self, classes=3):
        self.params = {"w": np.zeros(1)}
        self.seen = []
        self.classes = classes

    def loss(self, X, y=None):
        if y is None:
            return np.zeros((len(X), self.classes))
        self.seen.append(X.ravel().astype(int).copy())
        return 1.0, {"w": np.zeros(1)}


def _index_data(n=40):
    X = np.arange(n, dtype=float)[:, None]
    return dict(X_train=X, y_train=np.zeros(n, int), X_val=X[:10], y_val=np.zeros(10, int))


def test_cs231n_arguments_histories_and_errors():
    model = models.TwoLayerNet(input_dim=4, hidden_dim=5, num_classes=3)
    rng = np.random.default_rng(0)
    data = dict(
        X_train=rng.standard_normal((50, 4)),
        y_train=rng.integers(0, 3, 50),
        X_val=rng.standard_normal((20, 4)),
        y_val=rng.integers(0, 3, 20),
    )
    solver = Solver(
        model,
        data,
        update_rule="sgd_momentum",
        optim_config={"learning_rate": 1e-2},
        lr_decay=0.5,
        batch_size=10,
        num_epochs=3,
        verbose=False,
    )
    solver.train()
    assert len(solver.loss_history) == 15
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == 4  # start + each epoch
    assert solver.best_val_acc == max(solver.val_acc_history)
    assert solver.optim_configs["W1"]["learning_rate"] == pytest.approx(1e-2 * 0.5**3)
    for name, value in solver.best_params.items():
        np.testing.assert_array_equal(model.params[name], value)  # best parameters restored
    with pytest.raises(ValueError, match=r"Unrecognized arguments \['learning_rate'\]"):
        Solver(model, data, learning_rate=1e-3)
    with pytest.raises(ValueError, match='Invalid update_rule "adamax"'):
        Solver(model, data, update_rule="adamax")
    with pytest.raises(ValueError, match=r"data is missing \['X_val', 'y_val'\]"):
        Solver(model, {"X_train": data["X_train"], "y_train": data["y_train"]})


def test_an_epoch_is_a_shuffled_pass_without_replacement():
    model = Recorder()
    Solver(model, _index_data(40), batch_size=8, num_epochs=2, seed=0, verbose=False).train()
    epochs = [np.concatenate(model.seen[:5]), np.concatenate(model.seen[5:])]
    for seen in epochs:
        assert sorted(seen) == list(range(40))
    assert not np.array_equal(epochs[0], epochs[1])


def test_the_assignments_sampling_is_np_random_choice():
    model = Recorder()
    np.random.seed(231)
    expected = np.random.choice(40, 8)
    np.random.seed(231)
    Solver(model, _index_data(40), batch_size=8, num_epochs=1, sampling="replacement", verbose=False).train()
    np.testing.assert_array_equal(model.seen[0], expected)


def test_a_seed_makes_a_run_reproducible_and_augment_gets_the_generator():
    calls = []

    def augment(X, rng):
        calls.append(isinstance(rng, np.random.Generator))
        return X + rng.standard_normal(X.shape).astype(X.dtype) * 0.01

    runs = []
    for _ in range(2):
        solver = make_run(None, 2, resume=False, augment=augment, checkpoint_dir=None)
        solver.train()
        runs.append(outcome(solver))
    for key in runs[0]:
        np.testing.assert_array_equal(runs[0][key], runs[1][key], err_msg=key)
    assert calls and all(calls)


def test_callbacks_and_early_stopping():
    events = []

    class Spy(Callback):
        def on_step_end(self, solver):
            events.append("step")

        def on_epoch_end(self, solver):
            events.append("epoch")
            if solver.epoch == 2:
                solver.stop_training = True

    model = Recorder()
    Solver(
        model,
        _index_data(16),
        batch_size=8,
        num_epochs=5,
        seed=0,
        verbose=False,
        callbacks=[Spy(), lambda s: events.append("plain")],
    ).train()
    assert events == ["step", "step", "epoch", "plain"] * 2
    solver = Solver(Recorder(), _index_data(16), batch_size=8, num_epochs=50, seed=0, verbose=False, early_stopping=3)
    solver.train()  # the best accuracy is the first evaluation's; three epochs do no better
    assert solver.epoch == 3


def test_the_time_budget_stops_training_on_the_solvers_clock(monkeypatch):
    """A fake clock advancing 10 ms per reading: the budget, not the machine's speed, decides."""
    import numcnn.train.solver as solver_module

    readings = iter(range(10**7))
    monkeypatch.setattr(solver_module.time, "perf_counter", lambda: next(readings) * 0.01)
    solver = Solver(Recorder(), _index_data(16), batch_size=8, num_epochs=10**6, seed=0, verbose=False, time_budget=1.0)
    solver.train()
    assert 10 < solver.step < 100  # about 1 s of fake time: a few readings per step


def test_metrics_log_has_one_json_line_per_epoch(tmp_path):
    solver = make_run(tmp_path, 3, resume=False)
    solver.train()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert set(records[0]) >= {"epoch", "step", "loss", "train_acc", "val_acc", "lr", "seconds", "images_per_sec"}
    # the rate each epoch trained at (lr_decay 0.9 applies after the epoch), not the next epoch's
    assert [r["lr"] for r in records] == pytest.approx([0.05, 0.05 * 0.9, 0.05 * 0.9**2])


def test_a_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    solver = make_run(tmp_path, 5, resume=False)
    real_loss = solver.model.loss

    def poisoned(X, y=None):
        if y is not None and solver.step == 14:  # epoch 3
            return float("nan"), {}
        return real_loss(X, y)

    solver.model.loss = poisoned
    with pytest.raises(TrainingDiverged, match=r"the loss is nan at step 15 \(epoch 3\).*last.npz is kept"):
        solver.train()
    assert load_checkpoint(tmp_path / "last.npz").state["epoch"] == 2
    assert solver.best_params


def test_four_epochs_equal_two_then_resumed_bit_for_bit(tmp_path):
    straight = make_run(tmp_path / "a", 4, resume=False)
    straight.train()
    first = make_run(tmp_path / "b", 2, resume=False)
    first.train()
    resumed = make_run(tmp_path / "b", 4, resume=True)
    assert resumed.epoch == 2
    resumed.train()
    expected, actual = outcome(straight), outcome(resumed)
    for key in expected:
        np.testing.assert_array_equal(actual[key], expected[key], err_msg=key)


def test_resuming_a_different_run_is_refused_before_the_weights_change(tmp_path):
    make_run(tmp_path, 1, resume=False).train()
    fresh = make_run(tmp_path / "other", 2, resume=False, batch_size=32)
    before = {k: v.copy() for k, v in fresh.model.params.items()}
    with pytest.raises(CheckpointError, match="batch_size 16 there, 32 here"):
        fresh.load(tmp_path / "last.npz")
    for name, value in fresh.model.params.items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    with pytest.raises(CheckpointError, match="batch_size 16 there, 32 here"):
        make_run(tmp_path, 2, resume=True, batch_size=32)


def test_a_fresh_run_in_a_used_folder_starts_a_fresh_metrics_log(tmp_path):
    make_run(tmp_path, 2, resume=False).train()
    make_run(tmp_path, 3, resume=False).train()
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]


def test_lr_decay_and_a_schedule_cannot_both_drive_the_learning_rate(tmp_path):
    from numcnn.train import schedules

    with pytest.raises(ValueError, match="lr_decay=0.9 and schedule both set the learning rate"):
        make_run(tmp_path, 1, resume=False, schedule=schedules.cosine(1))


def test_a_schedule_and_gradient_clipping_drive_the_updates():
    """The learning rate follows the schedule each step; clipping bounds every step's gradient norm."""
    from numcnn.train import schedules

    model = models.TwoLayerNet(input_dim=4, hidden_dim=5, num_classes=3, weight_scale=1.0)
    rng = np.random.default_rng(0)
    data = dict(
        X_train=rng.standard_normal((40, 4)) * 10,
        y_train=rng.integers(0, 3, 40),
        X_val=rng.standard_normal((10, 4)),
        y_val=rng.integers(0, 3, 10),
    )
    seen = []

    def sgd_recording(w, dw, config):
        config.setdefault("learning_rate", 0.01)
        seen.append((config["learning_rate"], float(np.sum(dw.astype(np.float64) ** 2))))
        return w - config["learning_rate"] * dw, config

    solver = Solver(
        model,
        data,
        update_rule=sgd_recording,
        optim_config={"learning_rate": 0.1},
        schedule=schedules.cosine(2),
        grad_clip=0.5,
        batch_size=10,
        num_epochs=2,
        verbose=False,
    )
    seen.clear()  # the Solver asks the rule for its default learning rate once
    solver.train()
    per_step = [seen[i : i + 4] for i in range(0, len(seen), 4)]  # W1, b1, W2, b2
    rates = [step[0][0] for step in per_step]
    assert rates == pytest.approx([0.1 * schedules.cosine(2)(s / 4) for s in range(8)])
    norms = [np.sqrt(sum(squares for _, squares in step)) for step in per_step]
    assert max(norms) == pytest.approx(0.5, rel=1e-5)  # the big inputs make every raw gradient larger


def test_the_logged_learning_rate_is_the_scheduled_one_even_when_the_first_weight_is_frozen(tmp_path):
    """airbench's first parameter is its frozen whitening conv; the log once showed its unused rate."""
    from numcnn.train import schedules

    model = models.TwoLayerNet(input_dim=4, hidden_dim=5, num_classes=3)
    rng = np.random.default_rng(0)
    data = dict(
        X_train=rng.standard_normal((40, 4)),
        y_train=rng.integers(0, 3, 40),
        X_val=rng.standard_normal((10, 4)),
        y_val=rng.integers(0, 3, 10),
    )
    solver = Solver(
        model,
        data,
        update_rule="sgd",
        optim_config={"learning_rate": 0.1},
        frozen=["W1"],
        schedule=schedules.one_cycle(2),
        batch_size=10,
        num_epochs=2,
        verbose=False,
        checkpoint_dir=tmp_path,
    )
    solver.train()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    last_step_of = {1: 3 / 4, 2: 7 / 4}  # each epoch's last update, in epochs (4 steps per epoch)
    assert [r["lr"] for r in records] == pytest.approx(
        [0.1 * schedules.one_cycle(2)(last_step_of[r["epoch"]]) for r in records]
    )
    assert records[-1]["lr"] < 0.02


def _start(directory, epochs, seconds_per_step):
    return subprocess.Popen(
        [sys.executable, str(HERE / "solver_run.py"), str(directory), str(epochs), str(seconds_per_step)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for(path, process, timeout=60):
    deadline = time.time() + timeout
    while not path.exists():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _expected(tmp_path, epochs):
    solver = make_run(tmp_path / "reference", epochs, resume=False)
    solver.train()
    return outcome(solver)


def _finish_and_compare(directory, epochs, expected):
    done = subprocess.run(
        [sys.executable, str(HERE / "solver_run.py"), str(directory), str(epochs)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    with np.load(directory / "final.npz") as final:
        for key in expected:
            np.testing.assert_array_equal(final[key], expected[key], err_msg=key)


def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_result(tmp_path):
    directory = tmp_path / "killed"
    process = _start(directory, 4, seconds_per_step=0.15)
    _wait_for(directory / "last.npz", process)
    time.sleep(0.4)  # well inside the next epoch, possibly inside a checkpoint write
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert load_checkpoint(directory / "last.npz").state["epoch"] >= 1  # loads whole, never broken
    _finish_and_compare(directory, 4, _expected(tmp_path, 4))


def test_ctrl_c_saves_mid_epoch_and_resume_gives_the_uninterrupted_result(tmp_path):
    directory = tmp_path / "interrupted"
    process = _start(directory, 4, seconds_per_step=0.15)
    _wait_for(directory / "last.npz", process)
    time.sleep(0.35)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0 and b"KeyboardInterrupt" in stderr
    state = load_checkpoint(directory / "last.npz").state
    assert state["step_in_epoch"] > 0  # saved at a step boundary inside an epoch
    _finish_and_compare(directory, 4, _expected(tmp_path, 4))


def test_checkpoint_name_writes_safe_checkpoints_each_epoch(tmp_path):
    solver = make_run(None, 2, resume=False, checkpoint_name=str(tmp_path / "run"))
    solver.train()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run_epoch_1.npz", "run_epoch_2.npz"]
    assert load_checkpoint(tmp_path / "run_epoch_2.npz").state["epoch"] == 2


# -- a killed or interrupted run loses nothing ------------------------------------------------
# Each kill is deterministic: solver_run.py's KILL argument ends the process with os._exit (no
# clean-up runs, as under SIGKILL) just before or after a chosen atomic rename.

TIMING = ("seconds", "images_per_sec")


def _metrics(directory):
    """The metrics log's lines without their timings (which differ from run to run)."""
    lines = (Path(directory) / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def _killed_at(directory, epochs, kill):
    killed = subprocess.run(
        [sys.executable, str(HERE / "solver_run.py"), str(directory), str(epochs), "0", kill],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == 137, killed.stderr


def _temporaries(directory):
    return sorted(p.name for p in Path(directory).glob(".*.tmp"))


@pytest.mark.parametrize("kill", ["before:last.npz:2", "after:last.npz:2"])
def test_a_kill_at_an_epoch_end_loses_no_metrics_line_and_leaves_no_temporary_file(tmp_path, kill):
    """Killed around epoch 2's checkpoint (once, writes were: last.npz, then the log line: a kill
    between them lost epoch 2's line for good), then resumed: the log is the uninterrupted one."""
    reference = make_run(tmp_path / "reference", 3, resume=False)
    reference.train()
    directory = tmp_path / "killed"
    _killed_at(directory, 3, kill)
    if kill.startswith("before"):
        assert _temporaries(directory)  # a kill mid-write leaves a checkpoint-sized file
    resumed = make_run(directory, 3, resume=True)
    resumed.train()
    assert _metrics(directory) == _metrics(tmp_path / "reference")
    assert [r["epoch"] for r in _metrics(directory)] == [1, 2, 3]
    assert _temporaries(directory) == []


def _best_publications(tmp_path, monkeypatch, epochs):
    """Train the reference run, counting how many times best.npz is published."""
    real_replace, count = os.replace, []
    monkeypatch.setattr(
        os, "replace", lambda a, b: (count.append(1) if Path(b).name == "best.npz" else None, real_replace(a, b))[1]
    )
    make_run(tmp_path / "reference", epochs, resume=False).train()
    monkeypatch.setattr(os, "replace", real_replace)
    return len(count)


def test_a_kill_before_the_last_best_npz_is_written_is_repaired_on_resume(tmp_path, monkeypatch):
    """Once, resume kept an older best.npz for good while the run's best_val_acc named a newer one."""
    publications = _best_publications(tmp_path, monkeypatch, 3)
    directory = tmp_path / "killed"
    _killed_at(directory, 3, f"before:best.npz:{publications}")  # the last one: nothing later rewrites it
    resumed = make_run(directory, 3, resume=True)
    resumed.train()
    expected, best = load_checkpoint(tmp_path / "reference" / "best.npz"), load_checkpoint(directory / "best.npz")
    assert best.state["best_val_acc"] == resumed.best_val_acc == expected.state["best_val_acc"]
    for key, value in expected.model_arrays.items():
        np.testing.assert_array_equal(best.model_arrays[key], value, err_msg=key)
    for key, value in resumed.model.state_arrays().items():  # restore_best left the best weights in the model
        np.testing.assert_array_equal(best.model_arrays[key], value, err_msg=key)


def test_a_first_evaluation_never_beaten_is_written_as_best_npz(tmp_path):
    """Constant predictions: the evaluation after step 1 is the best; best.npz was never written."""
    solver = Solver(
        Recorder(), _index_data(16), batch_size=8, num_epochs=2, seed=0, verbose=False, checkpoint_dir=tmp_path
    )
    solver.train()
    assert solver.val_acc_history == [1.0, 1.0, 1.0]
    assert load_checkpoint(tmp_path / "best.npz").state["best_val_acc"] == 1.0


def test_resume_drops_a_torn_last_metrics_line_and_says_so(tmp_path, capsys):
    """A kill or a full disk mid-line once made every later resume die with a JSONDecodeError."""
    make_run(tmp_path, 2, resume=False).train()
    with open(tmp_path / "metrics.jsonl", "a") as log:
        log.write('{"epoch": 3, "step": 18, "lo')
    make_run(tmp_path, 3, resume=True, verbose=True).train()
    assert "dropped 1 torn line(s)" in capsys.readouterr().err
    assert [r["epoch"] for r in _metrics(tmp_path)] == [1, 2, 3]


class InterruptAt(Callback):
    """Ctrl-C, delivered to this process after the given step."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, solver):
        if solver.step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_mid_epoch_then_resume_logs_the_whole_epochs_loss(tmp_path):
    """Once, the resumed epoch's loss averaged only the steps after the resume."""
    make_run(tmp_path / "reference", 3, resume=False).train()
    directory = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt, match="interrupted at step 8"):
        make_run(directory, 3, resume=False, callbacks=[InterruptAt(8)]).train()  # 6 steps an epoch
    partial = json.loads((directory / "metrics.jsonl").read_text().splitlines()[-1])
    assert partial["partial"] is True and partial["epoch"] == pytest.approx(1 + 2 / 6, abs=1e-4)
    make_run(directory, 3, resume=True).train()
    assert _metrics(directory) == _metrics(tmp_path / "reference")


class FakeClock(Callback):
    """A clock that moves one second per step, whatever the machine's speed."""

    def __init__(self, monkeypatch):
        import numcnn.train.solver as solver_module

        self.now = 0.0
        monkeypatch.setattr(solver_module.time, "perf_counter", lambda: self.now)

    def on_step_end(self, solver):
        self.now += 1.0


def test_a_time_budget_inside_the_first_epoch_keeps_what_was_trained(tmp_path, monkeypatch):
    """Once, a budget that ended the first epoch early restored the weights evaluated after the
    first step, and wrote neither best.npz nor a metrics line."""
    solver = make_run(
        tmp_path, 1, resume=False, time_budget=2.5, callbacks=[FakeClock(monkeypatch)], restore_best=False
    )
    solver.train()
    assert (solver.step, solver.epoch) == (3, 0)
    assert len(solver.val_acc_history) == 2  # after step 1, and after step 3: what was trained
    (record,) = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert record["partial"] is True and record["step"] == 3 and record["epoch"] == 0.5
    assert record["val_acc"] == solver.val_acc_history[-1]
    assert load_checkpoint(tmp_path / "best.npz").state["best_val_acc"] == solver.best_val_acc
    assert load_checkpoint(tmp_path / "last.npz").state["step"] == 3
    monkeypatch.undo()
    resumed = make_run(tmp_path, 2, resume=True)  # the extra evaluation changes nothing on resume
    resumed.train()
    straight = make_run(tmp_path / "straight", 2, resume=False)
    straight.train()
    expected, actual = outcome(straight), outcome(resumed)
    for key in expected:
        np.testing.assert_array_equal(actual[key], expected[key], err_msg=key)
    assert _metrics(tmp_path) == _metrics(tmp_path / "straight")


@pytest.mark.parametrize(
    "keyword, value, message",
    [
        ("lr_decay", -0.5, "lr_decay must be a finite number above 0, got -0.5"),
        ("lr_decay", float("nan"), "lr_decay must be a finite number above 0, got nan"),
        ("batch_size", 0, "batch_size must be a positive int, got 0"),
        ("batch_size", 2.5, "batch_size must be a positive int, got 2.5"),
        ("num_epochs", -1, "num_epochs must be an int of at least 0, got -1"),
        ("print_every", 0, "print_every must be a positive int, got 0"),
        ("num_train_samples", 0, "num_train_samples must be a positive int or None, got 0"),
        ("num_val_samples", -5, "num_val_samples must be a positive int or None, got -5"),
        ("early_stopping", 0, "early_stopping must be a positive int or None, got 0"),
        ("seed", -1, "seed must be an int of at least 0 or None, got -1"),
        ("time_budget", float("inf"), "time_budget must be a finite number above 0 or None, got inf"),
        ("grad_clip", -1.0, "grad_clip must be a finite number above 0 or None, got -1.0"),
        ("optim_config", {"learning_rate": -1e-3}, "optim_config['learning_rate'] must be above 0, got -0.001"),
        ("optim_config", {"learning_rate": float("inf")}, "optim_config['learning_rate'] must be finite, got inf"),
        ("optim_config", {"momentum": 1.5}, "optim_config['momentum'] must be in [0, 1), got 1.5"),
        ("optim_config", {"weight_decay": -1.0}, "optim_config['weight_decay'] must be at least 0, got -1.0"),
        ("lr_scale", {"w": -2.0}, "lr_scale['w'] must be a finite number of at least 0, got -2.0"),
    ],
)
def test_numeric_keywords_a_run_cannot_use_are_refused_by_name(keyword, value, message):
    with pytest.raises(ValueError) as refused:
        Solver(Recorder(), _index_data(16), verbose=False, **{keyword: value})
    assert str(refused.value) == message


@pytest.mark.slow
def test_random_kills_then_resume_lose_nothing(tmp_path):
    """Killed at random moments five times (inside steps, checkpoint writes, log appends), then
    finished: weights, histories, the log and best.npz are the uninterrupted run's."""
    expected = _expected(tmp_path, 4)
    reference_best = load_checkpoint(tmp_path / "reference" / "best.npz")
    directory, rng = tmp_path / "killed", np.random.default_rng(7)
    for _ in range(5):
        process = _start(directory, 4, seconds_per_step=0.05)
        time.sleep(1.0 + rng.uniform(0, 1.5))  # past the start-up, somewhere in the run
        process.send_signal(signal.SIGKILL)
        process.wait()
    _finish_and_compare(directory, 4, expected)
    assert _metrics(directory) == _metrics(tmp_path / "reference")
    best = load_checkpoint(directory / "best.npz")
    for key, value in reference_best.model_arrays.items():
        np.testing.assert_array_equal(best.model_arrays[key], value, err_msg=key)
    assert _temporaries(directory) == []


@pytest.mark.parametrize("metrics_log", [None, False])
def test_a_checkpoint_of_an_earlier_version_without_the_logs_lines_resumes(tmp_path, monkeypatch, metrics_log):
    """Checkpoints written before the log's lines and the best step were kept: the log keeps its
    own lines up to the checkpoint's epoch (or there is no log), and the run goes on."""
    first = make_run(tmp_path, 2, resume=False, metrics_log=metrics_log)
    full_state = Solver.state_dict
    monkeypatch.setattr(
        Solver,
        "state_dict",
        lambda self: {k: v for k, v in full_state(self).items() if k not in ("metrics_records", "best_step")},
    )
    first.train()
    monkeypatch.undo()
    assert "metrics_records" not in load_checkpoint(tmp_path / "last.npz").state
    resumed = make_run(tmp_path, 3, resume=True, metrics_log=metrics_log)
    resumed.train()
    assert resumed.epoch == 3 and load_checkpoint(tmp_path / "best.npz").state["best_val_acc"] == resumed.best_val_acc
    if metrics_log is None:
        assert [r["epoch"] for r in _metrics(tmp_path)] == [1, 2, 3]
