"""`numcnn train --workers N|auto`: end to end on the digits, and its refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from numcnn import cli
from numcnn.io import load_checkpoint
from numcnn.train import run as run_module
from numcnn.train.config import TrainConfig, UserError
from numcnn.train.parallel import auto

SRC = str(Path(__file__).resolve().parents[2] / "src")
# threelayer has neither batch norm nor dropout: it splits with or without shard-aware layers
ARGS = ["train", "--model", "threelayer", "--hidden", "32", "--width", "8", "--epochs", "1", "--quiet"]


def _losses(folder):
    return [json.loads(line)["loss"] for line in (folder / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_workers_2_trains_the_digits_as_one_worker_does(tmp_path, capsys):
    assert cli.main([*ARGS, "--workers", "1", "--out", str(tmp_path / "one")]) == 0
    assert cli.main([*ARGS, "--workers", "2", "--out", str(tmp_path / "two")]) == 0
    assert "images/s in training steps, 2 workers)" in capsys.readouterr().out
    one = json.loads((tmp_path / "one" / "summary.json").read_text())
    two = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert (one["workers"], two["workers"]) == (1, 2)
    assert two["steps"] == one["steps"] and abs(two["test_acc"] - one["test_acc"]) <= 0.01
    np.testing.assert_allclose(_losses(tmp_path / "two"), _losses(tmp_path / "one"), rtol=1e-4)


def test_workers_2_end_to_end_the_header_and_summary_say_so(tmp_path, capsys):
    args = [a for a in ARGS if a != "--quiet"]
    assert cli.main([*args, "--workers", "2", "--out", str(tmp_path / "r")]) == 0
    assert "(training on 2 workers: --workers)" in capsys.readouterr().out
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["workers"] == 2


def test_auto_measures_and_says_what_it_chose(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(auto, "available_cores", lambda: 2)
    args = [a for a in ARGS if a != "--quiet"]
    assert cli.main([*args, "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    workers = json.loads((tmp_path / "r" / "summary.json").read_text())["workers"]
    assert f"(training on {workers} worker" in out and "ms on one process" in out and workers in (1, 2)


def test_auto_falls_back_to_one_worker_for_a_model_that_cannot_be_split(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(auto, "available_cores", lambda: 2)
    monkeypatch.setattr(auto, "unsplittable_reason", lambda model: "its layer x does not support batch sharding")
    args = [a for a in ARGS if a != "--quiet"]
    assert cli.main([*args, "--out", str(tmp_path / "r")]) == 0
    assert "(training on 1 worker: auto on " in capsys.readouterr().out
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["workers"] == 1


def test_explicit_workers_for_a_model_that_cannot_be_split_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setattr(run_module, "unsplittable_reason", lambda model: "its layer x does not support batch sharding")
    with pytest.raises(UserError, match="--workers 2: threelayer cannot be split over workers: its layer x"):
        run_module.prepare_run(TrainConfig(model="threelayer", epochs=1, workers=2, quiet=True), tmp_path)


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", ""])
def test_bad_workers_values_exit_2_naming_the_option(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--workers", value, "--out", str(tmp_path / "r")])
    assert exit_.value.code == 2
    assert "--workers takes a positive whole number or 'auto'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_train_config_refuses_bad_workers():
    for value in (0, -2, 1.5, "many", True):
        with pytest.raises(UserError, match="--workers must be a positive whole number or 'auto'"):
            TrainConfig(workers=value)
    assert TrainConfig().workers == "auto" and "workers" not in TrainConfig().options()


def _children(pid: int) -> list[int]:
    """The processes whose parent is pid (a /proc scan)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


@pytest.mark.slow
def test_a_worker_killed_mid_run_stops_the_cli_with_one_line_and_resume_completes(tmp_path):
    out = tmp_path / "r"
    command = [sys.executable, "-m", "numcnn", *ARGS, "--epochs", "4", "--workers", "2", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": SRC}
    run = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the first epoch's checkpoint is written before its metrics line
    workers = _children(run.pid)
    assert workers, "no worker process found"
    os.kill(workers[0], signal.SIGKILL)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 1 and "Traceback" not in stderr
    assert f"worker 1 (pid {workers[0]}) died (signal 9, SIGKILL)" in stderr
    assert load_checkpoint(out / "last.npz").state["step"] >= 20
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 4 and summary["workers"] == 2


def test_auto_on_resume_keeps_the_workers_the_run_recorded(tmp_path, monkeypatch):
    out = tmp_path / "r"
    assert cli.main([*ARGS, "--workers", "2", "--out", str(out)]) == 0
    monkeypatch.setattr(run_module, "choose_workers", lambda *a, **k: pytest.fail("a resumed run must not measure"))
    options = dict(model="threelayer", hidden=(32,), width=8, epochs=2, quiet=True, resume=True)
    run = run_module.prepare_run(TrainConfig(**options, workers="auto"), out)
    assert run.solver.workers == 2 and run_module.choose_run_workers(run) == "auto: as the run recorded"


def test_auto_keeps_its_measurement_in_the_wisdom_and_a_later_run_reads_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(auto, "available_cores", lambda: 2)
    args = [a for a in ARGS if a != "--quiet"]
    assert cli.main([*args, "--out", str(tmp_path / "first")]) == 0
    first = capsys.readouterr().out
    plans = json.loads((tmp_path / "numcnn-data" / "wisdom.json").read_text())["plans"]
    (key,) = [k for k in plans if k.startswith("workers ")]
    assert plans[key]["choice"] in ("1", "2") and set(plans[key]["ms"]) == {"1", "2"}
    measured = []
    monkeypatch.setattr(auto, "start_workers", lambda *a, **k: measured.append(a))
    assert cli.main([*args, "--out", str(tmp_path / "second")]) == 0
    second = capsys.readouterr().out
    assert measured == [] and "(measured before: numcnn wisdom)" in second
    workers = json.loads((tmp_path / "second" / "summary.json").read_text())["workers"]
    assert workers == int(plans[key]["choice"]) and f"(training on {workers} worker" in first
