"""Winograd F(2x2, 3x3): the transforms' algebra, and convolutions through it against the loops and PyTorch."""

from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import F, assert_close, channels_last, requires_torch, to_torch
from numcnn.ops import conv, windows, winograd
from numcnn.ops.conv import conv2d_backward, conv2d_backward_naive, conv2d_forward, conv2d_forward_naive

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], float)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], float)


@contextmanager
def small_layers():
    """Send test-sized layers through Winograd, a few images per chunk; yields the engines' call counts."""
    calls = {"forward": 0, "weight_grad": 0}

    def counted(name):
        engine = getattr(winograd, name)

        def run(*args):
            calls[name] += 1
            return engine(*args)
        return run

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(winograd, "MIN_CHANNELS", 1)
        patch.setattr(winograd, "MAX_TILE_WASTE", 16.0)
        patch.setattr(winograd, "CHUNK_BYTES", 1)
        patch.setattr(conv, "CHANNELS_LAST_MIN", 1)  # Winograd runs on channels-last layers
        for name in calls:
            patch.setattr(winograd, name, counted(name))
        yield calls


def test_one_tile_is_the_correlation_of_a_3x3_filter():
    """y = A^T [(G g G^T) * (B^T d B)] A equals the four 3x3 correlations of the tile."""
    rng = np.random.default_rng(0)
    d, g = rng.standard_normal((4, 4)), rng.standard_normal((3, 3))
    y = A_T @ ((winograd.G @ g @ winograd.G.T) * (B_T @ d @ B_T.T)) @ A_T.T
    direct = np.array([[np.sum(d[i:i + 3, j:j + 3] * g) for j in range(2)] for i in range(2)])
    assert_close(y, direct, rtol=1e-13)


def test_transforms_match_their_matrices():
    rng = np.random.default_rng(1)
    xp = rng.standard_normal((2, 6, 8, 3))  # 2 x 3 tiles of 4x4, overlapping by 2
    V = np.empty((16, 2, 2, 3, 3))
    winograd.input_transform(xp, (2, 3), V)
    n, i, j, c = 1, 1, 2, 2
    expected = B_T @ xp[n, 2 * i:2 * i + 4, 2 * j:2 * j + 4, c] @ B_T.T
    assert_close(V[:, n, i, j, c].reshape(4, 4), expected, rtol=1e-13)

    M = rng.standard_normal((16, 2, 2, 3, 5))
    out = np.empty((2, 4, 6, 5))
    winograd.output_transform(M, out)
    assert_close(out[n, 2 * i:2 * i + 2, 2 * j:2 * j + 2, c], A_T @ M[:, n, i, j, c].reshape(4, 4) @ A_T.T,
                 rtol=1e-13)

    dy = rng.standard_normal((2, 4, 6, 5))
    dM = np.empty((16, 2, 2, 3, 5))
    winograd.output_grad_transform(dy, dM)
    assert_close(dM[:, n, i, j, c].reshape(4, 4), A_T.T @ dy[n, 2 * i:2 * i + 2, 2 * j:2 * j + 2, c] @ A_T,
                 rtol=1e-13)


def test_weight_transform_and_its_adjoint():
    """<U, dU> = <w, G^T dU G>: weight_grad_from is the transpose of weight_transform."""
    rng = np.random.default_rng(2)
    w, dU = rng.standard_normal((5, 4, 3, 3)), rng.standard_normal((16, 4, 5))
    U = winograd.weight_transform(w)
    assert_close(U[:, 1, 3].reshape(4, 4), winograd.G @ w[3, 1] @ winograd.G.T, rtol=1e-13)
    assert np.isclose(np.sum(U * dU), np.sum(w * winograd.weight_grad_from(dU, w.shape)), rtol=1e-12)


@st.composite
def winograd_case(draw):
    N, C, F_ = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    H, W = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    pad = draw(st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)), st.just("same")))
    try:
        windows.window_geometry((H, W), (3, 3), 1, pad, 1)
    except ValueError:
        pad = 2
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x, w = rng.standard_normal((N, C, H, W)), rng.standard_normal((F_, C, 3, 3))
    b = rng.standard_normal(F_) if draw(st.booleans()) else None
    return x, w, b, pad, rng


