"""Layer, group and instance norm, always with random gamma and beta."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import F, assert_close, channels_last, requires_torch, to_torch
from numcnn.gradcheck import check_op
from numcnn.ops import norm


def _data(draw, min_ndim=2):
    N, C = draw(st.integers(1, 3)), draw(st.sampled_from([1, 2, 3, 4, 6]))
    spatial = () if min_ndim == 2 and draw(st.booleans()) else (draw(st.integers(1, 4)), draw(st.integers(2, 4)))
    if not spatial and N == 1:
        N = 2  # a single value per group is refused, as by PyTorch
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = 4.0 * rng.standard_normal((N, C) + spatial) + 3.0
    if len(spatial) == 2 and draw(st.booleans()):
        x = channels_last(x)
    return x, rng


def _affine_params(rng, shape, affine):
    if not affine:
        return None, None
    return rng.standard_normal(shape), rng.standard_normal(shape)


@st.composite
def layernorm_case(draw):
    x, rng = _data(draw)
    return (x, *_affine_params(rng, x.shape[1:], draw(st.booleans()))), {}, rng


@st.composite
def groupnorm_case(draw):
    x, rng = _data(draw)
    groups = draw(st.sampled_from([g for g in (1, 2, 3, 6) if x.shape[1] % g == 0]))
    return (x, *_affine_params(rng, (x.shape[1],), draw(st.booleans())), groups), {}, rng


@st.composite
def instancenorm_case(draw):
    x, rng = _data(draw, min_ndim=3)
    return (x, *_affine_params(rng, (x.shape[1],), draw(st.booleans()))), {}, rng


OPS = {
    "layernorm": (
        layernorm_case,
        norm.layernorm_forward,
        norm.layernorm_backward,
        norm.layernorm_forward_naive,
        norm.layernorm_backward_naive,
    ),
    "groupnorm": (
        groupnorm_case,
        norm.groupnorm_forward,
        norm.groupnorm_backward,
        norm.groupnorm_forward_naive,
        norm.groupnorm_backward_naive,
    ),
    "instancenorm": (
        instancenorm_case,
        norm.instancenorm_forward,
        norm.instancenorm_backward,
        norm.instancenorm_forward_naive,
        norm.instancenorm_backward_naive,
    ),
}


def _torch_forward(name, args):
    x, gamma, beta = (to_torch(a, True) if a is not None else None for a in args[:3])
    if name == "layernorm":
        return (x, gamma, beta), F.layer_norm(x, x.shape[1:], gamma, beta, eps=1e-5)
    if name == "groupnorm":
        return (x, gamma, beta), F.group_norm(x, args[3], gamma, beta, eps=1e-5)
    return (x, gamma, beta), F.instance_norm(x, weight=gamma, bias=beta, eps=1e-5)


@pytest.mark.parametrize("name", OPS)
def test_fast_matches_naive(name):
    case, forward, backward, forward_naive, backward_naive = OPS[name]

    @given(case())
    def check(example):
        args, kwargs, rng = example
        out, cache = forward(*args, **kwargs)
        out_n, cache_n = forward_naive(*args, **kwargs)
        assert_close(out, out_n, name="out")
        dout = rng.standard_normal(out.shape)
        for label, g, g_n in zip(("dx", "dgamma", "dbeta"), backward(dout, cache), backward_naive(dout, cache_n)):
            if g_n is None:
                assert g is None
            else:
                assert_close(g, g_n, rtol=1e-9, atol=1e-11, name=label)

    check()


@requires_torch
@pytest.mark.parametrize("name", OPS)
def test_matches_torch(name):
    case, forward, backward = OPS[name][:3]

    @given(case())
    def check(example):
        args, kwargs, rng = example
        out, cache = forward(*args, **kwargs)
        dout = rng.standard_normal(out.shape)
        grads = backward(dout, cache)
        tensors, out_t = _torch_forward(name, args)
        out_t.backward(to_torch(dout))
        assert_close(out, out_t, rtol=1e-9, atol=1e-11, name="out")
        for label, g, t in zip(("dx", "dgamma", "dbeta"), grads, tensors):
            if t is not None:
                assert_close(g, t.grad, rtol=1e-8, atol=1e-10, name=label)

    check()


@pytest.mark.parametrize(
    "forward, backward, args",
    [
        (norm.layernorm_forward, norm.layernorm_backward, ("x", (6, 4, 3), (6, 4, 3))),
        (norm.groupnorm_forward, norm.groupnorm_backward, ("x", (6,), (6,), 3)),
        (norm.instancenorm_forward, norm.instancenorm_backward, ("x", (6,), (6,))),
    ],
)
def test_numerical_gradients_with_random_gamma_and_beta(forward, backward, args):
    rng = np.random.default_rng(231)
    x = 5.0 * rng.standard_normal((2, 6, 4, 3)) + 12.0
    values = [x if a == "x" else rng.standard_normal(a) if isinstance(a, tuple) else a for a in args]
    errors = check_op(forward, backward, *values)
    assert set(errors) == {"x", "gamma", "beta"}
    assert max(errors.values()) < 1e-6, errors


def test_groupnorm_normalizes_each_group():
    x = 4.0 * np.random.default_rng(231).standard_normal((2, 6, 4, 5)) + 10.0
    out, _ = norm.groupnorm_forward(x, None, None, 2)
    groups = out.reshape(2 * 2, -1)
    assert_close(groups.mean(axis=1), np.zeros(4), atol=1e-12)
    assert_close(groups.std(axis=1), np.ones(4), rtol=1e-6)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: norm.groupnorm_forward(np.zeros((2, 6, 2, 2)), None, None, 4), "num_groups=4 does not divide"),
        (lambda: norm.groupnorm_forward(np.zeros((2, 6, 2, 2)), np.ones(3), None, 2), r"gamma must have shape \(6,\)"),
        (lambda: norm.layernorm_forward(np.zeros((2, 6)), np.ones(5), None), r"gamma must have shape \(6,\)"),
        (lambda: norm.layernorm_forward(np.zeros(6), None, None), "at least 2 dimensions"),
        (lambda: norm.instancenorm_forward(np.zeros((2, 6)), None, None), "at least 3 dimensions"),
        (lambda: norm.groupnorm_forward(np.zeros((2, 6), np.int64), None, None, 2), "floating-point"),
        (lambda: norm.groupnorm_forward(np.zeros((1, 6)), None, None, 6), "more than 1 value per group"),
        (lambda: norm.instancenorm_forward(np.zeros((3, 6, 1, 1)), None, None), "more than 1 spatial element"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
