"""What a run reports is what its files hold: `numcnn evaluate` of the checkpoint the summary
names gives the summary's figures, from any folder, with the run's test-time augmentation."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numcnn import models
from numcnn.cli import build_parser, main, train_config
from numcnn.io import load_checkpoint, save_checkpoint
from numcnn.train.build import first_layer_weights
from numcnn.train.run import evaluate, train

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _train(argv, out):
    args = build_parser().parse_args(["train", *argv, "--quiet"])
    args.dataset, args.path = "digits", None
    out.mkdir(parents=True, exist_ok=True)
    return train(train_config(args), out)


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    """The issue's case, small: --ema, with --tta flip, on the digits."""
    out = tmp_path_factory.mktemp("ema") / "r"
    summary = _train(["--epochs", "2", "--width", "8", "--batch-size", "128", "--ema", "0.9", "--tta", "flip"], out)
    return out, summary


def test_the_summarys_test_accuracy_is_its_checkpoints(ema_run):
    out, summary = ema_run
    assert summary["files"]["checkpoint"] == str(out / "best.npz")
    result = evaluate(summary["files"]["checkpoint"])
    assert result["tta"] == "flip"  # the run's, by default
    assert result["accuracy"] == summary["test_acc"]
    assert evaluate(out / "best.npz", tta="none")["tta"] == "none"  # an explicit choice still wins


def test_best_val_acc_is_the_saved_averaged_weights(ema_run):
    """best_val_acc was the live weights' while the result was the average's."""
    out, summary = ema_run
    assert evaluate(out / "best.npz", split="val", tta="none")["accuracy"] == summary["best_val_acc"]
    assert not (out / "final.npz").exists()  # one result, named by the summary


