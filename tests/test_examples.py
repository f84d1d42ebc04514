"""The examples run, at reduced size, so they never go stale."""

import runpy
import sys
from pathlib import Path

from helpers import requires_torch

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(Path(__file__).parent / "data"))


def run_example(name, *args):
    module = runpy.run_path(str(EXAMPLES / name))
    return module["main"](list(args))


def test_ops_tour(capsys):
    run_example("ops_tour.py")
    assert "conv2d gradient check" in capsys.readouterr().out


def test_cs231n_walkthrough_prints_the_notebooks_checks(tmp_path, capsys):
    from fake_data import cifar_arrays, write_cifar_python

    write_cifar_python(tmp_path, cifar_arrays(n_per_batch=60))
    run_example("cs231n_walkthrough.py", "--quick", "--data-dir", str(tmp_path))
    out = capsys.readouterr().out
    assert "Testing conv_forward_naive\ndifference:  " in out
    assert "W2 max relative error: 1.822723e-02" in out  # the notebook's own number
    assert "(Epoch 1 / 1) train acc" in out


def test_resnet_cifar10_at_reduced_size(tmp_path):
    from fake_data import cifar_arrays, write_cifar_python

    write_cifar_python(tmp_path / "cifar", cifar_arrays(n_per_batch=40))
    solver = run_example(
        "resnet_cifar10.py",
        "--data-dir",
        str(tmp_path / "cifar"),
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "run"),
        "--width",
        "4",
    )
    assert solver.epoch == 1 and (tmp_path / "run" / "best.npz").exists()


@requires_torch
def test_pytorch_weights_round_trip():
    assert run_example("pytorch_weights.py") < 1e-9
