"""`numcnn train --resume` continues a run exactly with every option and trick on.

A run of 4 epochs is compared, bit for bit, with the same run stopped after 2 epochs
(its last.npz written, the process state dropped) and resumed from last.npz: the
weights, the whole training state (optimizer, Lookahead's slow weights, the EMA's
average, random generators), the histories and best.npz.
"""

import numpy as np
import pytest

from numcnn import data
from numcnn.cli import build_parser, train_config
from numcnn.io import CheckpointError, load_checkpoint
from numcnn.train.dataprep import prepare
from numcnn.train.run import make_solver
from numcnn.train.solver import Callback

EVERYTHING = [
    "--optimizer",
    "nesterov",
    "--momentum",
    "0.8",
    "--lr",
    "0.05",
    "--weight-decay",
    "5e-4",
    "--decoupled",
    "--schedule",
    "warmup",
    "--warmup",
    "0.5",
    "--augment",
    "standard",
    "--label-smoothing",
    "0.1",
    "--lookahead",
    "3",
    "--ema",
    "0.9",
    "--grad-clip",
    "2",
    "--tta",
    "flip",
    "--batch-size",
    "128",
    "--seed",
    "3",
    "--quiet",
]
MODELS = {
    "smallcnn": ["--model", "smallcnn", "--width", "4", "--freeze-bn-weight", "--freeze", "fc.bias"],
    "fc": ["--model", "fc", "--hidden", "24,16", "--norm", "batchnorm", "--dropout", "0.2", "--freeze-bn-weight"],
}


class StopAfter(Callback):
    """Ends training after an epoch, as a kill between epochs would (last.npz is written first)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, solver):
        solver.stop_training = solver.epoch >= self.epoch


def _solver(model, out, resume=False, callbacks=()):
    args = build_parser().parse_args(
        ["train", "--epochs", "4", *EVERYTHING, *MODELS[model]] + (["--resume"] if resume else [])
    )
    args.dataset, args.path = "digits", None
    np.random.seed(args.seed)
    from numcnn import nn

    nn.manual_seed(args.seed)
    prepared = prepare(data.load_digits(), args.val_size, seed=args.seed)
    solver, _ = make_solver(train_config(args), prepared, out, callbacks=callbacks)
    return solver


def _flatten(value, prefix=""):
    """{dotted key: array or scalar} of a nested checkpoint state."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flatten(item, f"{prefix}.{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _flatten(item, f"{prefix}.{i}").items()}
    return {prefix: value}


def _assert_same_checkpoint(path_a, path_b):
    a, b = load_checkpoint(path_a), load_checkpoint(path_b)
    for key in a.model_arrays:
        np.testing.assert_array_equal(a.model_arrays[key], b.model_arrays[key], err_msg=key)
    state_a, state_b = _flatten(a.state), _flatten(b.state)
    ignored = (".elapsed", ".step_seconds", ".seconds", ".images_per_sec")  # wall-clock figures
    assert set(state_a) == set(state_b)
    for key in state_a:
        if not key.endswith(ignored) and ".metadata." not in key:
            np.testing.assert_array_equal(np.asarray(state_a[key]), np.asarray(state_b[key]), err_msg=key)


@pytest.mark.parametrize("model", [pytest.param("smallcnn", marks=pytest.mark.slow), "fc"])
def test_stopped_and_resumed_equals_uninterrupted_with_every_option(model, tmp_path):
    _solver(model, tmp_path / "whole").train()
    _solver(model, tmp_path / "resumed", callbacks=[StopAfter(2)]).train()
    assert load_checkpoint(tmp_path / "resumed" / "last.npz").state["epoch"] == 2
    resumed = _solver(model, tmp_path / "resumed", resume=True)
    assert resumed.epoch == 2
    resumed.train()
    for name in ("last.npz", "best.npz"):
        _assert_same_checkpoint(tmp_path / "whole" / name, tmp_path / "resumed" / name)
    states = load_checkpoint(tmp_path / "whole" / "last.npz").state["callbacks"]
    assert [s["type"] for s in states] == ["Lookahead", "EMA"] and states[1]["state"]["updates"] > 0


def test_lookahead_and_ema_state_survive_a_checkpoint(tmp_path):
    """The fast one: one epoch of smallcnn, stopped, its callbacks' state reloaded as it was."""
    solver = _solver("smallcnn", tmp_path, callbacks=[StopAfter(1)])
    solver.train()
    lookahead, ema = [c for c in solver.callbacks if type(c).__name__ in ("Lookahead", "EMA")]
    resumed = _solver("smallcnn", tmp_path, resume=True)
    lookahead2, ema2 = [c for c in resumed.callbacks if type(c).__name__ in ("Lookahead", "EMA")]
    assert ema2.updates == ema.updates > 0
    for name in ema.average:
        np.testing.assert_array_equal(ema2.average[name], ema.average[name])
    for name in lookahead.slow:
        np.testing.assert_array_equal(lookahead2.slow[name], lookahead.slow[name])


def test_a_checkpoint_with_other_stateful_callbacks_is_refused(tmp_path):
    _solver("smallcnn", tmp_path, callbacks=[StopAfter(1)]).train()
    at = EVERYTHING.index("--lookahead")
    without = EVERYTHING[:at] + EVERYTHING[at + 4 :]  # no --lookahead 3 --ema 0.9
    args = build_parser().parse_args(["train", "--epochs", "4", *without, *MODELS["smallcnn"], "--resume"])
    args.dataset, args.path = "digits", None
    prepared = prepare(data.load_digits(), args.val_size, seed=args.seed)
    with pytest.raises(CheckpointError, match=r"callbacks \(Lookahead, EMA\) differ from this run's \(none\)"):
        make_solver(train_config(args), prepared, tmp_path)
