import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from helpers import F, assert_close, channels_last, requires_torch, to_torch
from numcnn.gradcheck import check_op
from numcnn.ops.conv import conv2d_backward, conv2d_backward_naive, conv2d_forward, conv2d_forward_naive
from numcnn.ops.engine import geometry, tuning

pairs = lambda lo, hi: st.one_of(st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi)))


@st.composite
def conv_case(draw, channels_per_group=st.integers(1, 3), max_size=8):  # noqa: B008 (hypothesis's idiom)  # noqa: B008 (hypothesis's idiom)
    """A valid convolution: arrays and hyper-parameters, float64."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    C = groups * draw(channels_per_group)
    F_ = groups * draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = draw(pairs(1, 3))
    dilation = draw(pairs(1, 2))
    pad = draw(st.one_of(pairs(0, 2), st.sampled_from(["same", "valid"])))
    assume(pad != "same" or stride in (1, (1, 1)))
    N = draw(st.integers(1, 3))
    H, W = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    try:
        geometry.window_geometry((H, W), kernel, stride, pad, dilation)
    except ValueError:
        assume(False)
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((F_, C // groups) + kernel)
    b = rng.standard_normal(F_) if draw(st.booleans()) else None
    params = dict(stride=stride, pad=pad, dilation=dilation, groups=groups)
    return x, w, b, params, rng


def _backward_both(x, w, b, params, rng, x_fast=None):
    out, cache = conv2d_forward(x if x_fast is None else x_fast, w, b, **params)
    out_naive, cache_naive = conv2d_forward_naive(x, w, b, **params)
    dout = rng.standard_normal(out.shape)
    return (out, conv2d_backward(dout, cache)), (out_naive, conv2d_backward_naive(dout, cache_naive)), dout


def _assert_same(fast, naive, rtol=1e-10):
    (out, grads), (out_naive, grads_naive) = fast, naive
    assert_close(out, out_naive, rtol=rtol, name="out")
    for name, g, g_naive in zip(("dx", "dw", "db"), grads, grads_naive):
        if g_naive is None:
            assert g is None
        else:
            assert_close(g, g_naive, rtol=rtol, atol=1e-11, name=name)


@given(conv_case())
def test_fast_matches_naive(case):
    x, w, b, params, rng = case
    fast, naive, _ = _backward_both(x, w, b, params, rng)
    _assert_same(fast, naive)


@given(conv_case(channels_per_group=st.integers(16, 18), max_size=5))
def test_fast_matches_naive_with_many_channels(case):
    """16+ channels per group takes the channels-last patch layout."""
    x, w, b, params, rng = case
    fast, naive, _ = _backward_both(x, w, b, params, rng, x_fast=channels_last(x))
    _assert_same(fast, naive)


@pytest.mark.parametrize("channels", [3, 32])
@pytest.mark.parametrize("stride", [1, 2])
def test_many_chunks_match_one_chunk(monkeypatch, channels, stride):
    """Chunking over images (last chunk shorter) changes nothing but speed."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, channels, 6, 5))
    w = rng.standard_normal((4, channels, 3, 3))
    b = rng.standard_normal(4)
    params = dict(stride=stride, pad=1)
    fast_one_chunk, naive, _ = _backward_both(x, w, b, params, np.random.default_rng(2))
    monkeypatch.setattr(tuning, "CHUNK_BYTES", 1)  # one image per chunk
    fast_many, _, _ = _backward_both(x, w, b, params, np.random.default_rng(2))
    _assert_same(fast_many, fast_one_chunk, rtol=1e-12)
    _assert_same(fast_many, naive)


@requires_torch
@given(st.one_of(conv_case(), conv_case(channels_per_group=st.integers(16, 17), max_size=5)))
def test_matches_torch(case):
    x, w, b, params, rng = case
    out, cache = conv2d_forward(x, w, b, **params)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv2d_backward(dout, cache)
    xt, wt = to_torch(x, True), to_torch(w, True)
    bt = None if b is None else to_torch(b, True)
    stride, dilation = params["stride"], params["dilation"]
    out_t = F.conv2d(xt, wt, bt, stride=stride, padding=params["pad"], dilation=dilation, groups=params["groups"])
    out_t.backward(to_torch(dout))
    assert_close(out, out_t, rtol=1e-9, name="out")
    assert_close(dx, xt.grad, rtol=1e-9, atol=1e-11, name="dx")
    assert_close(dw, wt.grad, rtol=1e-9, atol=1e-11, name="dw")
    if b is not None:
        assert_close(db, bt.grad, rtol=1e-9, name="db")


