"""Batch norm's partial sums for a batch split into shards (ops.batchnorm_partial), against the
whole batch's batchnorm_forward/backward and against their loop twins."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import assert_close, channels_last, compiled_row_passes, needs_numba
from numcnn import ops

LAYOUTS = {"(N, D)": ((12, 5), False), "NCHW": ((6, 3, 4, 2), False), "channels-last": ((6, 3, 4, 2), True)}
SPLITS = [[12], [5, 7], [4, 4, 4], [1, 6, 5]]


def batch(shape, last, rng, dtype=np.float64):
    x = (3.0 * rng.standard_normal(shape) + 2.0).astype(dtype)
    return channels_last(x) if last else x


def pieces(x, sizes):
    """x's rows in shards of the given sizes (scaled to x's rows)."""
    sizes = [round(s * len(x) / sum(sizes)) for s in sizes]
    bounds = np.cumsum([0] + sizes)
    bounds[-1] = len(x)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_partial_stats_match_the_loop_twin_and_numpy(layout):
    shape, last = LAYOUTS[layout]
    x = batch(shape, last, np.random.default_rng(0))
    fast, naive = ops.batchnorm_partial_stats(x), ops.batchnorm_partial_stats_naive(x)
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    assert fast.count == naive.count == x.size // x.shape[1]
    for p in (fast, naive):
        assert_close(p.mean, x.mean(axis=axes), name="mean")
        assert_close(p.m2, x.var(axis=axes) * p.count, name="m2")


def test_one_value_per_channel_has_no_spread():
    p = ops.batchnorm_partial_stats(np.array([[1.0, 2.0, 3.0]]))
    assert p.count == 1
    np.testing.assert_array_equal(p.m2, 0.0)


@pytest.mark.parametrize("sizes", SPLITS)
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_combined_partials_are_the_whole_batch(layout, sizes):
    shape, last = LAYOUTS[layout]
    x = batch(shape, last, np.random.default_rng(1))
    whole = ops.batchnorm_partial_stats(x)
    combined = ops.combine_partial_stats([ops.batchnorm_partial_stats(x[rows]) for rows in pieces(x, sizes)])
    assert combined.count == whole.count
    assert_close(combined.mean, whole.mean, name="mean")
    assert_close(combined.m2, whole.m2, name="m2")


def test_combining_is_stable_far_from_zero():
    # float32 values 1e4 +- 1: summing squares would lose the variance (1e8 against 1 in 7 digits)
    rng = np.random.default_rng(2)
    x = (1e4 + rng.standard_normal((300, 4))).astype(np.float32)
    combined = ops.combine_partial_stats([ops.batchnorm_partial_stats(x[rows]) for rows in pieces(x, [1, 1, 1])])
    exact = x.astype(np.float64).var(axis=0)
    np.testing.assert_allclose(combined.m2 / combined.count, exact, rtol=1e-4)


def test_nothing_to_combine_is_refused():
    with pytest.raises(ValueError, match="partials"):
        ops.combine_partial_stats([])


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_shards_with_the_whole_batchs_statistics_and_sums_are_the_whole_batch(layout, affine):
    shape, last = LAYOUTS[layout]
    rng = np.random.default_rng(3)
    x, dout = batch(shape, last, rng), batch(shape, last, rng)
    C = shape[1]
    gamma, beta = (rng.standard_normal(C), rng.standard_normal(C)) if affine else (None, None)
    rm, rv = rng.standard_normal(C), rng.random(C) + 0.5
    out, cache, new_rm, new_rv = ops.batchnorm_forward(x, gamma, beta, rm, rv, True, 0.3)
    dx, dgamma, dbeta = ops.batchnorm_backward(dout, cache)
    stats = ops.combine_partial_stats([ops.batchnorm_partial_stats(x[rows]) for rows in pieces(x, [1, 2])])
    mean, var, count = stats.mean, stats.m2 / stats.count, stats.count
    shards = pieces(x, [1, 2])
    for forward, backward_sums, backward in (
        (ops.batchnorm_forward_with_stats, ops.batchnorm_backward_sums, ops.batchnorm_backward_with_sums),
        (
            ops.batchnorm_forward_with_stats_naive,
            ops.batchnorm_backward_sums_naive,
            ops.batchnorm_backward_with_sums_naive,
        ),
    ):
        results = [forward(x[rows], gamma, beta, mean, var, count, rm, rv, 0.3) for rows in shards]
        for (out_r, _, rm_r, rv_r), rows in zip(results, shards):
            assert_close(out_r, out[rows], name="out")
            assert_close(rm_r, new_rm, name="running_mean")
            assert_close(rv_r, new_rv, name="running_var")
        sums = [backward_sums(dout[rows], cache_r) for (_, cache_r, _, _), rows in zip(results, shards)]
        sum_dout, sum_dout_xhat = np.sum(sums, axis=0)
        if affine:
            assert_close(sum_dout, dbeta, name="sum dout = dbeta")
            assert_close(sum_dout_xhat, dgamma, name="sum dout * xhat = dgamma")
        for (_, cache_r, _, _), rows in zip(results, shards):
            dx_r = backward(dout[rows], cache_r, sum_dout, sum_dout_xhat, count)
            assert_close(dx_r, dx[rows], name="dx")


def test_one_shard_gives_batchnorm_forward_within_rounding_in_float32():
    rng = np.random.default_rng(4)
    x = batch((16, 8, 4, 4), True, rng, np.float32)
    gamma, beta = rng.standard_normal(8).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    out, cache, _, _ = ops.batchnorm_forward(x, gamma, beta, None, None, True)
    p = ops.batchnorm_partial_stats(x)
    assert p.mean.dtype == np.float32
    out_s, cache_s, rm, rv = ops.batchnorm_forward_with_stats(
        x, gamma, beta, p.mean, p.m2 / p.count, p.count, None, None
    )
    assert rm is None and rv is None
    assert out_s.dtype == np.float32 and out_s.strides == x.strides
    np.testing.assert_allclose(out_s, out, rtol=1e-5, atol=1e-5)
    dout = batch((16, 8, 4, 4), True, rng, np.float32)
    sums = ops.batchnorm_backward_sums(dout, cache_s)
    dx = ops.batchnorm_backward_with_sums(dout, cache_s, *sums, p.count)
    assert dx.dtype == np.float32
    np.testing.assert_allclose(dx, ops.batchnorm_backward(dout, cache)[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(count=1), "count"),
        (dict(count=2.5), "count"),
        (dict(mean=np.zeros(2)), "mean must have shape"),
        (dict(var=None), "var"),
        (dict(running_var=None), "running_mean and running_var"),
        (dict(momentum=2.0), "momentum"),
    ],
)
def test_given_statistics_are_checked(change, match):
    arguments = dict(
        x=np.ones((4, 3)),
        gamma=None,
        beta=None,
        mean=np.zeros(3),
        var=np.ones(3),
        count=8,
        running_mean=np.zeros(3),
        running_var=np.ones(3),
        momentum=0.1,
    )
    arguments.update(change)
    for forward in (ops.batchnorm_forward_with_stats, ops.batchnorm_forward_with_stats_naive):
        with pytest.raises(ValueError, match=match):
            forward(**arguments)


def test_backward_with_sums_refuses_an_evaluation_cache_and_wrong_sums():
    x = np.random.default_rng(5).standard_normal((4, 3))
    _, eval_cache, _, _ = ops.batchnorm_forward(x, None, None, np.zeros(3), np.ones(3), False)
    with pytest.raises(ValueError, match="cache must come from a forward with batch statistics"):
        ops.batchnorm_backward_sums(x, eval_cache)
    _, cache, _, _ = ops.batchnorm_forward_with_stats(x, None, None, np.zeros(3), np.ones(3), 8, None, None)
    with pytest.raises(ValueError, match="sum_dout must have shape"):
        ops.batchnorm_backward_with_sums(x, cache, np.zeros(2), np.zeros(3), 8)
    with pytest.raises(ValueError, match="count"):
        ops.batchnorm_backward_with_sums(x, cache, np.zeros(3), np.zeros(3), 0)


@st.composite
def split_batch(draw):
    """x, dout of a random shape and layout, gamma/beta or None, and row bounds of 1-3 shards."""
    spatial = draw(st.booleans())
    N, C = draw(st.integers(2, 7)), draw(st.integers(1, 5))
    shape = (N, C, draw(st.integers(1, 3)), draw(st.integers(1, 3))) if spatial else (N, C)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    last = spatial and draw(st.booleans())
    x, dout = batch(shape, last, rng), batch(shape, last, rng)
    gamma, beta = (rng.standard_normal(C), rng.standard_normal(C)) if draw(st.booleans()) else (None, None)
    cuts = sorted(draw(st.sets(st.integers(1, N - 1), max_size=2)))
    bounds = list(zip([0] + cuts, cuts + [N]))
    return x, dout, gamma, beta, bounds


@given(split_batch())
def test_any_split_gives_the_whole_batch_fast_and_naive(case):
    check_split_against_whole_batch(case)


@needs_numba
@given(split_batch())
def test_any_split_gives_the_whole_batch_with_the_compiled_row_passes(case):
    with compiled_row_passes():
        check_split_against_whole_batch(case)


def check_split_against_whole_batch(case):
    x, dout, gamma, beta, bounds = case
    out, cache, _, _ = ops.batchnorm_forward(x, gamma, beta, None, None, True)
    dx = ops.batchnorm_backward(dout, cache)[0]
    shards = [slice(a, b) for a, b in bounds]
    for partial_stats in (ops.batchnorm_partial_stats, ops.batchnorm_partial_stats_naive):
        stats = ops.combine_partial_stats([partial_stats(x[rows]) for rows in shards])
        mean, var = stats.mean, stats.m2 / stats.count
        fast = [ops.batchnorm_forward_with_stats(x[r], gamma, beta, mean, var, stats.count, None, None) for r in shards]
        naive = [
            ops.batchnorm_forward_with_stats_naive(x[r], gamma, beta, mean, var, stats.count, None, None)
            for r in shards
        ]
        sums = np.sum([ops.batchnorm_backward_sums(dout[r], f[1]) for r, f in zip(shards, fast)], axis=0)
        sums_naive = np.sum([ops.batchnorm_backward_sums_naive(dout[r], n[1]) for r, n in zip(shards, naive)], axis=0)
        assert_close(sums_naive, sums, name="sums")
        for rows, f, n in zip(shards, fast, naive):
            assert_close(f[0], out[rows], name="out")
            assert_close(n[0], out[rows], name="out (naive)")
            assert_close(ops.batchnorm_backward_with_sums(dout[rows], f[1], *sums, stats.count), dx[rows], name="dx")
            dx_naive = ops.batchnorm_backward_with_sums_naive(dout[rows], n[1], *sums_naive, stats.count)
            assert_close(dx_naive, dx[rows], name="dx (naive)")
