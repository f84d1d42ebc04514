"""Synchronized batch norm: workers holding shards of a batch compute the whole batch's result.

Each worker runs a replica on its rows with its rows of dout in local scale
(dout / fraction: the gradient of the mean loss over its own rows). Then
its outputs are the whole batch's rows, its dx is the whole batch's dx rows
/ fraction, sum_r fraction_r * dgamma_r is the whole batch's dgamma, and
running statistics equal one worker's on every worker.
"""

import copy

import numpy as np
import pytest

from helpers import channels_last
from numcnn import nn
from numcnn.gradcheck import eval_numerical_gradient
from numcnn.nn.shard import BatchShard, batch_shard
from shard_workers import run_shards, weighted_sum

TOLERANCE = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=1e-5, atol=5e-6)}
CASES = {
    "1d (N, D)": (nn.BatchNorm1d, (10, 4), False),
    "1d (N, C, L)": (nn.BatchNorm1d, (10, 3, 5), False),
    "2d NCHW": (nn.BatchNorm2d, (10, 3, 4, 4), False),
    "2d channels-last": (nn.BatchNorm2d, (10, 3, 4, 4), True),
}


def random_batchnorm(kind, C, dtype, rng, **options):
    """A batch norm with random gamma, beta and running statistics."""
    bn = kind(C, dtype=dtype, **options)
    for name in bn.params:
        bn.params[name] = rng.standard_normal(C).astype(dtype)
    if bn.track_running_stats:
        bn.buffers["running_mean"] = rng.standard_normal(C).astype(dtype)
        bn.buffers["running_var"] = (rng.random(C) + 0.5).astype(dtype)
    return bn


def batch(shape, dtype, rng, last=False):
    x = (3.0 * rng.standard_normal(shape) + 2.0).astype(dtype)
    return channels_last(x) if last else x


def sharded_step(module, x, dout, workers, gather=False):
    """Each worker: a replica's forward of its rows, and backward of its rows of dout in local scale."""

    def task(rank, shard):
        replica = copy.deepcopy(module)
        out = replica(x[shard.start : shard.stop])
        dx = replica.backward(dout[shard.start : shard.stop] / shard.fraction)
        return out, dx, replica

    results, shards = run_shards(len(x), workers, task, gather)
    outs, dxs, replicas = zip(*results)
    return outs, dxs, replicas, shards


def whole_step(module, x, dout):
    whole = copy.deepcopy(module)
    out = whole(x)
    return out, whole.backward(dout), whole


def assert_matches_whole(module, x, dout, workers, dtype):
    tolerance = TOLERANCE[dtype]
    out, dx, whole = whole_step(module, x, dout)
    outs, dxs, replicas, shards = sharded_step(module, x, dout, workers)
    for shard, out_r, dx_r in zip(shards, outs, dxs):
        rows = slice(shard.start, shard.stop)
        assert out_r.dtype == dx_r.dtype == dtype
        np.testing.assert_allclose(out_r, out[rows], **tolerance, err_msg="out")
        np.testing.assert_allclose(dx_r * shard.fraction, dx[rows], **tolerance, err_msg="dx in local scale")
    for name in whole.grads:
        summed = weighted_sum([replica.grads[name] for replica in replicas], shards)
        np.testing.assert_allclose(summed, whole.grads[name], **tolerance, err_msg=f"sum of fraction * d{name}")
    for name, value in whole.buffers.items():
        for replica in replicas:  # the same bits on every worker
            np.testing.assert_array_equal(replica.buffers[name], replicas[0].buffers[name], err_msg=name)
            assert replica.buffers[name].dtype == value.dtype
        np.testing.assert_allclose(replicas[0].buffers[name], value, **tolerance, err_msg=name)
    return replicas


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", list(CASES))
def test_shards_compute_the_whole_batch(case, dtype, workers):
    kind, shape, last = CASES[case]
    rng = np.random.default_rng(workers)
    bn = random_batchnorm(kind, shape[1], dtype, rng)
    x, dout = batch(shape, dtype, rng, last), batch(shape, dtype, rng, last)
    replicas = assert_matches_whole(bn, x, dout, workers, dtype)
    assert all(int(replica.buffers["num_batches_tracked"]) == 1 for replica in replicas)


@pytest.mark.parametrize(
    "options",
    [dict(momentum=None), dict(affine=False), dict(bias=False), dict(track_running_stats=False)],
    ids=["cumulative average", "no affine", "no bias", "no running statistics"],
)
def test_options_shard_too(options):
    rng = np.random.default_rng(7)
    bn = random_batchnorm(nn.BatchNorm2d, 3, np.float64, rng, **options)
    x, dout = batch((7, 3, 2, 3), np.float64, rng, True), batch((7, 3, 2, 3), np.float64, rng, True)
    assert_matches_whole(bn, x, dout, 3, np.float64)


def test_no_running_statistics_in_eval_still_synchronize():
    # without running statistics evaluation uses the batch's statistics: those of the whole batch
    rng = np.random.default_rng(8)
    bn = random_batchnorm(nn.BatchNorm1d, 4, np.float64, rng, track_running_stats=False).eval()
    x, dout = batch((10, 4), np.float64, rng), batch((10, 4), np.float64, rng)
    assert_matches_whole(bn, x, dout, 3, np.float64)