@pytest.mark.parametrize(
    "params",
    [
        dict(stride=1, pad=1),
        dict(stride=2, pad=1),
        dict(stride=(1, 2), pad=(2, 0), dilation=2),
        dict(stride=1, pad="same", groups=2),
    ],
)
@pytest.mark.parametrize("channels", [4, 16])
def test_numerical_gradients(params, channels):
    rng = np.random.default_rng(231)
    x = rng.standard_normal((2, channels, 5, 5))
    w = rng.standard_normal((4, channels // params.get("groups", 1), 3, 3))
    b = rng.standard_normal(4)
    # Convolution is linear in each argument: a larger step has no truncation
    # error and less rounding error than CS231n's default h=1e-5.
    errors = check_op(conv2d_forward, conv2d_backward, x, w, b, h=1e-4, **params)
    assert set(errors) == {"x", "w", "b"}
    assert max(errors.values()) < 1e-7, errors


def test_float32_in_float32_out_and_inputs_untouched():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    before = x.copy(), w.copy(), b.copy()
    out, cache = conv2d_forward(x, w, b, pad=1)
    grads = conv2d_backward(np.ones_like(out), cache)
    assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    for original, kept in zip((x, w, b), before):
        np.testing.assert_array_equal(original, kept)


def test_no_bias_gives_no_bias_gradient():
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4))
    out, cache = conv2d_forward(x, np.ones((3, 2, 3, 3)), None)
    dx, dw, db = conv2d_backward(np.ones_like(out), cache)
    assert db is None and dx.shape == x.shape and dw.shape == (3, 2, 3, 3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(x=np.zeros((1, 3, 4, 4)), w=np.zeros((2, 3, 7, 7))), "larger than the padded input"),
        (dict(x=np.zeros((1, 3, 4, 4)), w=np.zeros((2, 1, 3, 3)), groups=2), "groups=2 does not divide"),
        (dict(x=np.zeros((1, 4, 4, 4)), w=np.zeros((3, 2, 3, 3)), groups=2), "3 filters"),
        (dict(x=np.zeros((1, 3, 4, 4)), w=np.zeros((2, 2, 3, 3))), r"w must have shape \(2, 3, KH, KW\)"),
        (dict(x=np.zeros((1, 3, 4, 4)), w=np.zeros((2, 3, 3, 3)), pad=-1), "pad must be at least 0"),
        (dict(x=np.zeros((3, 4, 4)), w=np.zeros((2, 3, 3, 3))), "x must have 4 dimensions"),
        (dict(x=np.zeros((1, 3, 4, 4), int), w=np.zeros((2, 3, 3, 3))), "floating-point"),
        (dict(x=np.zeros((1, 3, 4, 4)), w=np.zeros((2, 3, 3, 3)), stride=2, pad="same"), "needs stride 1"),
        (dict(x=np.zeros((1, 3, 4, 4)), w=np.zeros((2, 3, 3, 3)), stride=0), "stride must be at least 1"),
        (dict(x=np.zeros((1, 3, 4, 4)), w=np.zeros((2, 3, 3, 3)), b=np.zeros(3)), r"b must have shape \(2,\)"),
        (dict(x=np.zeros((1, 3, 4, 4)), w=np.zeros((2, 3, 3, 3)), pad="full"), "'same' or 'valid'"),
    ],
)
@pytest.mark.parametrize("forward", [conv2d_forward, conv2d_forward_naive])
def test_bad_arguments_are_named(forward, kwargs, message):
    kwargs = {"b": None, **kwargs}
    with pytest.raises(ValueError, match=message):
        forward(**kwargs)


def test_backward_checks_dout_shape():
    out, cache = conv2d_forward(np.zeros((1, 3, 4, 4)), np.zeros((2, 3, 3, 3)), None)
    with pytest.raises(ValueError, match=r"dout must have the forward output's shape \(1, 2, 2, 2\)"):
        conv2d_backward(np.zeros((1, 2, 3, 3)), cache)


def test_half_precision_is_refused_like_integers():
    with pytest.raises(
        ValueError, match="x must be a floating-point array \\(float32 or float64\\), got dtype float16"
    ):
        conv2d_forward(np.zeros((1, 1, 3, 3), np.float16), np.zeros((1, 1, 3, 3)), None)
