import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import F, assert_close, channels_last, compiled_row_passes, needs_numba, requires_torch, to_torch, torch
from numcnn.gradcheck import check_op
from numcnn.ops.batchnorm import (
    batchnorm_backward,
    batchnorm_backward_naive,
    batchnorm_forward,
    batchnorm_forward_naive,
)


@st.composite
def batchnorm_case(draw):
    spatial = draw(st.booleans())
    N = draw(st.integers(1 if spatial else 2, 4))
    D = draw(st.integers(1, 5))
    shape = (N, D, draw(st.integers(1, 4)), draw(st.integers(1, 4))) if spatial else (N, D)
    if N * int(np.prod(shape[2:])) < 2:
        shape = (2,) + shape[1:]
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = 3.0 * rng.standard_normal(shape) + 2.0
    if spatial and draw(st.booleans()):
        x = channels_last(x)
    affine = draw(st.booleans())
    gamma = rng.standard_normal(D) if affine else None
    beta = rng.standard_normal(D) if affine else None
    tracked = draw(st.booleans())
    running = (rng.standard_normal(D), rng.random(D) + 0.5) if tracked else (None, None)
    momentum = draw(st.sampled_from([0.1, 0.3, 1.0]))
    return x, gamma, beta, running, draw(st.booleans()), momentum, rng


@given(batchnorm_case())
def test_fast_matches_naive(case):
    check_fast_against_naive(case)


@needs_numba
@given(batchnorm_case())
def test_compiled_row_passes_match_naive(case):
    with compiled_row_passes():
        check_fast_against_naive(case)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_row_passes_run_and_match_numpys_on_a_conv_sized_batch(dtype, monkeypatch):
    from numcnn.ops.engine import rows_kernels

    calls = []
    for name in ("column_sums", "centred_square_sums", "normalize", "backward_sums", "combine"):
        kernel = getattr(rows_kernels, name)
        monkeypatch.setattr(rows_kernels, name, lambda *a, _k=kernel, _n=name: calls.append(_n) or _k(*a))
    rng = np.random.default_rng(3)
    x = channels_last((3.0 * rng.standard_normal((16, 24, 16, 16)) + 2.0).astype(dtype))  # 98,304 numbers
    gamma, beta = rng.standard_normal(24).astype(dtype), rng.standard_normal(24).astype(dtype)
    rm, rv = rng.standard_normal(24).astype(dtype), (rng.random(24) + 0.5).astype(dtype)
    dout = channels_last(rng.standard_normal(x.shape).astype(dtype))

    def run():
        out, cache, new_rm, new_rv = batchnorm_forward(x, gamma, beta, rm, rv, True, 0.1)
        return (out, new_rm, new_rv, *batchnorm_backward(dout, cache))

    numpys = run()
    assert calls == []  # under tuning.COMPILED_ROWS_MIN_NUMBERS: NumPy's passes
    with compiled_row_passes():
        compiled = run()
    assert sorted(set(calls)) == ["backward_sums", "centred_square_sums", "column_sums", "combine", "normalize"]
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-4)
    for got, want, name in zip(compiled, numpys, ("out", "running_mean", "running_var", "dx", "dgamma", "dbeta")):
        assert got.dtype == dtype, name
        assert_close(got / np.abs(want).max(), want / np.abs(want).max(), name=name, **tol)


def check_fast_against_naive(case):
    x, gamma, beta, (rm, rv), training, momentum, rng = case
    out, cache, new_rm, new_rv = batchnorm_forward(x, gamma, beta, rm, rv, training, momentum)
    out_n, cache_n, new_rm_n, new_rv_n = batchnorm_forward_naive(x, gamma, beta, rm, rv, training, momentum)
    assert_close(out, out_n, name="out")
    if rm is not None:
        assert_close(new_rm, new_rm_n, name="running_mean")
        assert_close(new_rv, new_rv_n, name="running_var")
    dout = rng.standard_normal(x.shape)
    for name, g, g_n in zip(
        ("dx", "dgamma", "dbeta"), batchnorm_backward(dout, cache), batchnorm_backward_naive(dout, cache_n)
    ):
        if gamma is None and name != "dx":
            assert g is None and g_n is None
        else:
            assert_close(g, g_n, rtol=1e-9, atol=1e-11, name=name)


