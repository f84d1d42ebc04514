"""A module network on workers holding shards of a batch: sum_r fraction_r * (loss_r, grads_r) is the
whole batch's loss and gradients (how the data-parallel root adds workers' results)."""

import copy

import numpy as np
import pytest

from numcnn import nn
from numcnn.models import Classifier
from shard_workers import run_shards, weighted_sum

TOLERANCE = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-4, atol=1e-5)}


def network(dtype):
    rng = np.random.default_rng(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, dtype=dtype, rng=rng),
        nn.BatchNorm2d(4, dtype=dtype),
        nn.ReLU(),
        nn.Dropout(0.3, rng=np.random.default_rng(1)),
        nn.Flatten(),
        nn.Linear(4 * 5 * 5, 6, dtype=dtype, rng=rng),
    )
    bn = net[1]
    bn.params["weight"] = rng.standard_normal(4).astype(dtype)
    bn.params["bias"] = rng.standard_normal(4).astype(dtype)
    return Classifier(net, reg=0.01)


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weighted_shard_gradients_are_the_whole_batchs(dtype, workers):
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((10, 3, 5, 5)).astype(dtype), rng.integers(0, 6, 10)
    model = network(dtype)
    whole = copy.deepcopy(model)
    loss, grads = whole.loss(X, y)

    def task(rank, shard):
        replica = copy.deepcopy(model)
        rows = slice(shard.start, shard.stop)
        return (*replica.loss(X[rows], y[rows]), replica)

    results, shards = run_shards(len(X), workers, task)
    losses, grads_r, replicas = zip(*results)
    tolerance = TOLERANCE[dtype]
    np.testing.assert_allclose(weighted_sum(losses, shards), loss, **tolerance)
    assert set(grads) == set(grads_r[0])
    for name, grad in grads.items():
        summed = weighted_sum([g[name] for g in grads_r], shards)
        assert summed.dtype == grad.dtype
        np.testing.assert_allclose(summed, grad, **tolerance, err_msg=name)
    for name, value in whole.buffers.items():
        for replica in replicas:
            np.testing.assert_array_equal(replica.buffers[name], replicas[0].buffers[name], err_msg=name)
        np.testing.assert_allclose(replicas[0].buffers[name], value, **tolerance, err_msg=name)
