"""The assignment's models: published numbers, gradient checks, overfitting."""

import numpy as np
import pytest

from numcnn.gradcheck import eval_numerical_gradient, rel_error
from numcnn.models import FullyConnectedNet, ThreeLayerConvNet, TwoLayerNet
from training import overfit


def test_two_layer_net_reproduces_the_notebooks_scores_and_losses():
    N, D, H, C = 3, 5, 50, 7
    model = TwoLayerNet(input_dim=D, hidden_dim=H, num_classes=C, weight_scale=1e-3)
    model.params["W1"] = np.linspace(-0.7, 0.3, num=D * H).reshape(D, H)
    model.params["b1"] = np.linspace(-0.1, 0.9, num=H)
    model.params["W2"] = np.linspace(-0.3, 0.4, num=H * C).reshape(H, C)
    model.params["b2"] = np.linspace(-0.9, 0.1, num=C)
    X = np.linspace(-5.5, 4.5, num=N * D).reshape(D, N).T
    correct_scores = np.asarray(
        [
            [11.53165108, 12.2917344, 13.05181771, 13.81190102, 14.57198434, 15.33206765, 16.09215096],
            [12.05769098, 12.74614105, 13.43459113, 14.1230412, 14.81149128, 15.49994135, 16.18839143],
            [12.58373087, 13.20054771, 13.81736455, 14.43418138, 15.05099822, 15.66781506, 16.2846319],
        ]
    )
    assert np.abs(model.loss(X) - correct_scores).sum() < 1e-6
    y = np.asarray([0, 5, 1])
    assert abs(model.loss(X, y)[0] - 3.4702243556) < 1e-10
    model.reg = 1.0
    assert abs(model.loss(X, y)[0] - 26.5948426952) < 1e-10


@pytest.mark.parametrize("reg", [0.0, 0.7])
def test_two_layer_net_gradients(reg):
    np.random.seed(231)
    model = TwoLayerNet(input_dim=5, hidden_dim=50, num_classes=7, weight_scale=1e-2, reg=reg)
    X, y = np.random.randn(3, 5), np.array([0, 5, 1])
    loss, grads = model.loss(X, y)
    for name in sorted(grads):
        numerical = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name])
        assert rel_error(numerical, grads[name]) < 1e-4, name  # finite-difference noise on 1e-9 entries


def test_fully_connected_net_reproduces_the_notebooks_initial_losses_and_errors():
    np.random.seed(231)
    N, D, H1, H2, C = 2, 15, 20, 30, 10
    X = np.random.randn(N, D)
    y = np.random.randint(C, size=(N,))
    published = {0: 2.3004790897684924, 3.14: 7.052114776533016}
    for reg, initial_loss in published.items():
        model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, reg=reg, weight_scale=5e-2, dtype=np.float64)
        loss, grads = model.loss(X, y)
        assert loss == pytest.approx(initial_loss, abs=1e-12)
        for name in sorted(grads):
            numerical = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name])
            # W2's 2.21e-05 at reg 0 is the notebook's too: a ReLU kink within h
            assert rel_error(numerical, grads[name]) < 3e-5, name


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(normalization="batchnorm"),
        dict(normalization="layernorm", reg=0.5),
        dict(dropout_keep_ratio=0.5, seed=123),
        dict(normalization="batchnorm", dropout_keep_ratio=0.75, seed=1),
    ],
)
def test_fully_connected_net_gradients_with_norms_and_dropout(kwargs):
    np.random.seed(231)
    N, D, H1, H2, C = 10, 15, 20, 30, 10
    X = np.random.randn(N, D)
    y = np.random.randint(C, size=(N,))
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, weight_scale=5e-2, dtype=np.float64, **kwargs)
    loss, grads = model.loss(X, y)
    for name in sorted(grads):
        numerical = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name])
        if kwargs.get("normalization") == "batchnorm" and name in ("b1", "b2"):
            # batch norm subtracts the batch mean: biases before it have zero gradient
            assert np.abs(grads[name]).max() < 1e-12 and np.abs(numerical).max() < 1e-8
        else:
            assert rel_error(numerical, grads[name]) < 1e-5, name


