"""The command line, run as a user runs it: in a subprocess, on the digits."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numcnn import demos
from numcnn.io import load_checkpoint

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def numcnn(*args, cwd, timeout=600, **environ):
    """`numcnn ARGS` in a subprocess; environ: variables set for it on top of this process's."""
    return subprocess.run(
        [sys.executable, "-m", "numcnn", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **environ} if environ else None,
    )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The default run, with no arguments: a small CNN on scikit-learn's digits."""
    folder = tmp_path_factory.mktemp("cli")
    result = numcnn("train", cwd=folder)
    assert result.returncode == 0, result.stderr
    runs = list((folder / "runs").iterdir())
    assert len(runs) == 1
    return folder, runs[0], result


def test_default_train_needs_no_arguments_and_writes_the_run_folder(trained):
    folder, run, result = trained
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_val_acc"] > 0.95 and summary["test_acc"] > 0.95
    assert "smallcnn on digits: best validation accuracy" in result.stdout
    assert "(Epoch 8 / 8) train acc" in result.stdout
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 8
    for name, minimum in (("curves.png", (600, 700)), ("filters.png", (400, 400)), ("confusion.png", (400, 400))):
        width, height = png_size(run / name)
        assert width >= minimum[0] and height >= minimum[1], name


def test_evaluate_reports_accuracy_per_class_and_confusion(trained):
    folder, run, _ = trained
    result = numcnn("evaluate", run / "best.npz", "--confusion", "cm.png", cwd=folder)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert f"test accuracy {summary['test_acc']:.4f} on 359 images" in result.stdout
    assert "per-class accuracy:" in result.stdout and "confusion matrix" in result.stdout
    assert png_size(folder / "cm.png")[0] > 300