def test_evaluate_survives_a_closed_pipe(ema_run):
    """`numcnn evaluate r/best.npz | head` printed a BrokenPipeError traceback."""
    out, _ = ema_run
    process = subprocess.Popen(
        [sys.executable, "-m", "numcnn", "evaluate", str(out / "best.npz")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()  # the reader is gone before the first line is written
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert stderr == ""


def test_the_seconds_say_what_they_measure_after_a_resume(tmp_path):
    """total_seconds was this process's only, and fell below train_seconds after a resume."""
    out = tmp_path / "r"
    _train(["--epochs", "1", "--width", "4", "--batch-size", "256"], out)
    checkpoint = load_checkpoint(out / "last.npz")
    state = dict(checkpoint.state, elapsed=1000.0, step_seconds=900.0)  # as if the first session was long
    save_checkpoint(out / "last.npz", models.load_model(checkpoint), state)
    summary = _train(["--epochs", "2", "--width", "4", "--batch-size", "256", "--resume"], out)
    assert summary["train_seconds"] >= 1000 and summary["step_seconds"] >= 900
    assert summary["session_seconds"] < 1000 <= summary["total_seconds"]
    assert summary["total_seconds"] >= summary["train_seconds"] >= summary["step_seconds"]
    assert summary["images_per_sec"] == pytest.approx(summary["steps"] * 256 / summary["step_seconds"], abs=0.1)
    assert set(summary["keys"]) >= {
        "train_seconds",
        "step_seconds",
        "session_seconds",
        "total_seconds",
        "images_per_sec",
        "test_acc",
        "best_val_acc",
    }


def test_a_checkpoints_data_is_found_from_any_folder_or_where_it_moved(tmp_path, monkeypatch):
    """A relative dataset path was stored as given: `cd elsewhere; numcnn evaluate ../r/best.npz` failed."""
    sys.path.insert(0, str(Path(__file__).parent / "data"))
    from fake_data import write_image_folder

    work = tmp_path / "work"
    write_image_folder(work / "pets", classes=("cat", "dog"), per_class=10, size=(8, 8))
    monkeypatch.chdir(work)
    assert (
        main(
            [
                "train",
                "--dataset",
                "folder",
                "pets",
                "--model",
                "fc",
                "--hidden",
                "16",
                "--epochs",
                "1",
                "--out",
                "r",
                "--quiet",
                "--val-size",
                "0.2",
            ]
        )
        == 0
    )
    assert (work / "r" / "filters.png").exists()  # fc's first layer on colour images, as pictures
    (work / "elsewhere").mkdir()
    monkeypatch.chdir(work / "elsewhere")
    assert main(["evaluate", "../r/best.npz"]) == 0
    shutil.move(work / "pets", tmp_path / "moved")
    assert main(["evaluate", "../r/best.npz"]) == 2
    assert main(["evaluate", "../r/best.npz", "--data-dir", str(tmp_path / "moved")]) == 0


def test_fully_connected_first_layers_are_drawn_as_images():
    """fc and twolayer on CIFAR-10 skipped filters.png: the code assumed one input channel."""
    for model in (
        models.TwoLayerNet(input_dim=3 * 32 * 32, hidden_dim=7),
        models.FullyConnectedNet([7], input_dim=3 * 32 * 32),
    ):
        weights = first_layer_weights(model, (3, 32, 32))
        assert weights.shape == (7, 3, 32, 32)
        np.testing.assert_array_equal(weights[2].ravel(), model.params["W1"][:, 2])
    assert first_layer_weights(models.TwoLayerNet(input_dim=3 * 32 * 32, hidden_dim=7)).shape == (7, 3, 32, 32)
    assert first_layer_weights(models.TwoLayerNet(input_dim=5, hidden_dim=7)) is None


def test_a_resumed_epochs_bar_counts_on_from_where_it_was():
    """The bar jumped to 99/351 at '669 it/s, ETA 00:00': the resumed steps entered its rate."""
    import io

    from numcnn.train import progress

    stream = io.StringIO()
    original, sys.stderr = sys.stderr, stream
    try:
        bar = progress.progress_bar(10, "epoch 2/3", enabled=True, initial=4)
        bar.update()
        bar.close()
    finally:
        sys.stderr = original
    assert "5/10" in stream.getvalue()


def test_the_readmes_solver_example_learns_and_writes_best_npz(tmp_path, monkeypatch):
    """It ended at chance ([0.56, 0.56, 0.44, 0.52]) and wrote no best.npz."""
    monkeypatch.chdir(tmp_path)
    block = next(b for b in re.findall(r"```python\n(.*?)```", README, re.S) if "Solver(" in b)
    names = {}
    exec(compile(block, "README.md", "exec"), names)
    solver = names["solver"]
    assert solver.best_val_acc >= 0.9 and solver.val_acc_history[-1] > solver.val_acc_history[0]
    assert (tmp_path / "runs" / "toy" / "best.npz").exists()


class Climber:
    """Class 1 scores a - 0.15, with a rising by the learning rate every step: accuracy on class-1
    labels is 0 after one step at lr 0.1 and 1 after two."""

    def __init__(self):
        self.params = {"a": np.zeros(1)}

    def loss(self, X, y=None):
        scores = np.zeros((len(X), 2))
        scores[:, 1] = self.params["a"][0] - 0.15
        return scores if y is None else (1.0, {"a": -np.ones(1)})


def test_the_bar_and_the_log_show_each_epochs_own_accuracy_and_learning_rate(monkeypatch, tmp_path):
    """With a step schedule the log showed the next epoch's rate; the bar the previous evaluation."""
    import numcnn.train.callbacks as solver_module
    from numcnn.train.solver import Solver

    shown = []

    class RecordingBar:
        def update(self, n=1):
            pass

        def set_postfix(self, **values):
            shown.append(values)

        def write(self, message):
            pass

        def close(self):
            shown.append("closed")

    monkeypatch.setattr(solver_module, "progress_bar", lambda *args, **kwargs: RecordingBar())
    ones = np.ones(8, dtype=int)
    data = {"X_train": np.zeros((8, 1)), "y_train": ones, "X_val": np.zeros((8, 1)), "y_val": ones}
    solver = Solver(
        Climber(),
        data,
        update_rule="sgd",
        optim_config={"learning_rate": 0.1},
        lr_decay=0.5,
        batch_size=4,
        num_epochs=2,
        seed=0,
        verbose=False,
        metrics_log=tmp_path / "m.jsonl",
    )
    solver.train()
    assert solver.val_acc_history == [0.0, 1.0, 1.0]
    ends = [shown[i - 1] for i, entry in enumerate(shown) if entry == "closed"]
    assert [(e["val_acc"], e["lr"]) for e in ends] == [("1.000", "1.00e-01"), ("1.000", "5.00e-02")]
    records = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in records] == [0.1, 0.05]


def test_an_ignored_option_is_refused_before_the_run_folder_is_made(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--model", "twolayer", "--width", "4", "--out", "r"]) == 2
    assert capsys.readouterr().err.strip() == (
        "numcnn train: error: --width applies to convolutional models; twolayer's layers are sized by --hidden"
    )
    assert not (tmp_path / "r").exists()
