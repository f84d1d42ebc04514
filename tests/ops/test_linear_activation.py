import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import F, assert_close, needs_numba, requires_torch, to_torch
from numcnn.gradcheck import check_op
from numcnn.ops.activation import (
    gelu_backward,
    gelu_backward_naive,
    gelu_forward,
    gelu_forward_naive,
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
    "gelu": (gelu_forward, gelu_backward, gelu_forward_naive, gelu_backward_naive, {}),
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
    x = x * 4  # GELU's curve from -10 to 10
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
    pairs = ((relu_forward, relu_backward), (leaky_relu_forward, leaky_relu_backward), (gelu_forward, gelu_backward))
    for forward, backward in pairs:
        out, cache = forward(x)
        assert out.dtype == np.float32 and backward(np.ones_like(out), cache).dtype == np.float32


def test_normal_cdf_against_math_erfc():
    """Phi within 2.3e-16 of libm's erfc everywhere (GELU needs x * Phi(x) to float64's precision), and
    relatively close in the tails too, where exp(-x^2/2) of a rounded x^2 loses digits (Phi(-30) = 5e-198)."""
    import math

    from numcnn.ops.special import normal_cdf, normal_pdf

    x = np.concatenate([np.linspace(-37, 37, 7401), [0.0, -0.0, 1e-300, 1.4142135, -1.4142136, 11.3137, -11.3137]])
    expected = np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x])
    np.testing.assert_allclose(normal_cdf(x), expected, rtol=0, atol=2.3e-16)
    np.testing.assert_allclose(normal_cdf(x), expected, rtol=3e-13, atol=0)
    near = np.abs(x) <= 5
    np.testing.assert_allclose(normal_cdf(x[near]), expected[near], rtol=1e-14, atol=0)
    assert normal_cdf(np.float32(-10.0)).dtype == np.float32 and normal_cdf(np.array([3])).dtype == np.float64
    pdf = np.array([math.exp(-v * v / 2) / math.sqrt(2 * math.pi) for v in x])
    np.testing.assert_allclose(normal_pdf(x), pdf, rtol=1e-15, atol=0)


@needs_numba
@pytest.mark.parametrize("dtype, tolerance", [(np.float32, 2e-6), (np.float64, 1e-14)])
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_gelu_compiled_matches_numpy(dtype, tolerance, layout, monkeypatch):
    """Activations above tuning.COMPILED_ROWS_MIN_NUMBERS go through Numba's one-pass kernels (libm's erf):
    the same numbers as the NumPy path (Cephes' erf), in the input's layout."""
    from numcnn.ops import activation
    from numcnn.ops.engine import gelu_kernels

    rng = np.random.default_rng(5)
    x = (rng.standard_normal((8, 16, 32, 33)) * 3).astype(dtype)
    if layout == "nhwc":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    dout = np.ascontiguousarray(rng.standard_normal(x.shape).astype(dtype).transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    if layout == "nchw":
        dout = np.ascontiguousarray(dout)
    calls = []
    for name in ("forward", "backward"):
        kernel = getattr(gelu_kernels, name)
        monkeypatch.setattr(gelu_kernels, name, lambda *a, k=kernel, n=name: calls.append(n) or k(*a))
    out, cache = gelu_forward(x)
    dx = gelu_backward(dout, cache)
    assert calls == ["forward", "backward"]
    assert out.dtype == dx.dtype == dtype and out.strides == x.strides and dx.strides == x.strides
    monkeypatch.setattr(activation.tuning, "COMPILED_ROWS_MIN_NUMBERS", x.size + 1)  # the NumPy path
    out_np, cache_np = gelu_forward(x)
    np.testing.assert_allclose(out, out_np, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(dx, gelu_backward(dout, cache_np), rtol=tolerance, atol=tolerance)
    assert calls == ["forward", "backward"]