def test_fully_connected_net_keeps_the_assignments_parameters_and_dtype():
    model = FullyConnectedNet([4, 3], input_dim=5, num_classes=2, normalization="batchnorm")
    assert sorted(model.params) == ["W1", "W2", "W3", "b1", "b2", "b3", "beta1", "beta2", "gamma1", "gamma2"]
    assert all(v.dtype == np.float32 for v in model.params.values())
    assert len(model.bn_params) == 2
    with pytest.raises(ValueError, match="normalization must be None, 'batchnorm' or 'layernorm'"):
        FullyConnectedNet([4], normalization="groupnorm")


@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
def test_float32_networks_train_in_float32_with_dropout(normalization):
    """Gradients keep the parameters' dtype: a float64 dropout mask once doubled the cost of every step."""
    model = FullyConnectedNet(
        [6, 5], input_dim=12, num_classes=3, dropout_keep_ratio=0.7, normalization=normalization, seed=0
    )
    X = np.random.default_rng(0).standard_normal((8, 3, 2, 2)).astype(np.float32)
    loss, grads = model.loss(X, np.arange(8) % 3)
    assert {name: g.dtype for name, g in grads.items()} == {name: np.dtype(np.float32) for name in model.params}
    assert model.loss(X).dtype == np.float32


def test_three_layer_conv_net_initial_losses_as_in_the_notebook():
    np.random.seed(0)
    model = ThreeLayerConvNet()
    X = np.random.randn(50, 3, 32, 32)
    y = np.random.randint(10, size=50)
    loss, _ = model.loss(X, y)
    assert loss == pytest.approx(2.302585412176879, abs=2e-3)  # log(10)
    model.reg = 0.5
    loss, _ = model.loss(X, y)
    assert loss == pytest.approx(2.508542482169898, abs=5e-3)  # + 0.25 * sum(W**2), W ~ N(0, 1e-6)


def test_three_layer_conv_net_gradient_check_reproduces_the_notebook():
    """Same seed, same draws, same arithmetic: the notebook's printed errors, digit for digit."""
    np.random.seed(231)
    X = np.random.randn(2, 3, 16, 16)
    y = np.random.randint(10, size=2)
    model = ThreeLayerConvNet(num_filters=3, filter_size=3, input_dim=(3, 16, 16), hidden_dim=7, dtype=np.float64)
    loss, grads = model.loss(X, y)
    published = {
        "W1": 1.380104e-04,
        "W2": 1.822723e-02,
        "W3": 3.064049e-04,
        "b1": 3.477652e-05,
        "b2": 2.516375e-03,
        "b3": 7.945660e-10,
    }
    for name in sorted(grads):
        numerical = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name], h=1e-6)
        assert rel_error(numerical, grads[name]) == pytest.approx(published[name], rel=1e-5), name


def test_three_layer_conv_net_refuses_sizes_it_cannot_keep():
    with pytest.raises(ValueError, match="filter_size must be odd"):
        ThreeLayerConvNet(filter_size=4)


@pytest.mark.parametrize(
    "make, shape, steps, lr",
    [
        (lambda: TwoLayerNet(input_dim=48, hidden_dim=50, weight_scale=1e-2), (50, 48), 200, 1e-2),
        (
            lambda: FullyConnectedNet([50, 50], input_dim=48, normalization="batchnorm", weight_scale=5e-2),
            (50, 48),
            200,
            1e-2,
        ),
        (
            lambda: ThreeLayerConvNet(input_dim=(3, 16, 16), num_filters=8, hidden_dim=50, weight_scale=1e-2),
            (50, 3, 16, 16),
            150,
            1e-3,
        ),
    ],
)
def test_models_overfit_50_examples(make, shape, steps, lr):
    np.random.seed(0)
    model = make()
    rng = np.random.default_rng(0)
    X = rng.standard_normal(shape)
    y = rng.integers(0, 10, 50)
    assert overfit(model, X, y, steps=steps, lr=lr) == 1.0
