import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from helpers import F, assert_close, channels_last, requires_torch, to_torch
from numcnn.gradcheck import check_op
from numcnn.ops.conv_transpose import (
    conv_transpose2d_backward,
    conv_transpose2d_backward_naive,
    conv_transpose2d_forward,
    conv_transpose2d_forward_naive,
    transposed_geometry,
)


@st.composite
def conv_transpose_case(draw, channels_per_group=st.integers(1, 3), max_size=6):  # noqa: B008 (hypothesis's idiom)
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    C = groups * draw(channels_per_group)
    filters_per_group = draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pad = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    N, H, W = draw(st.integers(1, 3)), draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    try:
        transposed_geometry((H, W), kernel, stride, pad, output_padding, dilation)
    except ValueError:
        assume(False)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((C, filters_per_group) + kernel)
    b = rng.standard_normal(filters_per_group * groups) if draw(st.booleans()) else None
    params = dict(stride=stride, pad=pad, output_padding=output_padding, dilation=dilation, groups=groups)
    return x, w, b, params, rng


@given(st.one_of(conv_transpose_case(), conv_transpose_case(st.integers(16, 17), max_size=4)))
def test_fast_matches_naive(case):
    x, w, b, params, rng = case
    out, cache = conv_transpose2d_forward(channels_last(x), w, b, **params)
    out_naive, cache_naive = conv_transpose2d_forward_naive(x, w, b, **params)
    assert_close(out, out_naive, name="out")
    dout = rng.standard_normal(out.shape)
    for name, g, g_naive in zip(
        ("dx", "dw", "db"), conv_transpose2d_backward(dout, cache), conv_transpose2d_backward_naive(dout, cache_naive)
    ):
        if g_naive is None:
            assert g is None
        else:
            assert_close(g, g_naive, atol=1e-11, name=name)


@requires_torch
@given(st.one_of(conv_transpose_case(), conv_transpose_case(st.integers(16, 17), max_size=4)))
def test_matches_torch(case):
    x, w, b, params, rng = case
    out, cache = conv_transpose2d_forward(x, w, b, **params)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv_transpose2d_backward(dout, cache)
    xt, wt = to_torch(x, True), to_torch(w, True)
    bt = None if b is None else to_torch(b, True)
    out_t = F.conv_transpose2d(
        xt,
        wt,
        bt,
        stride=params["stride"],
        padding=params["pad"],
        output_padding=params["output_padding"],
        groups=params["groups"],
        dilation=params["dilation"],
    )
    out_t.backward(to_torch(dout))
    assert_close(out, out_t, rtol=1e-9, atol=1e-11, name="out")
    assert_close(dx, xt.grad, rtol=1e-9, atol=1e-11, name="dx")
    assert_close(dw, wt.grad, rtol=1e-9, atol=1e-11, name="dw")
    if b is not None:
        assert_close(db, bt.grad, rtol=1e-9, name="db")


@pytest.mark.parametrize(
    "params",
    [
        dict(stride=2, pad=1, output_padding=1),
        dict(stride=1, pad=0),
        dict(stride=(2, 1), pad=(0, 1), dilation=2, groups=2),
    ],
)
def test_numerical_gradients(params):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 3, 4))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(3 * params.get("groups", 1))
    errors = check_op(conv_transpose2d_forward, conv_transpose2d_backward, x, w, b, h=1e-4, **params)
    assert set(errors) == {"x", "w", "b"} and max(errors.values()) < 1e-7, errors


def test_output_size_is_pytorchs():
    # (H - 1)*s - 2p + d*(k - 1) + output_padding + 1 = 4*2 - 2 + 2 + 1 + 1 = 10
    out, _ = conv_transpose2d_forward(
        np.zeros((1, 2, 5, 5)), np.zeros((2, 3, 3, 3)), None, stride=2, pad=1, output_padding=1
    )
    assert out.shape == (1, 3, 10, 10)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(stride=2, output_padding=2), "output_padding must be smaller than stride or dilation"),
        (dict(pad=3), "output size .* is below 1"),
        (dict(pad="same"), "pad must be an int or a pair"),
        (dict(groups=2), "groups=2 does not divide"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        conv_transpose2d_forward(np.zeros((1, 3, 2, 2)), np.zeros((3, 2, 3, 3)), None, **kwargs)


def test_weight_shape_is_checked():
    with pytest.raises(ValueError, match=r"w must have shape \(3, F/groups, KH, KW\)"):
        conv_transpose2d_forward(np.zeros((1, 3, 2, 2)), np.zeros((2, 3, 3, 3)), None)
