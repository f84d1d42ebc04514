"""Data-parallel workers forked after the parent ran the compiled direct convolution.

Numba's OpenMP pool (numba.prange) kills a process forked after it ran; the
direct kernels therefore run serially and numcnn's threads split the images.
"""

import numpy as np
import pytest

from numcnn import models, nn, ops
from numcnn.ops import engine
from numcnn.ops.engine import direct
from numcnn.train import Solver

pytestmark = pytest.mark.skipif(not direct.available(), reason="Numba is not installed (pip install numcnn[numba])")


def thin_network():
    nn.manual_seed(0)
    return models.Classifier(
        nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, dtype=np.float64),
            nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1, dtype=np.float64),
            nn.ReLU(),
            nn.GlobalAvgPool2d(),
            nn.Flatten(),
            nn.Linear(16, 10, dtype=np.float64),
        )
    )


def test_workers_forked_after_the_direct_engine_ran_train_as_one_worker_does():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 16, 8, 8)), rng.standard_normal((16, 16, 3, 3))
    with engine.use("direct"):
        ops.conv2d_forward(x, w, None, pad=1)  # the parent has run the compiled kernels
    data = {
        "X_train": rng.standard_normal((48, 3, 8, 8)),
        "y_train": rng.integers(0, 10, 48),
        "X_val": rng.standard_normal((16, 3, 8, 8)),
        "y_val": rng.integers(0, 10, 16),
    }
    histories = []
    for workers in (1, 2):
        model = thin_network()
        options = dict(batch_size=16, num_epochs=1, verbose=False, update_rule="sgd_momentum", seed=0)
        with engine.use("direct"):
            solver = Solver(model, data, workers=workers, **options)
            solver.train()
        histories.append(solver.loss_history)
    assert len(histories[1]) == 3
    np.testing.assert_allclose(histories[1], histories[0], rtol=1e-10)
