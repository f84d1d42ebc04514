"""Every option of `numcnn train` crossed with every model: it acts, or it is refused with one line.

Each case trains 2 epochs of 3 steps on a few synthetic images of the model's size
(digits-sized, 1x8x8, where the model takes them) with and without the option, and
compares what the option should change: the losses, the weights after the last step as
evaluation sees them (with --ema, the average), the parameter count, or the test scores.
"""

import numpy as np
import pytest

from numcnn import nn
from numcnn.cli import build_parser, train_config
from numcnn.train.config import UserError, model_names
from numcnn.train.dataprep import Prepared
from numcnn.train.run import make_solver, predict

BIG_IMAGES = ("airbench", "vgg11", "resnet18")  # their pooling needs 32x32 inputs (resnet18: 96x96)
FC_MODELS = ("fc", "twolayer")
BASE = ["train", "--epochs", "2", "--batch-size", "4", "--optimizer", "sgd", "--lr", "0.05", "--quiet"]

# option -> (arguments of the run it is compared with, the option's own arguments)
ACTING = {
    "--lr": ([], ["--lr", "0.02"]),
    "--optimizer": ([], ["--optimizer", "adam"]),
    "--momentum": (["--optimizer", "nesterov"], ["--momentum", "0.5"]),
    "--weight-decay": ([], ["--weight-decay", "0.1"]),
    "--decoupled": (["--optimizer", "nesterov", "--weight-decay", "0.1"], ["--decoupled"]),
    "--schedule": ([], ["--schedule", "cosine"]),
    "--lr-decay": (["--schedule", "step"], ["--lr-decay", "0.5"]),
    "--warmup": (["--schedule", "warmup"], ["--warmup", "0.5"]),
    "--augment": ([], ["--augment", "flip"]),
    "--label-smoothing": ([], ["--label-smoothing", "0.5"]),
    "--lookahead": ([], ["--lookahead", "2"]),
    "--ema": ([], ["--ema", "0.5"]),
    "--grad-clip": ([], ["--grad-clip", "1e-3"]),
    "--freeze": ([], ["--freeze", "*"]),
    "--seed": ([], ["--seed", "1"]),
    "--batch-size": ([], ["--batch-size", "3"]),
    "--width": ([], ["--width", "6"]),
    "--hidden": ([], ["--hidden", "7"]),
    "--norm": ([], ["--norm", "layernorm"]),
    "--dropout": ([], ["--dropout", "0.5"]),
    "--freeze-bn-weight": ([], ["--freeze-bn-weight"]),
    "--whiten": ([], ["--whiten"]),
}
# which models refuse a model-specific option (every other model must act on it)
REFUSED_BY = {
    "--width": set(FC_MODELS),
    "--hidden": set(model_names()) - {"fc", "twolayer", "threelayer"},
    "--norm": set(model_names()) - {"fc"},
    "--dropout": set(model_names()) - {"fc"},
    "--freeze-bn-weight": {"fc", "twolayer", "threelayer"},  # fc has batch norm only with --norm batchnorm
    "--whiten": set(model_names()) - {"airbench"},  # needs a first conv of 2*C*k*k filters
}
# option -> (arguments, what the refusal names): refused whatever the model
REFUSED_EVERYWHERE = {
    "--momentum": (["--momentum", "0.5"], "--momentum applies to sgd_momentum and nesterov"),
    "--decoupled": (["--optimizer", "adam", "--decoupled"], "--decoupled applies to sgd"),
    "--lr-decay": (["--lr-decay", "0.5"], "--lr-decay applies to --schedule step"),
    "--warmup": (["--schedule", "cosine", "--warmup", "2"], "--warmup applies to --schedule warmup"),
    "--data-dir": (["--data-dir", "somewhere"], "--data-dir applies to mnist, fashion and cifar10"),
    "--download": (["--download"], "--download applies to mnist, fashion and cifar10"),
    "--freeze": (["--freeze", "no_such_parameter"], "matches no parameter"),
    "--image-size": (["--image-size", "8"], "--image-size applies to --dataset folder"),
}
# options that act through the model (the others act through the Solver, the same for every model)
MODEL_SPECIFIC = {"--width", "--hidden", "--norm", "--dropout", "--freeze-bn-weight", "--whiten", "--label-smoothing"}
HUGE = {"vgg11"}  # two 4096-wide layers: a second per step, so only MODEL_SPECIFIC options are crossed
TEST_TIME = {"--tta"}  # acts on the test predictions: test_tta_changes_every_models_test_scores
RUN_LEVEL = {"--model", "--dataset", "--epochs", "--val-size", "--out", "--resume", "--time-budget", "--quiet"}
RUN_LEVEL |= {"--tensorboard"}  # writes what the run does, changes nothing: tests/train/test_tensorboard.py
RUN_LEVEL |= {"--workers"}  # changes only rounding: tests/train/test_parallel_*.py cross it with the models
SLOW_MODELS = {"resnet20", "resnet32", "resnet56", "resnet18", "airbench", "vgg11"}  # over 5 s each