def test_resume_continues_a_run_folder(tmp_path):
    first = numcnn("train", "--epochs", "2", "--out", "r", "--quiet", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    second = numcnn("train", "--epochs", "3", "--out", "r", "--resume", "--quiet", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]
    again = numcnn("train", "--epochs", "1", "--out", "r", "--quiet", cwd=tmp_path)
    assert again.returncode == 2 and "r already holds a run (last.npz): pass --resume" in again.stderr


@pytest.mark.parametrize("model", ["threelayer", "fc"])
def test_the_assignments_models_train_from_the_command_line(tmp_path, model):
    extra = ["--norm", "batchnorm", "--dropout", "0.2"] if model == "fc" else []
    result = numcnn("train", "--model", model, "--epochs", "2", "--out", "r", "--quiet", *extra, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["test_acc"] > 0.5
    assert (tmp_path / "r" / "filters.png").exists()


def test_a_vgg_sized_to_the_images_trains_and_its_checkpoint_evaluates(tmp_path):
    result = numcnn("train", "--model", "vgg", "--width", "8", "--epochs", "2", "--out", "r", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["test_acc"] > 0.5
    evaluated = numcnn("evaluate", tmp_path / "r" / "best.npz", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"test accuracy {summary['test_acc']:.4f}" in evaluated.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--model", "resnet21"], "invalid choice: 'resnet21' (choose from 'airbench'"),
        (["train", "--dataset", "imagenet"], "unknown dataset 'imagenet'; choose from digits, mnist"),
        (["train", "--dataset", "mnist", "--data-dir", "nowhere"], "Pass download=True (--download on the"),
        (["train", "--dataset", "folder"], "--dataset folder needs a path"),
        (["train", "--resume"], "--resume needs --out"),
        (["train", "--batch-size", "0"], "--batch-size must be positive, got 0"),
        (["train", "--model", "vgg11"], "model vgg11 cannot take the digits images, (1, 8, 8) (5 blocks halve 8x8"),
        (["train", "--epochs", "0"], "--epochs must be positive, got 0"),
        (["train", "--val-size", "0"], "--val-size is a fraction in (0, 1) or a whole number of images, got 0.0"),
        (["train", "--dropout", "1"], "--dropout must be in [0, 1), got 1.0"),
        (["train", "--lr-decay", "-0.5"], "--lr-decay must be a finite number above 0 (a factor per epoch), got -0.5"),
        (["train", "--warmup", "-1"], "--warmup must be a finite number of epochs, at least 0, got -1.0"),
        (["train", "--lr", "nan"], "--lr must be a finite number above 0, got nan"),
        (["train", "--lr", "-0.1"], "--lr must be a finite number above 0, got -0.1"),
        (["train", "--time-budget", "inf"], "--time-budget must be a finite number of seconds above 0, got inf"),
        (["train", "--grad-clip", "nan"], "--grad-clip must be a finite number above 0, got nan"),
        (["train", "--momentum", "1.5"], "--momentum must be in [0, 1), got 1.5"),
        (["train", "--weight-decay", "inf"], "--weight-decay must be a finite number, at least 0, got inf"),
        (["train", "--label-smoothing", "nan"], "--label-smoothing must be in [0, 1), got nan"),
        (["train", "--seed", "-1"], "--seed must be a whole number from 0 to 2**32 - 1, got -1"),
        (["train", "--lookahead", "0"], "--lookahead must be a positive whole number of steps, got 0"),
        (["train", "--ema", "1.0"], "--ema must be a decay in (0, 1), such as 0.999, got 1.0"),
        (["train", "--width", "0"], "--width must be positive, got 0"),
        (["train", "--val-size", "inf"], "--val-size is a fraction in (0, 1) or a whole number of images, got inf"),
        (["train", "--width", "1000000"], "model smallcnn does not fit in memory (Unable to allocate"),
        (
            ["train", "--val-size", "5000"],
            "--val-size 5000 leaves no images for training or for validation out of "
            "the 1438 training images: give a fraction in (0, 1) or a count from 1 to 1437",
        ),
        (["evaluate", "missing.npz"], "missing.npz: no such checkpoint file"),
        (["sweep", "--time-budget", "nan"], "--time-budget must be a finite number of seconds above 0, got nan"),
        (["sweep", "--val-size", "-1"], "--val-size is a fraction in (0, 1) or a whole number of images, got -1.0"),
        (["sweep", "--batch-size", "0"], "--batch-size must be positive, got 0"),
        (["gradcheck", "conv3d"], "unknown op conv3d; choose from linear, relu"),
    ],
)
def test_mistakes_get_a_message_not_a_traceback(tmp_path, args, message):
    result = numcnn(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]  # argparse's own errors follow its usage
    assert not (tmp_path / "runs").exists()  # no run folder, not even an empty one


def _snapshot(folder: Path) -> dict:
    """Every file under `folder` (hidden ones included) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory):
    """A finished one-epoch run folder, copied by each test that changes it."""
    folder = tmp_path_factory.mktemp("one-epoch")
    result = numcnn("train", "--width", "4", "--epochs", "1", "--out", "r", "--quiet", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "r"


def _copy_run(one_epoch, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(one_epoch, tmp_path / "r"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--out", "r/best.npz"], "--out r/best.npz is a file, not a folder: choose a folder for the run"),
        (["--out", "r/best.npz/run"], "--out r/best.npz/run: r/best.npz is a file, not a folder"),
        (
            ["--out", "r", "--resume", "--lr", "0.01", "--seed", "3", "--val-size", "0.2"],
            "r is a run with other options (--lr (default) there, 0.01 here; --seed 0 there, 3 here; "
            "--val-size 0.1 there, 0.2 here): resume it with its own options (only --epochs, --time-budget",
        ),
        (
            ["--out", "r", "--resume", "--width", "8", "--augment", "standard", "--schedule", "cosine"],
            "r is a run with other options (--augment none there, standard here; --schedule none there, cosine here; "
            "--width 4 there, 8 here)",
        ),
    ],
)
def test_a_refused_run_folder_is_left_as_it_was(one_epoch, tmp_path, args, message):
    """--out at a file or under one, and --resume with options that define another run (once
    accepted: another --seed or --val-size leaked validation images into training, --lr was ignored)."""
    _copy_run(one_epoch, tmp_path)
    before = _snapshot(tmp_path)
    result = numcnn("train", "--width", "4", "--quiet", *args, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert _snapshot(tmp_path) == before


def test_resume_accepts_and_records_the_options_that_may_change(one_epoch, tmp_path):
    run = _copy_run(one_epoch, tmp_path)
    result = numcnn(
        "train",
        "--width",
        "4",
        "--out",
        "r",
        "--resume",
        "--epochs",
        "2",
        "--time-budget",
        "300",
        "--quiet",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    meta = load_checkpoint(run / "last.npz").state["metadata"]
    assert (meta["epochs"], meta["time_budget"], meta["options"]["width"]) == (2, 300.0, 4)
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]


@pytest.mark.parametrize("name", ["best.npz", "metrics.jsonl", "summary.json", ".last.npz.abc123.tmp"])
def test_any_file_numcnn_writes_marks_a_folder_as_used(tmp_path, one_epoch, name):
    """Once, a folder holding best.npz but no last.npz was taken for a fresh one, and the new run
    reported the old best.npz as its own."""
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / name).write_bytes((one_epoch / name).read_bytes() if (one_epoch / name).exists() else b"x")
    before = _snapshot(tmp_path)
    result = numcnn("train", "--width", "4", "--epochs", "1", "--out", "r", "--quiet", cwd=tmp_path)
    assert result.returncode == 2 and f"r already holds a run ({name}): pass --resume" in result.stderr
    assert _snapshot(tmp_path) == before


def test_a_run_whose_first_evaluation_is_never_beaten_writes_the_best_npz_it_lists(tmp_path):
    """`--lr 1e-7`: the evaluation after step 1 stays the best; best.npz was never written."""
    result = numcnn(
        "train", "--width", "8", "--epochs", "1", "--lr", "1e-7", "--seed", "1", "--out", "r", "--quiet", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    for name in summary["files"].values():
        assert (tmp_path / name).exists(), name
    assert load_checkpoint(tmp_path / "r" / "best.npz").state["best_val_acc"] == summary["best_val_acc"]


def test_a_time_budget_inside_the_first_epoch_evaluates_what_was_trained(tmp_path, monkeypatch, capsys):
    """Once: the weights evaluated after step 1 were restored as the best, the test accuracy was an
    untrained network's, and neither best.npz nor metrics.jsonl was written though the summary listed
    both. A clock that moves a second per reading stops the run after a few steps."""
    import itertools

    import numcnn.train.solver as solver_module
    from numcnn import cli

    ticks = itertools.count()
    monkeypatch.setattr(solver_module.time, "perf_counter", lambda: float(next(ticks)))
    assert (
        cli.main(
            [
                "train",
                "--width",
                "4",
                "--epochs",
                "1",
                "--batch-size",
                "16",
                "--lr",
                "0.01",
                "--time-budget",
                "200",
                "--out",
                str(tmp_path / "r"),
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    for name in summary["files"].values():
        assert Path(name).exists(), name
    (record,) = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert record["partial"] is True and 0 < record["step"] == summary["steps"] < 80  # of 80 an epoch
    assert summary["best_val_acc"] == record["best_val_acc"] == record["val_acc"]  # the partial epoch's
    assert summary["test_acc"] > 0.5  # trained, not the weights after step 1 (about 0.1)
    assert summary["epochs"] == round(summary["steps"] / 80, 3) == record["epoch"]  # a fraction, not 0


def test_evaluate_on_a_folder_too_small_to_split_says_so(one_epoch, tmp_path):
    sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
    from fake_data import write_image_folder

    write_image_folder(tmp_path / "two", classes=("a", "b"), per_class=1, size=(8, 8), mode="L")
    result = numcnn("evaluate", one_epoch / "best.npz", "--dataset", "folder", "two", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "two: 2 image(s) are too few to hold out a test set" in result.stderr


def test_evaluate_confusion_under_a_file_is_one_line(one_epoch, tmp_path):
    (tmp_path / "file").write_text("")
    result = numcnn("evaluate", one_epoch / "best.npz", "--confusion", "file/cm.png", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "numcnn evaluate: error: --confusion file/cm.png: file is a file, not a folder"


def test_an_out_folder_that_cannot_be_written_is_refused_before_training(tmp_path, monkeypatch, capsys):
    """os.access is made to deny writing (the tests may run as root, whom chmod does not stop)."""
    import numcnn.train.run_folder as run_module
    from numcnn import cli

    (tmp_path / "locked").mkdir()
    monkeypatch.setattr(run_module.os, "access", lambda path, mode: Path(path) != tmp_path / "locked")
    assert cli.main(["train", "--epochs", "1", "--out", str(tmp_path / "locked" / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"cannot write in {tmp_path / 'locked'} (permission denied)" in err and len(err.splitlines()) == 1
    assert list((tmp_path / "locked").iterdir()) == []


def test_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(one_epoch, tmp_path, monkeypatch, capsys):
    """Once, three chained OSError tracebacks. Every atomic write now fails as on a full disk."""
    import errno

    import numcnn.io.checkpoint as checkpoint_module
    from numcnn import cli

    run = _copy_run(one_epoch, tmp_path)
    last = (run / "last.npz").read_bytes()

    def full(path, write):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(checkpoint_module, "write_atomically", full)
    assert cli.main(["train", "--width", "4", "--epochs", "2", "--out", str(run), "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "No space left on device: free some space" in err
    assert (run / "last.npz").read_bytes() == last


def test_gradcheck_prints_a_table_and_passes(tmp_path):
    result = numcnn("gradcheck", cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert "batchnorm_train" in result.stdout and "20 of 20 passed" in result.stdout and "gelu" in result.stdout


def test_gradcheck_exits_1_on_a_failing_op(monkeypatch, capsys):
    from numcnn import cli
    from numcnn.gradcheck import suite as gradcheck_suite

    monkeypatch.setattr(gradcheck_suite, "THRESHOLD", 0.0)  # nothing can pass
    assert cli.main(["gradcheck", "relu"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_training_on_an_image_folder(tmp_path):
    sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
    from fake_data import write_image_folder

    write_image_folder(tmp_path / "pets", classes=("cat", "dog"), per_class=10, size=(12, 12))
    result = numcnn(
        "train",
        "--dataset",
        "folder",
        tmp_path / "pets",
        "--epochs",
        "1",
        "--out",
        "r",
        "--quiet",
        "--val-size",
        "0.2",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["dataset"] == "folder"


def test_the_training_options_reach_the_run(tmp_path):
    """Optimizer, learning rate, weight decay, schedule, augmentation, seed and batch size as given."""
    args = (
        "train",
        "--optimizer",
        "nesterov",
        "--lr",
        "0.05",
        "--weight-decay",
        "1e-4",
        "--schedule",
        "warmup",
        "--warmup",
        "0.5",
        "--augment",
        "standard",
        "--seed",
        "3",
        "--batch-size",
        "32",
        "--epochs",
        "2",
        "--time-budget",
        "600",
        "--quiet",
    )
    first = numcnn(*args, "--out", "a", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    records = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    steps_per_epoch = 1294 // 32  # the digits' 1,438 training images less a 10% validation split, in 32s
    assert [r["step"] for r in records] == [steps_per_epoch, 2 * steps_per_epoch] and summary["steps"] == 80
    assert records[-1]["lr"] == pytest.approx(0.0, abs=1e-3)  # warm-up, then cosine down to 0
    assert max(r["lr"] for r in records) <= 0.05
    again = numcnn(*args, "--out", "b", cwd=tmp_path)  # the seed makes the run repeat exactly
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "a" / "metrics.jsonl").read_text().split('"seconds"')[0] == (
        tmp_path / "b" / "metrics.jsonl"
    ).read_text().split('"seconds"')[0]


def test_mnist_from_idx_files_in_a_data_dir(tmp_path):
    sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
    from fake_data import write_mnist

    write_mnist(tmp_path / "mnist", n_train=60, n_test=20)
    result = numcnn(
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        tmp_path / "mnist",
        "--model",
        "vgg",
        "--width",
        "4",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--out",
        "r",
        "--quiet",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["dataset"] == "mnist" and summary["epochs"] == 1


def test_bench_prints_the_speed_tables(tmp_path):
    ops = numcnn("bench", "ops", "--cases", "cs231n pool", "--repeat", "1", cwd=tmp_path)
    assert ops.returncode == 0, ops.stderr
    assert "BLAS: " in ops.stdout and "fwd+bwd" in ops.stdout
    row = next(line for line in ops.stdout.splitlines() if line.startswith("cs231n pool"))
    assert row.rstrip().endswith("x")  # the loop versions ran: a backward speed-up is reported
    train = numcnn(
        "bench", "train", "--models", "threelayer", "--steps", "1", "--batch-size", "16", "--no-memory", cwd=tmp_path
    )
    assert train.returncode == 0, train.stderr
    assert any(line.startswith("threelayer") for line in train.stdout.splitlines())
    # the fixed rules (NUMCNN_TUNE=0): measured, the planner may pick the compiled direct engine, which has no GEMMs
    profile = numcnn("bench", "profile", "--models", "threelayer", "--steps", "1", cwd=tmp_path, NUMCNN_TUNE="0")
    assert profile.returncode == 0, profile.stderr
    assert "ms per training step" in profile.stdout and "conv: GEMMs" in profile.stdout


def test_demo_convolution_matches_direct_numpy_filters(tmp_path):
    result = numcnn("demo", "convolution", "--out", "demo.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert png_size(tmp_path / "demo.png") == (900, 600)
    photos = demos.bundled_photos()
    out = demos.convolve_photos(photos)
    x = np.stack(photos).astype(np.float64)
    gray = 0.3 * x[..., 0] + 0.6 * x[..., 1] + 0.1 * x[..., 2]
    blue = np.pad(x[..., 2], ((0, 0), (1, 1), (1, 1)))
    sobel = (
        blue[:, :-2, :-2]
        + 2 * blue[:, :-2, 1:-1]
        + blue[:, :-2, 2:]
        - blue[:, 2:, :-2]
        - 2 * blue[:, 2:, 1:-1]
        - blue[:, 2:, 2:]
    ) + 128
    np.testing.assert_allclose(out[:, 0], gray, rtol=1e-12)
    np.testing.assert_allclose(out[:, 1], sobel, rtol=1e-12)


def test_demo_vision_on_the_bundled_photo_and_on_a_file(tmp_path):
    from PIL import Image

    result = numcnn("demo", "vision", "--out", "v.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert png_size(tmp_path / "v.png") == (1200, 1000)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 90, 3), dtype=np.uint8)).save(tmp_path / "mine.png")
    assert numcnn("demo", "vision", "mine.png", "--out", "m.png", cwd=tmp_path).returncode == 0
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    broken = numcnn("demo", "vision", "broken.jpg", cwd=tmp_path)
    assert broken.returncode == 2 and "broken.jpg: not a readable image" in broken.stderr
