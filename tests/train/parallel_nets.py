"""Small models and data for the data-parallel tests (tests/train/test_parallel_*.py)."""

from __future__ import annotations

import numpy as np

from numcnn import models, nn
from numcnn.train import Solver
from numcnn.train.dataprep import make_augment
from numcnn.train.parallel.model_state import model_arrays

SHAPE = (1, 8, 8)


def data(n_train=96, n_val=40, seed=0, dtype=np.float32) -> dict:
    """Digits-sized images whose class is readable from them (so training moves the loss)."""
    rng = np.random.default_rng(seed)
    n = n_train + n_val
    y = rng.integers(0, 10, n)
    X = rng.standard_normal((n, *SHAPE)).astype(dtype)
    X[np.arange(n), 0, y % 8, y // 8 * 3] += 3.0
    return {"X_train": X[:n_train], "y_train": y[:n_train], "X_val": X[n_train:], "y_val": y[n_train:]}


def threelayer(dtype=np.float32):
    np.random.seed(1)
    return models.ThreeLayerConvNet(
        input_dim=SHAPE, num_filters=4, filter_size=3, hidden_dim=16, weight_scale=0.1, reg=1e-3, dtype=dtype
    )


def module_net(dtype=np.float32, batchnorm=False, dropout=0.0):
    """conv - [bn] - relu - pool - flatten - [dropout] - linear, as a Classifier."""
    nn.manual_seed(2)
    layers = [nn.Conv2d(1, 4, 3, padding=1)]
    layers += [nn.BatchNorm2d(4)] if batchnorm else []
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()]
    layers += [nn.Dropout(dropout)] if dropout else []
    layers += [nn.Linear(64, 10)]
    net = nn.Sequential(*layers).to(dtype)
    return models.Classifier(net, reg=1e-3)


def fc_net(dtype=np.float32):
    """The assignment's FullyConnectedNet with batch norm and dropout."""
    np.random.seed(4)
    return models.FullyConnectedNet(
        [32, 16], input_dim=64, normalization="batchnorm", dropout_keep_ratio=0.7, reg=1e-3, weight_scale=0.1,
        dtype=dtype,
    )  # fmt: skip


def train(model, workers=1, backend="auto", steps_epochs=2, augment=True, **options) -> Solver:
    """A short seeded run (restore_best off: the parameters are those after the last step).

    SGD with momentum, not Adam: a bias before batch norm has a gradient of exactly 0, which
    N workers compute as rounding noise of about 1e-9; Adam divides it by its own size and
    moves the bias a whole learning rate in the noise's direction, while SGD moves it by 1e-9 * lr.
    """
    solver = Solver(
        model,
        data(dtype=model.params[next(iter(model.params))].dtype),
        update_rule="sgd_momentum",
        optim_config={"learning_rate": 0.05},
        batch_size=24,
        num_epochs=steps_epochs,
        num_train_samples=50,
        seed=3,
        verbose=False,
        restore_best=False,
        augment=make_augment("crop", "digits", SHAPE) if augment else None,
        workers=workers,
        worker_backend=backend,
        **options,
    )
    solver.train()
    return solver


def params(model) -> dict:
    return {k: np.array(v) for k, v in model.params.items()}


def state(model) -> dict:
    """Parameters and running statistics (batch norm's), by name."""
    return {k: np.array(v) for k, v in model_arrays(model).items()}
