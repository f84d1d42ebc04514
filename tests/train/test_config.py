"""TrainConfig: every `numcnn train` option, checked once, whoever builds it (CLI, sweep, Python)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from numcnn.cli import build_parser, train_config
from numcnn.train.config import CHANGEABLE_ON_RESUME, TrainConfig, UserError


def test_every_train_option_is_a_field_with_the_parsers_default():
    parsed = vars(build_parser().parse_args(["train"]))
    options = set(parsed) - {"run", "command", "out"}
    assert set(TrainConfig.option_names()) == options | {"path"}
    config, defaults = TrainConfig(), train_config(build_parser().parse_args(["train"]))
    assert config == defaults


def test_the_checkpoint_options_keep_the_keys_and_values_numcnn_wrote_before():
    """Old run folders resume: their metadata "options" was json(vars(args)) less these keys."""
    args = build_parser().parse_args(
        [
            "train",
            "--model",
            "fc",
            "--hidden",
            "64,32",
            "--freeze",
            "W1",
            "--dataset",
            "folder",
            "/tmp/pictures",
            "--val-size",
            "20",
        ]
    )
    config = train_config(args)
    args.dataset, args.path, args.val_size = "folder", Path("/tmp/pictures"), 20
    excluded = set(CHANGEABLE_ON_RESUME) | {"run", "command", "out", "resume"}
    before = json.loads(json.dumps({k: v for k, v in sorted(vars(args).items()) if k not in excluded}, default=str))
    assert config.options() == before
    assert config.options()["hidden"] == [64, 32] and config.options()["val_size"] == 20


@pytest.mark.parametrize(
    "options, message",
    [
        ({"lr": float("nan")}, "--lr must be a finite number above 0, got nan"),
        ({"momentum": 0.9}, "--momentum applies to sgd_momentum and nesterov; adam has no momentum term"),
        ({"model": "smallcnn", "hidden": (10,)}, "--hidden applies to threelayer, fc, twolayer"),
        ({"val_size": 1.5}, "--val-size is a fraction in (0, 1) or a whole number of images, got 1.5"),
        ({"epochs": "3"}, "--epochs must be a whole number, got '3'"),
    ],
)
def test_a_config_no_run_can_use_is_refused_with_the_clis_line(options, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**options)


def test_a_sweeps_trial_config_is_its_fixed_options_under_the_trials_values():
    from numcnn.sweep.runner import trial_config

    base = {**TrainConfig().__dict__, "model": "fc", "pruner": "median", "quiet": True}
    config = trial_config(base, {"lr": 0.01, "hidden": (32,)})
    assert (config.model, config.lr, config.hidden, config.quiet) == ("fc", 0.01, (32,), True)
    with pytest.raises(UserError, match="--momentum applies"):
        trial_config(base, {"momentum": 0.5})
