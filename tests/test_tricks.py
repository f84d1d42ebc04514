import numpy as np
import pytest

from numcnn import models, nn, ops
from numcnn.train.solver import Solver
from numcnn.train.tricks import (
    EMA,
    AlternatingFlip,
    FreezeAfter,
    Lookahead,
    image_patches,
    patch_whitening,
    tta_scores,
)


class ConstantGradient:
    """loss(X, y) with the same gradient every step: updates are easy to follow by hand."""

    def __init__(self):
        self.params = {"a": np.zeros(3), "b": np.zeros(2)}

    def loss(self, X, y=None):
        if y is None:
            return np.zeros((len(X), 2))
        return 1.0, {"a": np.ones(3), "b": -np.ones(2)}


def _data(n=8):
    X = np.zeros((n, 1))
    return {"X_train": X, "y_train": np.zeros(n, int), "X_val": X, "y_val": np.zeros(n, int)}


def _solver(model, **kwargs):
    return Solver(
        model,
        _data(),
        update_rule="sgd",
        optim_config={"learning_rate": 0.1},
        batch_size=4,
        num_epochs=1,
        verbose=False,
        seed=0,
        restore_best=False,
        **kwargs,
    )


def test_lookahead_moves_a_fraction_of_the_way_every_k_steps():
    model = ConstantGradient()
    solver = _solver(model, callbacks=[Lookahead(k=2, alpha=0.5)])
    solver.num_epochs = 2  # 4 steps: fast weights go -0.1 per step, slow ones catch up half way every 2
    solver.train()
    # slow starts at -0.1 (after step 1); step 2: fast -0.2 -> slow -0.15; step 4: fast -0.35 -> slow -0.25
    np.testing.assert_allclose(model.params["a"], -0.25)
    np.testing.assert_allclose(model.params["b"], 0.25)


class Counting(ConstantGradient):
    """ConstantGradient with a buffer that counts the steps (as batch norm's statistics move)."""

    def __init__(self):
        super().__init__()
        self.buffers = {"seen": np.zeros(1), "count": np.zeros(1, np.int64)}

    def loss(self, X, y=None):
        if y is not None:
            self.buffers["seen"] = self.buffers["seen"] + 1.0
        return super().loss(X, y)


def test_lookahead_on_airbenchs_schedule_by_hand():
    """start_epoch 1, alpha from progress, buffers averaged, fast <- slow at each epoch's end."""
    model = Counting()
    seen_at_evaluation = []
    record = type("Record", (), {"on_evaluate": lambda self, s: seen_at_evaluation.append(model.params["a"][0])})()
    lookahead = Lookahead(2, alpha=lambda p: p, start_epoch=1, buffers=True, at_epoch_end=True)
    solver = _solver(model, callbacks=[lookahead, record])
    solver.num_epochs = 3  # 2 steps an epoch, 6 in all; fast weights move -0.1 a step
    solver.train()
    # epoch 0 (steps 1-2): no slow copy yet. Epoch 1: step 3 is not a 2nd step; step 4 takes the copy (-0.4, seen 4).
    # Epoch 2: step 6 (p = 1): slow += 1 * (fast - slow) = fast = -0.6 -- then the epoch's end copies it back.
    np.testing.assert_allclose(seen_at_evaluation, [-0.1, -0.2, -0.4, -0.6])
    # now alpha 0.5 instead: step 6 puts slow half way from -0.4 to -0.6; the epoch's end makes fast = slow
    model = Counting()
    lookahead = Lookahead(2, alpha=lambda p: 0.5 * p, start_epoch=1, buffers=True, at_epoch_end=True)
    solver = _solver(model, callbacks=[lookahead])
    solver.num_epochs = 3
    solver.train()
    np.testing.assert_allclose(model.params["a"], -0.5)
    np.testing.assert_allclose(model.buffers["seen"], 5.0)  # half way from 4 to 6 steps seen
    assert "buffer:count" not in lookahead.slow and model.buffers["count"].dtype == np.int64
    with pytest.raises(ValueError, match="0 < alpha <= 1"):
        Lookahead(2, alpha=1.5)


def test_freeze_after_trains_for_some_epochs_then_freezes():
    model = ConstantGradient()
    solver = _solver(model, callbacks=[FreezeAfter("b", 1)])
    solver.num_epochs = 3  # 2 steps an epoch
    solver.train()
    np.testing.assert_allclose(model.params["a"], -0.6)
    np.testing.assert_allclose(model.params["b"], 0.2)  # 2 steps of +0.1, then frozen
    with pytest.raises(ValueError, match="freeze: 'c' matches no parameter; they are a, b"):
        solver.freeze("c")


def test_alternating_flip_mirrors_a_fixed_half_then_everything_every_other_epoch():
    model = ConstantGradient()
    data = _data(8)
    X = np.arange(8 * 3, dtype=float).reshape(8, 1, 1, 3)  # each image a row [a, a+1, a+2]
    data["X_train"] = X.copy()
    views = []
    keep = type("Keep", (), {"on_epoch_begin": lambda self, s: views.append(s.X_train.copy())})()
    solver = Solver(model, data, update_rule="sgd", batch_size=4, num_epochs=3, verbose=False, seed=0,
                    callbacks=[AlternatingFlip(seed=1), keep])  # fmt: skip
    solver.train()
    half = np.random.default_rng(1).random(8) < 0.5
    base = np.where(half[:, None, None, None], X[..., ::-1], X)
    assert 0 < half.sum() < 8
    np.testing.assert_array_equal(views[0], base)
    np.testing.assert_array_equal(views[1], base[..., ::-1])  # the odd epoch: every image the other way
    np.testing.assert_array_equal(views[2], base)