def _models():
    return [pytest.param(m, marks=pytest.mark.slow) if m in SLOW_MODELS else m for m in model_names()]


def _prepared(model):
    shape = (3, 32, 32) if model in BIG_IMAGES else (1, 8, 8)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((18, *shape)).astype(np.float32)
    y = np.arange(18) % 10
    return Prepared(
        X[:12],
        y[:12],
        X[12:16],
        y[12:16],
        X[16:],
        y[16:],
        [str(c) for c in range(10)],
        np.zeros(shape[0]),
        np.ones(shape[0]),
    )


def _base(model):
    return BASE + ["--model", model] + ([] if model in FC_MODELS else ["--width", "4"])


def _train(argv, prepared):
    """(losses, the weights evaluated after the last step, parameter count) of a short run.

    The last step's weights, not the best evaluation's (which may be the first step's, where
    an average equals the live weights), as the evaluation sees them (with --ema, averaged).
    """
    args = build_parser().parse_args(argv)
    args.dataset, args.path = "digits", None
    nn.manual_seed(0)
    np.random.seed(0)
    solver, _ = make_solver(train_config(args), prepared)
    solver.restore_best = False
    solver.train()
    with solver.evaluation_weights():
        params = {k: np.array(v) for k, v in solver.model.params.items()}
    return np.array(solver.loss_history), params, sum(v.size for v in params.values())


def _same(a, b):
    losses_a, params_a, count_a = a
    losses_b, params_b, count_b = b
    return (
        count_a == count_b
        and losses_a.shape == losses_b.shape
        and np.array_equal(losses_a, losses_b)
        and all(np.array_equal(params_a[k], params_b[k]) for k in params_a)
    )


def test_every_train_option_is_in_this_matrix():
    """A new option of `numcnn train` must be classified here, and so crossed with every model."""
    defaults = vars(build_parser().parse_args(["train"]))
    options = {"--" + name.replace("_", "-") for name in defaults} - {"--run", "--command"}
    assert options == set(ACTING) | set(REFUSED_EVERYWHERE) | TEST_TIME | RUN_LEVEL


@pytest.mark.parametrize("model", _models())
def test_each_option_acts_on_the_model_or_is_refused(model):
    prepared = _prepared(model)
    baselines = {}
    for option, (context, arguments) in ACTING.items():
        if model in HUGE and option not in MODEL_SPECIFIC:
            continue
        base = _base(model) + context
        try:
            result = _train(base + arguments, prepared)
        except UserError as error:
            assert model in REFUSED_BY.get(option, ()), f"{option} refused for {model}: {error}"
            assert option in str(error) and "\n" not in str(error)
            continue
        assert model not in REFUSED_BY.get(option, ()), f"{option} accepted by {model}, expected a refusal"
        key = tuple(base)
        if key not in baselines:
            baselines[key] = _train(base, prepared)
        assert not _same(result, baselines[key]), f"{option} changed nothing for {model}"


@pytest.mark.parametrize("option", sorted(REFUSED_EVERYWHERE))
def test_options_that_the_rule_schedule_or_dataset_ignores_are_refused(option):
    arguments, message = REFUSED_EVERYWHERE[option]
    with pytest.raises(UserError, match=message):
        _train(_base("smallcnn") + arguments, _prepared("smallcnn"))


def test_freeze_bn_weight_freezes_fcs_batch_norm_scales():
    args = build_parser().parse_args(BASE + ["--model", "fc", "--norm", "batchnorm", "--freeze-bn-weight"])
    args.dataset, args.path = "digits", None
    solver, _ = make_solver(train_config(args), _prepared("fc"))
    assert sorted(solver.frozen) == ["gamma1", "gamma2"]


@pytest.mark.parametrize("model", _models())
def test_tta_changes_every_models_test_scores(model):
    prepared = _prepared(model)
    args = build_parser().parse_args(_base(model))
    args.dataset, args.path = "digits", None
    nn.manual_seed(0)
    np.random.seed(0)
    solver, _ = make_solver(train_config(args), prepared)
    plain = predict(solver.model, prepared.X_test, "none")
    assert not np.allclose(predict(solver.model, prepared.X_test, "flip"), plain)


def test_label_smoothing_reaches_the_assignments_models():
    """The issue's case: threelayer's first loss was 2.302654 with or without --label-smoothing 0.5."""
    prepared = _prepared("threelayer")
    plain = _train(BASE + ["--model", "threelayer"], prepared)[0][0]
    smoothed = _train(BASE + ["--model", "threelayer", "--label-smoothing", "0.5"], prepared)[0][0]
    assert plain == pytest.approx(np.log(10), abs=1e-3) and smoothed == pytest.approx(np.log(10), abs=1e-3)
    assert smoothed != plain
