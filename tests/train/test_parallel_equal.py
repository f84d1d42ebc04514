"""Data parallelism computes what one worker computes: N = 1 against 2 and 3 workers."""

from __future__ import annotations

import numpy as np
import pytest
from parallel_nets import data, fc_net, module_net, state, threelayer, train

from numcnn.train import Solver
from numcnn.train.parallel import DataParallel, shard_bounds, start_workers

# float64: 1e-10 (the bound); float32: a few units of rounding on values of order 1
TOLERANCE = {np.float64: 1e-10, np.float32: 2e-5}
MODELS = {
    "threelayer": threelayer,
    "module": module_net,
    "module_bn_dropout": lambda dtype: module_net(dtype, batchnorm=True, dropout=0.3),
    "fc_bn_dropout": fc_net,
}


def test_shards_are_contiguous_and_differ_by_at_most_one_row():
    assert shard_bounds(128, 3) == [(0, 43), (43, 86), (86, 128)]
    assert shard_bounds(2, 3) == [(0, 1), (1, 2), (2, 2)]
    assert shard_bounds(7, 1) == [(0, 7)]


@pytest.mark.parametrize("backend", ["processes", "threads"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_training_with_2_and_3_workers_equals_one_worker(kind, dtype, backend):
    make = MODELS[kind]
    one = train(make(dtype))
    for workers in (2, 3):
        many = train(make(dtype), workers, backend)
        tolerance = TOLERANCE[dtype]
        np.testing.assert_allclose(many.loss_history, one.loss_history, rtol=tolerance, atol=tolerance)
        assert len(many.loss_history) == 8 and one.loss_history[-1] < one.loss_history[0]
        for name, value in state(one.model).items():  # parameters and batch norm's running statistics
            np.testing.assert_allclose(state(many.model)[name], value, rtol=tolerance, atol=tolerance, err_msg=name)
        assert many.val_acc_history == one.val_acc_history


@pytest.mark.parametrize("backend", ["processes", "threads"])
@pytest.mark.parametrize("kind", ["threelayer", "module_bn_dropout", "fc_bn_dropout"])
def test_a_run_with_two_workers_is_reproducible_bit_for_bit(kind, backend):
    first, second = train(MODELS[kind](np.float32), 2, backend), train(MODELS[kind](np.float32), 2, backend)
    assert first.loss_history == second.loss_history
    for name, value in state(first.model).items():
        np.testing.assert_array_equal(state(second.model)[name], value)


def test_data_parallel_loss_and_scores_equal_the_models():
    model = module_net(np.float64)
    d = data(dtype=np.float64)
    X, y = d["X_train"][:13], d["y_train"][:13]
    loss, grads = model.loss(X, y)
    scores = model.loss(X[:2])
    with start_workers(model, 3) as comm:
        parallel = DataParallel(model, comm)
        split_loss, split_grads = parallel.loss(X, y)
        split_scores = parallel.loss(X[:2])  # fewer rows than ranks: one rank has none
    assert split_loss == pytest.approx(loss, abs=1e-12)
    for name, grad in grads.items():
        np.testing.assert_allclose(split_grads[name], grad, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(split_scores, scores, atol=1e-12)


@pytest.mark.parametrize("backend", ["processes", "threads"])
def test_batch_norm_running_statistics_equal_one_workers_on_every_rank(backend):
    """Synchronized batch norm: the root's running statistics after a split step are one worker's
    (every rank computes the same ones; workers take the root's at each command), and evaluation
    split over the ranks uses them."""
    model = module_net(np.float64, batchnorm=True, dropout=0.3)
    d = data(dtype=np.float64)
    X, y = d["X_train"][:24], d["y_train"][:24]
    reference = module_net(np.float64, batchnorm=True, dropout=0.3)
    reference.loss(X, y)
    with start_workers(model, 3, backend) as comm:
        parallel = DataParallel(model, comm)
        parallel.loss(X, y)
        np.testing.assert_allclose(parallel.loss(X), reference.loss(X), atol=1e-12)
    for name, value in reference.buffers.items():
        np.testing.assert_allclose(model.buffers[name], value, atol=1e-12, err_msg=name)


def test_workers_option_is_checked():
    model, d = threelayer(), data()
    with pytest.raises(ValueError, match="workers must be a positive int"):
        Solver(model, d, workers=0)
    with pytest.raises(ValueError, match="batch_size 2 cannot be split over 3 workers"):
        Solver(model, d, workers=3, batch_size=2)
    with pytest.raises(ValueError, match="worker_backend must be one of"):
        Solver(model, d, workers=2, worker_backend="gpu")


def test_a_model_that_cannot_be_split_is_refused_when_the_solver_is_built(monkeypatch):
    import numcnn.train.solver as solver_module

    monkeypatch.setattr(
        solver_module, "unsplittable_reason", lambda model: "its layer x does not support batch sharding"
    )
    with pytest.raises(ValueError, match="workers=2: the model cannot be split over workers: its layer x"):
        Solver(threelayer(), data(), workers=2)
    Solver(threelayer(), data(), workers=1)  # one worker splits nothing


def test_choose_workers_leaves_the_model_as_it_was():
    from numcnn.nn.random_state import capture_random_states
    from numcnn.train.parallel import choose_workers

    model = module_net(np.float64, batchnorm=True, dropout=0.3)
    d = data(dtype=np.float64)
    before, randomness = state(model), capture_random_states(model)
    choice = choose_workers(model, d["X_train"][:24], d["y_train"][:24], cores=2)
    assert choice.workers in (1, 2) and "ms on one process" in choice.why
    for name, value in before.items():
        np.testing.assert_array_equal(state(model)[name], value, err_msg=name)
    assert capture_random_states(model)["numcnn_nn"] == randomness["numcnn_nn"]
    assert choose_workers(model, d["X_train"][:24], d["y_train"][:24], cores=1).why == "one core"
