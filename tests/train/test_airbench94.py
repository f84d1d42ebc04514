"""airbench94's recipe (numcnn.train.airbench94): its rates against PyTorch's SGD, and whole runs on small files."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import requires_torch, torch
from numcnn.cli import main
from numcnn.train import optim
from numcnn.train.airbench94 import HYPERPARAMETERS, hyperparameters, lookahead_alpha, solver_rates, train_airbench94
from numcnn.train.tricks import patch_whitening


@requires_torch
@pytest.mark.parametrize("batch_size", [1024, 500])
def test_rates_make_numcnns_updates_airbenchs(batch_size):
    """airbench's SGD on a summed loss (its two parameter groups) against numcnn's Nesterov on the mean loss."""
    h = HYPERPARAMETERS
    rates = solver_rates(batch_size, h["lr"], h["momentum"], h["weight_decay"], h["bias_scaler"])
    kilostep = 1024 * (1 + 1 / (1 - h["momentum"]))
    lr, wd = h["lr"] / kilostep, h["weight_decay"] * batch_size / kilostep
    rng = np.random.default_rng(0)
    start = {"weight": rng.standard_normal(6), "bias": rng.standard_normal(3)}
    mean_grads = [{k: rng.standard_normal(v.shape) for k, v in start.items()} for _ in range(4)]
    factors = [0.2, 0.6, 1.0, 0.5]  # the schedule's multipliers, step by step
    twin = {k: torch.tensor(v, requires_grad=True) for k, v in start.items()}
    groups = [
        dict(params=[twin["bias"]], lr=lr * h["bias_scaler"], weight_decay=wd / (lr * h["bias_scaler"])),
        dict(params=[twin["weight"]], lr=lr, weight_decay=wd / lr),
    ]
    sgd = torch.optim.SGD(groups, momentum=h["momentum"], nesterov=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(sgd, lambda i: factors[min(i, 3)])
    ours = {k: v.copy() for k, v in start.items()}
    configs = {
        "weight": {"momentum": h["momentum"], "weight_decay": rates["weight_decay"]},
        "bias": {"momentum": h["momentum"], "weight_decay": rates["bias_weight_decay"]},
    }
    for grads, factor in zip(mean_grads, factors):
        for k, p in twin.items():
            p.grad = torch.tensor(grads[k] * batch_size)  # the summed loss's gradient
        sgd.step()
        scheduler.step()
        configs["weight"]["learning_rate"] = rates["learning_rate"] * factor
        configs["bias"]["learning_rate"] = rates["bias_learning_rate"] * factor
        for k in ours:
            ours[k], configs[k] = optim.nesterov(ours[k], grads[k], configs[k])
    for k in ours:
        np.testing.assert_allclose(ours[k], twin[k].detach().numpy(), rtol=1e-12, atol=1e-12)


def test_lookahead_alpha_and_unknown_hyperparameters():
    assert lookahead_alpha(0.0) == 1.0  # at first the slow weights follow the fast ones
    assert lookahead_alpha(1.0) == pytest.approx(1 - 0.95**5)  # at the end they keep 77% of themselves
    assert lookahead_alpha(0.5) == pytest.approx(1 - 0.95**5 / 8)
    with pytest.raises(ValueError, match=r"unknown airbench94 hyper-parameters \['lr_peak'\]"):
        hyperparameters(lr_peak=1.0)


def _fake_cifar(tmp_path):
    sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
    from fake_data import cifar_arrays, write_cifar_python

    write_cifar_python(tmp_path / "cifar", cifar_arrays(n_per_batch=60))
    return tmp_path / "cifar"


def test_a_small_run_writes_its_folder_and_evaluate_agrees(tmp_path, capsys):
    """4 epochs of a narrow net: the whitening bias trains, then freezes; Lookahead starts at epoch 3;
    numcnn evaluate of last.npz repeats the summary's test accuracy."""
    from numcnn.io import load_checkpoint
    from numcnn.train.dataprep import load_raw, prepare

    data_dir = _fake_cifar(tmp_path)
    changes = dict(widths=(8, 16, 16), batch_size=32)
    summary = train_airbench94(
        tmp_path / "run", data_dir, epochs=4, val_size=50, workers=1, quiet=True, changes=changes
    )
    assert summary["steps"] == 4 * (250 // 32) and summary["workers"] == 1
    assert set(summary["test_acc_by_tta"]) == {"none", "flip", "flip-translate"}
    assert summary["test_acc"] == summary["test_acc_by_tta"]["flip"]
    for name in ("last.npz", "best.npz", "metrics.jsonl", "curves.png", "filters.png", "confusion.png"):
        assert (tmp_path / "run" / name).exists(), name
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["recipe"] == "airbench94"
    params = load_checkpoint(tmp_path / "run" / "last.npz").model_arrays
    prepared = prepare(load_raw("cifar10", data_dir=data_dir), 50, seed=0)
    np.testing.assert_allclose(params["whiten.weight"], patch_whitening(prepared.X_train[:5000], 2), rtol=1e-5)
    assert np.any(params["whiten.bias"] != 0)  # trained for 3 epochs from zeros
    assert all(np.all(v == 1) for k, v in params.items() if "norm" in k and k.endswith("weight"))
    assert main(["evaluate", str(tmp_path / "run" / "last.npz")]) == 0
    assert f"{summary['test_acc']:.4f}" in capsys.readouterr().out


def test_command_line_runs_the_recipe_and_names_bad_options(tmp_path, capsys):
    data_dir = _fake_cifar(tmp_path)
    assert main(["airbench94", "--epochs", "0", "--data-dir", str(data_dir)]) == 2
    assert "--epochs must be positive, got 0" in capsys.readouterr().err
    out = tmp_path / "run"
    args = ["airbench94", "--data-dir", str(data_dir), "--epochs", "1", "--val-size", "50", "--workers", "1"]
    args += ["--width", "8", "--batch-size", "100"]
    assert main(args + ["--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "airbench94 on cifar10: test accuracy of the final weights" in printed and "2 steps" in printed
    before = (out / "last.npz").read_bytes()
    assert main(args + ["--out", str(out), "--quiet"]) == 2  # the same folder again, without --resume
    assert "already holds a run (" in capsys.readouterr().err and (out / "last.npz").read_bytes() == before
    assert main(args + ["--out", str(out), "--quiet", "--resume"]) == 0  # finished: resuming only tests again
    assert "2 steps" in capsys.readouterr().out
    whitening = 24 * 3 * 2 * 2 + 24
    convs = (24 * 8 + 8 * 8 + 8 * 32 + 32 * 32 + 32 * 32 + 32 * 32) * 9
    norms = 2 * 2 * (8 + 32 + 32)  # weight and bias of two batch norms a group
    assert json.loads((out / "summary.json").read_text())["parameters"] == whitening + convs + norms + 32 * 10
