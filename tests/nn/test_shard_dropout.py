"""Dropout under a shard: each worker's mask is its rows of one worker's mask, whatever the split,
and every worker's generator advances as one worker's does."""

import copy

import numpy as np
import pytest

from helpers import channels_last
from numcnn import nn, ops
from numcnn.nn.shard import BatchShard, batch_shard
from shard_workers import run_shards

SHAPES = {"(N, D)": ((10, 6), False), "NCHW": ((10, 3, 4, 5), False), "channels-last": ((10, 3, 4, 5), True)}


def batch(shape, dtype, last, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return channels_last(x) if last else x


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", list(SHAPES))
def test_masks_are_one_workers_rows(layout, dtype, workers):
    shape, last = SHAPES[layout]
    x = batch(shape, dtype, last)
    dout = batch(shape, dtype, last, seed=1)
    whole = nn.Dropout(0.4, rng=np.random.default_rng(5))
    out = whole(x)
    dx = whole.backward(dout)

    def task(rank, shard):
        replica = nn.Dropout(0.4, rng=np.random.default_rng(5))
        rows = slice(shard.start, shard.stop)
        return replica(x[rows]), replica.backward(dout[rows]), replica.rng.bit_generator.state

    results, shards = run_shards(len(x), workers, task)
    for (out_r, dx_r, state), shard in zip(results, shards):
        rows = slice(shard.start, shard.stop)
        np.testing.assert_array_equal(out_r, out[rows])
        np.testing.assert_array_equal(dx_r, dx[rows])
        assert out_r.dtype == dtype
        assert state == whole.rng.bit_generator.state  # advanced as one worker's


def test_the_default_generator_advances_as_one_workers():
    x = batch((6, 4), np.float64, False)
    nn.manual_seed(3)
    whole = nn.Dropout(0.5)(x)
    after_whole = nn.init.generator().bit_generator.state
    nn.manual_seed(3)
    with batch_shard(BatchShard(2, 5, 6, combine=None)):
        part = nn.Dropout(0.5)(x[2:5])
    np.testing.assert_array_equal(part, whole[2:5])
    assert nn.init.generator().bit_generator.state == after_whole


def test_evaluation_and_p_zero_draw_nothing():
    x = batch((6, 4), np.float64, False)
    rng = np.random.default_rng(1)
    before = copy.deepcopy(rng.bit_generator.state)
    with batch_shard(BatchShard(0, 3, 6, combine=None)):
        np.testing.assert_array_equal(nn.Dropout(0.5, rng=rng).eval()(x[:3]), x[:3])
        np.testing.assert_array_equal(nn.Dropout(0.0, rng=rng)(x[:3]), x[:3])
    assert rng.bit_generator.state == before


def test_evaluation_ignores_the_shard():
    x = batch((4, 2), np.float64, False)
    with batch_shard(BatchShard(0, 3, 6, combine=None)):
        np.testing.assert_array_equal(nn.Dropout(0.5).eval()(x), x)


def test_a_shard_of_other_rows_is_refused():
    with batch_shard(BatchShard(0, 3, 6, combine=None)), pytest.raises(ValueError, match="shard's 3 rows"):
        nn.Dropout(0.5)(np.ones((4, 2)))


@pytest.mark.parametrize("last", [False, True])
def test_rows_op_matches_its_loop_twin(last):
    x = batch((5, 2, 3, 3), np.float64, last)
    fast = ops.dropout_forward_rows(x[1:4], 0.3, True, np.random.default_rng(2), 1, 5)
    naive = ops.dropout_forward_rows_naive(x[1:4], 0.3, True, np.random.default_rng(2), 1, 5)
    np.testing.assert_array_equal(fast[0], naive[0])
    np.testing.assert_array_equal(fast[1].mask, naive[1].mask)
    whole = ops.dropout_forward(x, 0.3, True, np.random.default_rng(2))
    np.testing.assert_array_equal(fast[1].mask, whole[1].mask[1:4])


@pytest.mark.parametrize(
    "start, total, match", [(-1, 5, "start"), (3, 5, "start"), (1.0, 5, "start must be an int"), (0, "5", "total")]
)
def test_rows_op_refuses_rows_outside_the_batch(start, total, match):
    with pytest.raises(ValueError, match=match):
        ops.dropout_forward_rows(np.ones((3, 2)), 0.5, True, np.random.default_rng(0), start, total)