@requires_torch
@given(batchnorm_case())
def test_matches_torch(case):
    x, gamma, beta, (rm, rv), training, momentum, rng = case
    out, cache, new_rm, new_rv = batchnorm_forward(x, gamma, beta, rm, rv, training, momentum)
    dout = rng.standard_normal(x.shape)
    dx, dgamma, dbeta = batchnorm_backward(dout, cache)
    xt = to_torch(x, True)
    gt = None if gamma is None else to_torch(gamma, True)
    bt = None if beta is None else to_torch(beta, True)
    rmt = None if rm is None else to_torch(rm)
    rvt = None if rv is None else to_torch(rv)
    out_t = F.batch_norm(xt, rmt, rvt, gt, bt, training=training or rm is None, momentum=momentum, eps=1e-5)
    out_t.backward(to_torch(dout))
    assert_close(out, out_t, rtol=1e-9, atol=1e-11, name="out")
    assert_close(dx, xt.grad, rtol=1e-8, atol=1e-10, name="dx")
    if gamma is not None:
        assert_close(dgamma, gt.grad, rtol=1e-9, atol=1e-11, name="dgamma")
        assert_close(dbeta, bt.grad, rtol=1e-9, atol=1e-11, name="dbeta")
    if rm is not None:  # torch updated its tensors in place
        assert_close(new_rm, rmt, name="running_mean")
        assert_close(new_rv, rvt, name="running_var")


@requires_torch
def test_running_statistics_follow_torch_over_many_steps():
    rng = np.random.default_rng(3)
    layer = torch.nn.BatchNorm2d(4, momentum=0.2)
    rm, rv = np.zeros(4), np.ones(4)
    for _ in range(10):
        x = 2.0 * rng.standard_normal((5, 4, 3, 3)) + 7.0
        _, _, rm, rv = batchnorm_forward(x, None, None, rm, rv, training=True, momentum=0.2)
        layer(to_torch(x))
    assert_close(rm, layer.running_mean, name="running_mean")
    assert_close(rv, layer.running_var, name="running_var")


def test_inputs_are_not_mutated():
    rng = np.random.default_rng(0)
    x, rm, rv = rng.standard_normal((4, 3)), np.zeros(3), np.ones(3)
    batchnorm_forward(x, None, None, rm, rv, training=True)
    np.testing.assert_array_equal(rm, np.zeros(3))
    np.testing.assert_array_equal(rv, np.ones(3))


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 3, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_numerical_gradients_with_random_gamma_and_beta(shape, training):
    rng = np.random.default_rng(231)
    x = 5.0 * rng.standard_normal(shape) + 12.0
    gamma, beta = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    rm, rv = rng.standard_normal(shape[1]), rng.random(shape[1]) + 0.5
    errors = check_op(batchnorm_forward, batchnorm_backward, x, gamma, beta, rm, rv, training)
    assert set(errors) == {"x", "gamma", "beta"}
    assert max(errors.values()) < 1e-6, errors


def test_float32_stays_float32():
    x = np.random.default_rng(0).standard_normal((4, 3, 2, 2)).astype(np.float32)
    out, cache, rm, rv = batchnorm_forward(
        x, np.ones(3, np.float32), np.zeros(3, np.float32), np.zeros(3, np.float32), np.ones(3, np.float32), True
    )
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in batchnorm_backward(np.ones_like(out), cache))


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.zeros((1, 3)), None, None, None, None, True), "more than 1 value per channel"),
        ((np.zeros((4, 3)), np.ones(2), None, None, None, True), r"gamma must have shape \(3,\)"),
        ((np.zeros((4, 3)), None, None, np.zeros(3), None, True), "both be arrays or both be None"),
        ((np.zeros((4, 3, 2)), None, None, None, None, True), "x must have 2 or 4 dimensions"),
    ],
)
def test_bad_arguments_are_named(args, message):
    with pytest.raises(ValueError, match=message):
        batchnorm_forward(*args)


def test_momentum_must_be_a_probability():
    with pytest.raises(ValueError, match="momentum must be a probability"):
        batchnorm_forward(np.zeros((4, 3)), None, None, np.zeros(3), np.ones(3), True, momentum=1.5)
