import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import F, assert_close, channels_last, requires_torch, to_torch
from numcnn.gradcheck import check_op
from numcnn.ops.lrn import (
    local_response_norm_backward,
    local_response_norm_backward_naive,
    local_response_norm_forward,
    local_response_norm_forward_naive,
)


@st.composite
def lrn_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 7)), draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    x = 2.0 * rng.standard_normal(shape)
    if draw(st.booleans()):
        x = channels_last(x)
    params = dict(
        size=draw(st.integers(1, 6)),
        alpha=draw(st.sampled_from([1e-4, 0.1, 1.0])),
        beta=draw(st.sampled_from([0.75, 0.5, 1.3])),
        k=draw(st.sampled_from([1.0, 2.0])),
    )
    return x, params, rng


@given(lrn_case())
def test_fast_matches_naive(case):
    x, params, rng = case
    out, cache = local_response_norm_forward(x, **params)
    out_n, cache_n = local_response_norm_forward_naive(x, **params)
    assert_close(out, out_n, name="out")
    dout = rng.standard_normal(x.shape)
    assert_close(
        local_response_norm_backward(dout, cache), local_response_norm_backward_naive(dout, cache_n), name="dx"
    )


@requires_torch
@given(lrn_case())
def test_matches_torch(case):
    x, params, rng = case
    out, cache = local_response_norm_forward(x, **params)
    dout = rng.standard_normal(x.shape)
    xt = to_torch(x, True)
    out_t = F.local_response_norm(xt, **params)
    out_t.backward(to_torch(dout))
    assert_close(out, out_t, rtol=1e-9, name="out")
    assert_close(local_response_norm_backward(dout, cache), xt.grad, rtol=1e-8, atol=1e-11, name="dx")


@pytest.mark.parametrize("size", [1, 2, 5])
def test_numerical_gradients(size):
    x = np.random.default_rng(0).standard_normal((2, 6, 3, 3))
    errors = check_op(local_response_norm_forward, local_response_norm_backward, x, size, 0.5, 0.75, 1.0)
    assert errors["x"] < 1e-7, errors


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(size=0), "size must be a positive int"),
        (dict(size=3, k=0.0), "k must be a positive number"),
        (dict(size=3, alpha=float("nan")), "alpha must be a non-negative number"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        local_response_norm_forward(np.zeros((1, 3, 2, 2)), **kwargs)