def test_several_steps_keep_every_worker_equal():
    """Three training steps on three workers: running statistics and num_batches_tracked as one worker's."""
    rng = np.random.default_rng(9)
    bn = random_batchnorm(nn.BatchNorm2d, 3, np.float64, rng, momentum=None)
    one, three = copy.deepcopy(bn), copy.deepcopy(bn)
    for _ in range(3):
        x = batch((10, 3, 2, 2), np.float64, rng, True)
        one(x)
        _, _, replicas, _ = sharded_step(three, x, np.ones_like(x), 3)
        three = replicas[1]
    for name, value in one.buffers.items():
        np.testing.assert_allclose(three.buffers[name], value, rtol=1e-12, atol=1e-12, err_msg=name)
    assert int(three.buffers["num_batches_tracked"]) == 3


def test_a_run_on_three_workers_is_bit_for_bit_reproducible():
    rng = np.random.default_rng(10)
    bn = random_batchnorm(nn.BatchNorm2d, 4, np.float32, rng)
    x, dout = batch((10, 4, 3, 3), np.float32, rng, True), batch((10, 4, 3, 3), np.float32, rng, True)
    first, second = sharded_step(bn, x, dout, 3), sharded_step(bn, x, dout, 3)
    for a, b in zip(first[0] + first[1], second[0] + second[1]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 2, 3)])
def test_numerical_gradient_of_the_sharded_layer(shape):
    """f(x, gamma) = sum(w * out) over the whole batch, out assembled from two workers' rows."""
    rng = np.random.default_rng(11)
    kind = nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d
    bn = random_batchnorm(kind, shape[1], np.float64, rng)
    x, w = batch(shape, np.float64, rng), rng.standard_normal(shape)

    def f(x, gamma=None):
        module = copy.deepcopy(bn)
        if gamma is not None:
            module.params["weight"] = gamma
        outs, _ = run_shards(len(x), 2, lambda rank, shard: module_copy_forward(module, x, shard))
        return float(np.sum(w * np.concatenate(outs)))

    _, dxs, replicas, shards = sharded_step(bn, x, w, 2)
    dx = np.concatenate([dx_r * shard.fraction for dx_r, shard in zip(dxs, shards)])
    dgamma = weighted_sum([replica.grads["weight"] for replica in replicas], shards)
    # centred differences of f (about 10 in size) are good to about 1e-10 absolute
    np.testing.assert_allclose(dx, eval_numerical_gradient(f, x.copy()), rtol=1e-6, atol=1e-8)
    gamma = bn.params["weight"].copy()
    np.testing.assert_allclose(dgamma, eval_numerical_gradient(lambda g: f(x, g), gamma), rtol=1e-6, atol=1e-8)


def module_copy_forward(module, x, shard):
    return copy.deepcopy(module)(x[shard.start : shard.stop])


def test_instance_norm_running_statistics_are_the_whole_batch():
    rng = np.random.default_rng(12)
    norm = nn.InstanceNorm2d(3, track_running_stats=True, affine=True, dtype=np.float64)
    x, dout = batch((10, 3, 3, 3), np.float64, rng), batch((10, 3, 3, 3), np.float64, rng)
    assert_matches_whole(norm, x, dout, 3, np.float64)


def never_called(array):
    raise AssertionError("combine must not be called")


def test_evaluation_with_running_statistics_needs_no_workers():
    rng = np.random.default_rng(13)
    bn = random_batchnorm(nn.BatchNorm2d, 3, np.float64, rng).eval()
    x = batch((10, 3, 2, 2), np.float64, rng)
    with batch_shard(BatchShard(4, 10, 10, never_called)):
        out = bn(x[4:])
    np.testing.assert_array_equal(out, bn(x)[4:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_gathered_exchange_gives_the_bits_of_two_summed_ones(dtype):
    """Shards that can gather exchange the forward's statistics once (count, mean, m2 of every
    worker, combined by each in rank order) instead of twice: the same terms, added in the same order."""
    rng = np.random.default_rng(7)
    module = random_batchnorm(nn.BatchNorm2d, 5, dtype, rng)
    x, dout = batch((11, 5, 3, 3), dtype, rng), rng.standard_normal((11, 5, 3, 3)).astype(dtype)
    summed = sharded_step(module, x, dout, 3)
    gathered = sharded_step(module, x, dout, 3, gather=True)
    for a, b in zip(summed[0] + summed[1], gathered[0] + gathered[1]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(summed[2], gathered[2]):
        for name in ("running_mean", "running_var"):
            np.testing.assert_array_equal(a.buffers[name], b.buffers[name])
        for name in a.grads:
            np.testing.assert_array_equal(a.grads[name], b.grads[name])


def test_a_shard_of_other_rows_is_refused_before_combining():
    bn = nn.BatchNorm1d(3, dtype=np.float64)
    with batch_shard(BatchShard(0, 5, 10, never_called)), pytest.raises(ValueError, match="shard's 5 rows"):
        bn(np.ones((4, 3)))
    assert int(bn.buffers["num_batches_tracked"]) == 0


def test_a_whole_batch_of_one_value_per_channel_is_refused():
    bn = nn.BatchNorm1d(3, dtype=np.float64)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        run_shards(1, 1, lambda rank, shard: bn(np.ones((1, 3))))
    assert int(bn.buffers["num_batches_tracked"]) == 0


def test_one_row_per_worker_is_enough_when_the_batch_has_more():
    rng = np.random.default_rng(14)
    bn = random_batchnorm(nn.BatchNorm1d, 4, np.float64, rng)
    x, dout = batch((3, 4), np.float64, rng), batch((3, 4), np.float64, rng)
    assert_matches_whole(bn, x, dout, 3, np.float64)
