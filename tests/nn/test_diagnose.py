"""first_nonfinite names the layer where a NaN or inf is born; the Solver's NaN guard reports it."""

import numpy as np
import pytest

from numcnn import models, nn
from numcnn.train.solver import Solver, TrainingDiverged

# the diverging forwards overflow on purpose
pytestmark = pytest.mark.filterwarnings("ignore:overflow|invalid value:RuntimeWarning")


def _net(rng):
    return nn.Sequential(
        nn.Linear(4, 6, rng=rng),
        nn.ReLU(),
        nn.Residual(nn.Sequential(nn.Linear(6, 6, rng=rng), nn.Scale(1.0)), activation=True),
        nn.BatchNorm1d(6),
        nn.Dropout(0.5, rng=rng),
        nn.Linear(6, 3, rng=rng),
    )


def _x(n=8):
    return np.random.default_rng(1).standard_normal((n, 4)).astype(np.float32)


def test_a_finite_network_has_no_culprit():
    assert nn.first_nonfinite(_net(np.random.default_rng(0)), _x()) is None


def test_a_non_finite_parameter_names_its_layer():
    net = _net(np.random.default_rng(0))
    net[5].params["weight"][1, 2] = np.nan
    name, module = nn.first_nonfinite(net, _x())
    assert (name, module) == ("5", net[5])


def test_an_overflowing_output_deep_inside_a_residual_is_named_by_its_dotted_path():
    net = _net(np.random.default_rng(0))
    net[2].body[1].factor = 1e300  # beyond float32: the body's output overflows, no parameter is bad
    name, module = nn.first_nonfinite(net, _x())
    assert name == "2.body.1" and isinstance(module, nn.Scale)


def test_a_residual_whose_sum_overflows_is_named_itself():
    net = nn.Sequential(nn.Residual(nn.Identity(), activation=False))
    x = np.full((2, 3), 2e38, np.float32)  # each branch finite, the sum is not
    name, module = nn.first_nonfinite(net, x)
    assert name == "0" and module is net[0]


def test_the_search_changes_no_state():
    """Running statistics, random generators and a pending forward cache survive the extra forward."""
    rng = np.random.default_rng(0)
    net = _net(rng)
    net(_x())  # a forward whose backward is still to come
    stats = {k: v.copy() for k, v in net[3].buffers.items()}
    rng_state = rng.bit_generator.state
    net[5].params["weight"][0, 0] = np.inf
    assert nn.first_nonfinite(net, _x())[0] == "5"
    for key, value in stats.items():
        np.testing.assert_array_equal(net[3].buffers[key], value)
    assert rng.bit_generator.state == rng_state
    net.backward(np.ones((8, 3), np.float32))  # the cache of the first forward is still there


def _data(n=32, d=4):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = rng.integers(0, 3, n)
    return dict(X_train=X, y_train=y, X_val=X[:8], y_val=y[:8])


def test_the_solver_names_the_layer_that_made_the_nan():
    net = _net(np.random.default_rng(0))
    net[2].body[1].factor = 1e300
    solver = Solver(models.Classifier(net), _data(), num_epochs=1, batch_size=8, verbose=False)
    with pytest.raises(
        TrainingDiverged,
        match=r"the loss is nan at step 1 \(epoch 1\): the first non-finite "
        r"value is in the output of layer 2\.body\.1 \(Scale\)",
    ):
        solver.train()


def test_the_solver_names_the_first_non_finite_parameter_of_a_cs231n_model():
    np.random.seed(0)
    model = models.TwoLayerNet(input_dim=4, hidden_dim=5, num_classes=3)
    model.params["W2"][0, 0] = np.nan
    solver = Solver(model, _data(), num_epochs=1, batch_size=8, verbose=False)
    with pytest.raises(TrainingDiverged, match="the first non-finite parameter is W2"):
        solver.train()


def test_a_non_finite_input_batch_is_reported_as_such():
    data = _data()
    data["X_train"][:] = np.nan
    solver = Solver(models.Classifier(_net(np.random.default_rng(0))), data, num_epochs=1, batch_size=8, verbose=False)
    with pytest.raises(TrainingDiverged, match="the input batch itself holds non-finite values"):
        solver.train()
