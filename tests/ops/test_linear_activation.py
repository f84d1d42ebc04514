import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import F, assert_close, requires_torch, to_torch
from numcnn.gradcheck import check_op
from numcnn.ops.activation import (
    leaky_relu_backward,
    leaky_relu_backward_naive,
    leaky_relu_forward,
    leaky_relu_forward_naive,
    relu_backward,
    relu_backward_naive,
    relu_forward,
    relu_forward_naive,
)
from numcnn.ops.linear import linear_backward, linear_backward_naive, linear_forward, linear_forward_naive


@st.composite
def linear_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    feature_shape = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    x = rng.standard_normal((draw(st.integers(1, 4)),) + feature_shape)
    w = rng.standard_normal((int(np.prod(feature_shape)), draw(st.integers(1, 4))))
    b = rng.standard_normal(w.shape[1]) if draw(st.booleans()) else None
    return x, w, b, rng


@given(linear_case())
def test_linear_fast_matches_naive(case):
    x, w, b, rng = case
    out, cache = linear_forward(x, w, b)
    out_n, cache_n = linear_forward_naive(x, w, b)
    assert_close(out, out_n)
    dout = rng.standard_normal(out.shape)
    for g, g_n in zip(linear_backward(dout, cache), linear_backward_naive(dout, cache_n)):
        assert (g is None) == (g_n is None)
        if g is not None:
            assert_close(g, g_n)


@requires_torch
@given(linear_case())
def test_linear_matches_torch(case):
    x, w, b, rng = case
    out, cache = linear_forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = linear_backward(dout, cache)
    xt, wt = to_torch(x, True), to_torch(w.T, True)  # torch stores (M, D)
    bt = None if b is None else to_torch(b, True)
    out_t = F.linear(xt.reshape(x.shape[0], -1), wt, bt)
    out_t.backward(to_torch(dout))
    assert_close(out, out_t, rtol=1e-9)
    assert_close(dx, xt.grad, rtol=1e-9)
    assert_close(dw, wt.grad.T, rtol=1e-9)
    if b is not None:
        assert_close(db, bt.grad, rtol=1e-9)


def test_linear_numerical_gradients():
    rng = np.random.default_rng(231)
    x, w, b = rng.standard_normal((10, 2, 3)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    errors = check_op(linear_forward, linear_backward, x, w, b)
    assert set(errors) == {"x", "w", "b"} and max(errors.values()) < 1e-8, errors


def test_linear_bad_weight_shape_is_named():
    with pytest.raises(ValueError, match=r"w must have shape \(6, M\) for x of shape \(2, 2, 3\)"):
        linear_forward(np.zeros((2, 2, 3)), np.zeros((5, 4)), None)


ACTIVATIONS = {
    "relu": (relu_forward, relu_backward, relu_forward_naive, relu_backward_naive, {}),
    "leaky_relu": (
        leaky_relu_forward,
        leaky_relu_backward,
        leaky_relu_forward_naive,
        leaky_relu_backward_naive,
        {"negative_slope": 0.2},
    ),
}


@st.composite
def activation_input(draw):
    """Any shape; about a third of the entries exactly 0, the kink."""
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=4)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal(shape)
    x[rng.random(shape) < 0.3] = 0.0
    slope = draw(st.floats(-2.0, 2.0))
    return x, rng, slope


@pytest.mark.parametrize("name", ACTIVATIONS)
@given(case=activation_input())
def test_activations_fast_match_naive(name, case):
    forward, backward, forward_n, backward_n, kwargs = ACTIVATIONS[name]
    x, rng, slope = case
    kwargs = {"negative_slope": slope} if kwargs else {}
    out, cache = forward(x, **kwargs)
    out_n, cache_n = forward_n(x, **kwargs)
    dout = rng.standard_normal(x.shape)
    assert_close(out, out_n)
    assert_close(backward(dout, cache), backward_n(dout, cache_n))


@requires_torch
@pytest.mark.parametrize("name", ACTIVATIONS)
@given(case=activation_input())
def test_activations_match_torch_at_the_kink_too(name, case):
    """At exactly 0 the derivative is taken as PyTorch takes it (0 for ReLU, the slope for leaky)."""
    forward, backward, _, _, kwargs = ACTIVATIONS[name]
    x, rng, slope = case
    kwargs = {"negative_slope": slope} if kwargs else {}
    out, cache = forward(x, **kwargs)
    dout = rng.standard_normal(x.shape)
    xt = to_torch(x, True)
    out_t = getattr(F, name)(xt, **kwargs)
    out_t.backward(to_torch(dout))
    assert_close(out, out_t)
    assert_close(backward(dout, cache), xt.grad)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations_numerical_gradient(name):
    forward, backward, _, _, kwargs = ACTIVATIONS[name]
    x_smooth = np.random.default_rng(0).standard_normal((3, 4)) + 0.1  # away from the kink
    assert check_op(forward, backward, x_smooth, **kwargs)["x"] < 1e-9


def test_activations_keep_float32():
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    for forward, backward in ((relu_forward, relu_backward), (leaky_relu_forward, leaky_relu_backward)):
        out, cache = forward(x)
        assert out.dtype == np.float32 and backward(np.ones_like(out), cache).dtype == np.float32