def test_frozen_parameters_stay_and_lr_scale_scales_their_steps():
    model = ConstantGradient()
    _solver(model, frozen=["b"], lr_scale={"a": 0.5}).train()
    np.testing.assert_allclose(model.params["a"], -0.1)  # 2 steps of 0.05
    np.testing.assert_array_equal(model.params["b"], 0.0)


def test_ema_tracks_the_average_and_swaps_back_and_forth():
    model = ConstantGradient()
    ema = EMA(decay=0.5)
    _solver(model, callbacks=[ema]).train()
    # weights after steps 1, 2: -0.1, -0.2; the average starts at -0.1, then decays with
    # min(0.5, (1 + 1) / (10 + 1)) = 2/11 (the warm-up): 2/11 * -0.1 + 9/11 * -0.2
    expected = 2 / 11 * -0.1 + 9 / 11 * -0.2
    np.testing.assert_allclose(ema.average["a"], expected)
    ema.swap(model)
    np.testing.assert_allclose(model.params["a"], expected)
    ema.swap(model)
    np.testing.assert_allclose(model.params["a"], -0.2)
    ema.apply(model)
    np.testing.assert_allclose(model.params["a"], expected)
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\)"):
        EMA(1.0)


def test_patch_whitening_decorrelates_patches():
    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((3, 3))
    X = np.einsum("ij,njhw->nihw", mixing, rng.standard_normal((40, 3, 8, 8)))  # correlated channels
    X = X + np.roll(X, 1, axis=3)  # and correlated neighbours
    filters = patch_whitening(X, size=2, eps=0.0)
    assert filters.shape == (24, 3, 2, 2)
    features, _ = ops.conv2d_forward(X, filters[:12], None)
    rows = features.transpose(0, 2, 3, 1).reshape(-1, 12)
    np.testing.assert_allclose(rows.T @ rows / len(rows), np.eye(12), atol=1e-8)
    np.testing.assert_allclose(filters[12:], -filters[:12])
    assert image_patches(X, 2).shape == (40 * 7 * 7, 12)


def test_tta_averages_the_views():
    nn.manual_seed(0)
    model = models.Classifier(models.build("smallcnn", num_classes=3, in_channels=3, width=4))
    X = np.random.default_rng(0).standard_normal((5, 3, 8, 8)).astype(np.float32)
    plain = model.loss(X)
    np.testing.assert_allclose(tta_scores(model, X, "none"), plain, rtol=1e-5)
    np.testing.assert_allclose(tta_scores(model, X, "flip"), (plain + model.loss(X[..., ::-1].copy())) / 2, rtol=1e-5)
    assert tta_scores(model, X, "flip-translate").shape == (5, 3)
    with pytest.raises(ValueError, match="mode must be"):
        tta_scores(model, X, "rotate")


def test_label_smoothing_through_the_classifier():
    nn.manual_seed(0)
    net = models.build("smallcnn", num_classes=4, in_channels=1, width=4)
    X, y = np.random.default_rng(0).standard_normal((6, 1, 8, 8)).astype(np.float32), np.arange(6) % 4
    smooth, _ = models.Classifier(net, label_smoothing=0.2).loss(X, y)
    net.train()
    expected, _ = ops.softmax_loss(net(X), y, label_smoothing=0.2)
    assert smooth == pytest.approx(expected, rel=1e-5)


def test_whitening_the_first_conv_of_airbench_and_freezing_it():
    from numcnn.train.build import whiten_first_conv
    from numcnn.train.config import UserError

    nn.manual_seed(0)
    model = models.Classifier(models.build("airbench", widths=(8, 8, 8), whiten_width=24))
    X = np.random.default_rng(0).standard_normal((20, 3, 32, 32)).astype(np.float32)
    name = whiten_first_conv(model, X)
    assert name == "whiten.weight"
    np.testing.assert_allclose(model.params[name], patch_whitening(X, 2), rtol=1e-5, atol=1e-6)
    data = {"X_train": X, "y_train": np.arange(20) % 10, "X_val": X[:4], "y_val": np.arange(4)}
    before = model.params[name].copy()
    Solver(
        model, data, update_rule="nesterov", batch_size=10, num_epochs=1, verbose=False, seed=0, frozen=[name]
    ).train()
    np.testing.assert_array_equal(model.params[name], before)
    with pytest.raises(UserError, match="2\\*C\\*k\\*k = 18 filters"):
        whiten_first_conv(models.Classifier(models.build("smallcnn", in_channels=1)), X[:, :1])


def test_frozen_weights_leave_the_l2_term():
    """numcnn train --whiten: the frozen whitening filters add no constant to the reported loss."""
    from numcnn.cli import build_parser, train_config
    from numcnn.train.dataprep import Prepared
    from numcnn.train.run import make_solver

    args = build_parser().parse_args(
        [
            "train",
            "--model",
            "airbench",
            "--whiten",
            "--freeze-bn-weight",
            "--weight-decay",
            "5e-4",
            "--quiet",
            "--epochs",
            "1",
        ]
    )
    args.dataset, args.path = "cifar10", None
    rng = np.random.default_rng(0)
    X = rng.standard_normal((24, 3, 32, 32)).astype(np.float32)
    y = np.arange(24) % 10
    prepared = Prepared(X, y, X[:4], y[:4], X[:4], y[:4], [str(c) for c in range(10)], np.zeros(3), np.ones(3))
    nn.manual_seed(0)
    solver, _ = make_solver(train_config(args), prepared)
    assert "whiten.weight" in solver.frozen and "whiten.weight" not in solver.model.regularized
    assert "group1.conv1.weight" in solver.model.regularized