@given(winograd_case())
def test_convolution_through_winograd_matches_the_loops(case):
    """Odd and even sizes, asymmetric and 'same' padding, a batch of 1: forward, dx, dw and db."""
    x, w, b, pad, rng = case
    dout = channels_last(rng.standard_normal(conv2d_forward_naive(x, w, b, pad=pad)[0].shape))
    with small_layers() as calls:
        out, cache = conv2d_forward(channels_last(x), w, b, pad=pad)
        grads = conv2d_backward(dout, cache)
    assert calls == {"forward": 2, "weight_grad": 1}  # out, dx (a convolution of dout) and dw
    out_naive, cache_naive = conv2d_forward_naive(x, w, b, pad=pad)
    assert_close(out, out_naive, rtol=1e-10, name="out")
    for name, g, g_naive in zip(("dx", "dw", "db"), grads, conv2d_backward_naive(dout, cache_naive)):
        if g_naive is None:
            assert g is None
        else:
            assert_close(g, g_naive, rtol=1e-10, atol=1e-11, name=name)


@requires_torch
def test_float32_training_sizes_match_torch():
    """A real layer (128 channels, 16x16, batch 4) in float32 on the default rule, against PyTorch in float64."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 128, 16, 16)).astype(np.float32)
    w = (rng.standard_normal((128, 128, 3, 3)) / 34).astype(np.float32)
    out, cache = conv2d_forward(channels_last(x), w, None, pad=1)
    assert winograd.applies(cache.geom, 1, 128, 128)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx, dw, _ = conv2d_backward(dout, cache)
    xt, wt = to_torch(x.astype(np.float64), True), to_torch(w.astype(np.float64), True)
    ref = F.conv2d(xt, wt, padding=1)
    ref.backward(to_torch(dout.astype(np.float64)))
    # float32 through the transforms: errors of a few ulps of the sums, like im2col's
    assert_close(out, ref, rtol=1e-4, atol=2e-5, name="out")
    assert_close(dx, xt.grad, rtol=1e-4, atol=2e-5, name="dx")
    assert_close(dw, wt.grad, rtol=1e-4, atol=2e-3, name="dw")


@pytest.mark.parametrize("kernel, stride, dilation, groups, channels, out_hw, expected", [
    ((3, 3), 1, 1, 1, 128, (16, 16), True),
    ((3, 3), 1, 1, 1, 128, (7, 7), True),      # 64 outputs computed for 49: still pays
    ((3, 3), 1, 1, 1, 128, (3, 3), False),     # 16 for 9: does not
    ((3, 3), 1, 1, 1, 64, (32, 32), False),    # too few channels: a draw
    ((3, 3), 2, 1, 1, 128, (8, 8), False),
    ((3, 3), 1, 2, 1, 128, (8, 8), False),
    ((3, 3), 1, 1, 2, 256, (8, 8), False),
    ((5, 5), 1, 1, 1, 128, (8, 8), False),
])
def test_which_convolutions_go_through_winograd(kernel, stride, dilation, groups, channels, out_hw, expected):
    span = (dilation * (kernel[0] - 1), dilation * (kernel[1] - 1))
    in_hw = ((out_hw[0] - 1) * stride + span[0] + 1 - 2, (out_hw[1] - 1) * stride + span[1] + 1 - 2)
    geom = windows.window_geometry(in_hw, kernel, stride, 1, dilation)
    assert geom.out_hw == out_hw
    assert winograd.applies(geom, groups, channels, channels) is expected


def test_disabled_gives_the_same_values_through_im2col(monkeypatch):
    rng = np.random.default_rng(4)
    x, w = channels_last(rng.standard_normal((2, 128, 6, 6))), rng.standard_normal((128, 128, 3, 3))
    through = conv2d_forward(x, w, None, pad=1)[0]
    monkeypatch.setattr(winograd, "ENABLED", False)
    assert_close(conv2d_forward(x, w, None, pad=1)[0], through, rtol=1e-11)
