"""The CS231n FullyConnectedNet split over workers: with batch norm and dropout, sum_r fraction_r *
(loss_r, grads_r) is the whole batch's loss and gradients, and bn_params' running statistics are one
worker's on every worker.

Its dropout draws from np.random, one global generator per process. Workers are simulated with
threads here, so np.random.rand and np.random.seed are redirected to one RandomState per thread,
each starting where the process's was: what worker processes, each with its own np.random, see.
"""

import copy
import threading

import numpy as np
import pytest

from numcnn.models import FullyConnectedNet, TwoLayerNet
from numcnn.nn.shard import BatchShard, batch_shard
from shard_workers import run_shards, weighted_sum

TOLERANCE = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-4, atol=2e-5)}


class PerThreadLegacyRandom:
    """np.random.rand and np.random.seed of each thread on its own RandomState, started at `state`."""

    def __init__(self, monkeypatch, state):
        self.state, self.local = state, threading.local()
        monkeypatch.setattr(np.random, "rand", lambda *shape: self.generator().rand(*shape))
        monkeypatch.setattr(np.random, "seed", lambda seed=None: self.generator().seed(seed))

    def generator(self) -> np.random.RandomState:
        if not hasattr(self.local, "generator"):
            self.local.generator = np.random.RandomState()
            self.local.generator.set_state(self.state)
        return self.local.generator


def fc_net(dtype, normalization="batchnorm", seed=None):
    np.random.seed(0)
    model = FullyConnectedNet(
        [7, 5],
        input_dim=6,
        num_classes=4,
        dropout_keep_ratio=0.7,
        normalization=normalization,
        reg=0.01,
        weight_scale=0.5,
        dtype=dtype,
        seed=seed,
    )
    rng = np.random.default_rng(1)
    for name in model.params:
        if name.startswith(("gamma", "beta")):
            model.params[name] = rng.standard_normal(model.params[name].shape).astype(dtype)
    return model


def data(dtype, rows=10):
    rng = np.random.default_rng(2)
    return rng.standard_normal((rows, 6)).astype(dtype), rng.integers(0, 4, rows)


def sharded_loss(model, X, y, workers, monkeypatch, state):
    legacy = PerThreadLegacyRandom(monkeypatch, state)

    def task(rank, shard):
        replica = copy.deepcopy(model)
        rows = slice(shard.start, shard.stop)
        loss, grads = replica.loss(X[rows], y[rows])
        return loss, grads, replica, legacy.generator().get_state()

    results, shards = run_shards(len(X), workers, task)
    monkeypatch.undo()
    return (*zip(*results), shards)


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("normalization, seed", [("batchnorm", None), ("batchnorm", 3), ("layernorm", None)])
def test_weighted_shard_results_are_the_whole_batchs(normalization, seed, dtype, workers, monkeypatch):
    model = fc_net(dtype, normalization, seed)
    X, y = data(dtype)
    np.random.seed(4)
    state = np.random.get_state()
    whole = copy.deepcopy(model)
    loss, grads = whole.loss(X, y)
    after = np.random.get_state()
    losses, grads_r, replicas, states, shards = sharded_loss(model, X, y, workers, monkeypatch, state)
    tolerance = TOLERANCE[dtype]
    np.testing.assert_allclose(weighted_sum(losses, shards), loss, **tolerance)
    for name, grad in grads.items():
        summed = weighted_sum([g[name] for g in grads_r], shards)
        assert summed.dtype == grad.dtype
        np.testing.assert_allclose(summed, grad, **tolerance, err_msg=name)
    for i, bn_param in enumerate(whole.bn_params):
        for key in ("running_mean", "running_var"):
            if key not in bn_param:
                continue
            for replica in replicas:
                np.testing.assert_array_equal(replica.bn_params[i][key], replicas[0].bn_params[i][key])
                assert replica.bn_params[i][key].dtype == bn_param[key].dtype
            np.testing.assert_allclose(replicas[0].bn_params[i][key], bn_param[key], **tolerance, err_msg=key)
    for worker_state in states:  # np.random advanced as one worker's
        assert worker_state[2] == after[2]
        np.testing.assert_array_equal(worker_state[1], after[1])


def test_scores_under_a_shard_need_no_workers():
    model = fc_net(np.float64)
    X, _ = data(np.float64)

    def never_called(array):
        raise AssertionError("combine must not be called")

    for bn_param in model.bn_params:  # running statistics of some training
        bn_param["running_var"] = bn_param["running_var"] + 1.0
    with batch_shard(BatchShard(3, 10, 10, never_called)):
        scores = model.loss(X[3:])
    np.testing.assert_array_equal(scores, model.loss(X)[3:])


def test_a_shard_of_other_rows_is_refused():
    model = fc_net(np.float64)
    X, y = data(np.float64, rows=4)
    with batch_shard(BatchShard(0, 5, 10, combine=None)), pytest.raises(ValueError, match="shard's 5 rows"):
        model.loss(X, y)


def test_two_layer_net_splits_as_it_is():
    np.random.seed(0)
    model = TwoLayerNet(input_dim=6, hidden_dim=5, num_classes=4, weight_scale=0.5, reg=0.01)
    X, y = data(np.float64)
    loss, grads = copy.deepcopy(model).loss(X, y)

    def task(rank, shard):
        return copy.deepcopy(model).loss(X[shard.start : shard.stop], y[shard.start : shard.stop])

    results, shards = run_shards(len(X), 3, task)
    np.testing.assert_allclose(weighted_sum([r[0] for r in results], shards), loss, rtol=1e-12)
    for name, grad in grads.items():
        np.testing.assert_allclose(weighted_sum([r[1][name] for r in results], shards), grad, rtol=1e-10, atol=1e-12)


def test_replicas_with_their_own_generators_need_no_global_one():
    """A threads-backed worker gives its replica a RandomState at the root's state: the same results."""
    model = fc_net(np.float64, seed=None)
    X, y = data(np.float64)
    np.random.seed(5)
    state = np.random.get_state()
    loss, grads = copy.deepcopy(model).loss(X, y)

    def task(rank, shard):
        replica = copy.deepcopy(model)
        replica.shard_random = np.random.RandomState()
        replica.shard_random.set_state(state)
        return replica.loss(X[shard.start : shard.stop], y[shard.start : shard.stop])

    np.random.seed(6)  # the global generator is not used
    results, shards = run_shards(len(X), 3, task)
    np.testing.assert_allclose(weighted_sum([r[0] for r in results], shards), loss, rtol=1e-10)
    for name, grad in grads.items():
        np.testing.assert_allclose(weighted_sum([r[1][name] for r in results], shards), grad, rtol=1e-10, atol=1e-12)
