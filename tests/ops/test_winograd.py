"""Winograd F(2x2, 3x3) and F(4x4, 3x3): the transforms' algebra, and convolutions through them
against the loops and PyTorch."""

from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import F, assert_close, channels_last, requires_torch, to_torch
from numcnn.ops import engine
from numcnn.ops.conv import conv2d_backward, conv2d_backward_naive, conv2d_forward, conv2d_forward_naive
from numcnn.ops.engine import geometry, tuning, winograd

TILINGS = [winograd.F_2X2, winograd.F_4X4]


@contextmanager
def small_layers(m=2):
    """Send test-sized layers through F(m x m, 3x3), a few images per chunk; yields the engines' call counts."""
    calls = {"forward": 0, "weight_grad": 0}

    def counted(name):
        engine = getattr(winograd, name)

        def run(*args):
            calls[name] += 1
            return engine(*args)

        return run

    with pytest.MonkeyPatch.context() as patch, engine.use(f"winograd{m}"):  # channels-last, any size
        patch.setattr(tuning, "WINOGRAD_CHUNK_BYTES", 1)
        for name in calls:
            patch.setattr(winograd, name, counted(name))
        yield calls


@pytest.mark.parametrize("tiling", TILINGS, ids=lambda t: f"F({t.m}x{t.m})")
def test_one_tile_is_the_correlation_of_a_3x3_filter(tiling):
    """y = A^T [(G g G^T) * (B^T d B)] A equals the m x m correlations of the tile."""
    rng = np.random.default_rng(0)
    a, m = tiling.alpha, tiling.m
    d, g = rng.standard_normal((a, a)), rng.standard_normal((3, 3))
    y = tiling.A_T @ ((tiling.G @ g @ tiling.G.T) * (tiling.B_T @ d @ tiling.B_T.T)) @ tiling.A_T.T
    direct = np.array([[np.sum(d[i : i + 3, j : j + 3] * g) for j in range(m)] for i in range(m)])
    assert_close(y, direct, rtol=1e-12)


@pytest.mark.parametrize("tiling", TILINGS, ids=lambda t: f"F({t.m}x{t.m})")
def test_transforms_match_their_matrices(tiling):
    rng = np.random.default_rng(1)
    a, m = tiling.alpha, tiling.m
    xp = rng.standard_normal((2, 2 * m + 2, 3 * m + 2, 3))  # 2 x 3 tiles of a x a, overlapping by 2
    V = np.empty((a * a, 2, 2, 3, 3))
    tiling.input_transform(xp, (2, 3), V)
    for n, i, j, c in [(1, 1, 2, 2), (0, 0, 0, 0), (0, 1, 1, 1)]:
        expected = tiling.B_T @ xp[n, m * i : m * i + a, m * j : m * j + a, c] @ tiling.B_T.T
        assert_close(V[:, n, i, j, c].reshape(a, a), expected, rtol=1e-13)

    M = rng.standard_normal((a * a, 2, 2, 3, 5))
    out = np.empty((2, 2 * m, 3 * m, 5))
    tiling.output_transform(M, out)
    for n, i, j, c in [(1, 1, 2, 2), (0, 0, 1, 4)]:
        assert_close(
            out[n, m * i : m * i + m, m * j : m * j + m, c],
            tiling.A_T @ M[:, n, i, j, c].reshape(a, a) @ tiling.A_T.T,
            rtol=1e-13,
        )

    dy = rng.standard_normal((2, 2 * m, 3 * m, 5))
    dM = np.empty((a * a, 2, 2, 3, 5))
    tiling.output_grad_transform(dy, dM)
    for n, i, j, c in [(1, 1, 2, 2), (0, 1, 0, 3)]:
        assert_close(
            dM[:, n, i, j, c].reshape(a, a),
            tiling.A_T.T @ dy[n, m * i : m * i + m, m * j : m * j + m, c] @ tiling.A_T,
            rtol=1e-13,
        )


@pytest.mark.parametrize("tiling", TILINGS, ids=lambda t: f"F({t.m}x{t.m})")
def test_unrolled_transforms_match_their_matrix_twins_everywhere(tiling):
    """Every tile, image and channel of the unrolled passes against the tile-by-tile matrix form."""
    rng = np.random.default_rng(11)
    a, m = tiling.alpha, tiling.m
    xp = rng.standard_normal((2, 3 * m + 3, 2 * m + 2, 4))  # 3 x 2 tiles, and a row the tiles do not reach
    V = np.empty((a * a, 2, 3, 2, 4))
    tiling.input_transform(xp, (3, 2), V)
    assert_close(V, tiling.input_transform_by_matrix(xp, (3, 2)), rtol=1e-13, atol=1e-13)
    M = rng.standard_normal((a * a, 2, 3, 2, 5))
    out = np.empty((2, 3 * m, 2 * m, 5))
    tiling.output_transform(M, out)
    assert_close(out, tiling.output_transform_by_matrix(M), rtol=1e-13, atol=1e-13)
    dy = rng.standard_normal((2, 3 * m, 2 * m, 5))
    dM = np.empty((a * a, 2, 3, 2, 5))
    tiling.output_grad_transform(dy, dM)
    assert_close(dM, tiling.output_grad_transform_by_matrix(dy), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("tiling", TILINGS, ids=lambda t: f"F({t.m}x{t.m})")
def test_matrix_twins_compose_to_the_correlation(tiling):
    """output(U * input) by the twins is the 3x3 correlation of a whole padded image: they are the maths."""
    rng = np.random.default_rng(12)
    m = tiling.m
    xp, g = rng.standard_normal((1, 2 * m + 2, 2 * m + 2, 1)), rng.standard_normal((3, 3))
    V = tiling.input_transform_by_matrix(xp, (2, 2))
    U = winograd.weight_transform(g[None, None], tiling)  # (a*a, 1, 1)
    y = tiling.output_transform_by_matrix(V * U[:, :, None, None])[0, :, :, 0]
    direct = np.array([[np.sum(xp[0, i : i + 3, j : j + 3, 0] * g) for j in range(2 * m)] for i in range(2 * m)])
    assert_close(y, direct, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("tiling", TILINGS, ids=lambda t: f"F({t.m}x{t.m})")
def test_weight_transform_and_its_adjoint(tiling):
    """<U, dU> = <w, G^T dU G>: weight_grad_from is the transpose of weight_transform."""
    rng = np.random.default_rng(2)
    a = tiling.alpha
    w, dU = rng.standard_normal((5, 4, 3, 3)), rng.standard_normal((a * a, 4, 5))
    U = winograd.weight_transform(w, tiling)
    assert_close(U[:, 1, 3].reshape(a, a), tiling.G @ w[3, 1] @ tiling.G.T, rtol=1e-13)
    assert np.isclose(np.sum(U * dU), np.sum(w * winograd.weight_grad_from(dU, w.shape, tiling)), rtol=1e-12)


@st.composite
def winograd_case(draw):
    N, C, F_ = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    H, W = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    pad = draw(st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)), st.just("same")))
    try:
        geometry.window_geometry((H, W), (3, 3), 1, pad, 1)
    except ValueError:
        pad = 2
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x, w = rng.standard_normal((N, C, H, W)), rng.standard_normal((F_, C, 3, 3))
    b = rng.standard_normal(F_) if draw(st.booleans()) else None
    return x, w, b, pad, rng


@pytest.mark.parametrize("m", [2, 4])
@given(case=winograd_case())
def test_convolution_through_winograd_matches_the_loops(m, case):
    """Odd and even sizes, asymmetric and 'same' padding, a batch of 1: forward, dx, dw and db."""
    x, w, b, pad, rng = case
    dout = channels_last(rng.standard_normal(conv2d_forward_naive(x, w, b, pad=pad)[0].shape))
    with small_layers(m) as calls:
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
@pytest.mark.parametrize(
    "m, tolerance",
    [
        (2, 2e-5),  # float32 through the transforms: errors of a few ulps of the sums, like im2col's
        (4, 1e-4),  # F(4x4)'s coefficients (up to 8, and 1/24) amplify rounding about 5x
    ],
)
def test_float32_training_sizes_match_torch(m, tolerance):
    """A real layer (128 channels, 16x16, batch 4) in float32, against PyTorch in float64."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 128, 16, 16)).astype(np.float32)
    w = (rng.standard_normal((128, 128, 3, 3)) / 34).astype(np.float32)  # outputs of unit scale
    with engine.use(f"winograd{m}"):
        out, cache = conv2d_forward(channels_last(x), w, None, pad=1)
        assert winograd.tile_size(cache.geom, 1, 128, 128) == m
        dout = rng.standard_normal(out.shape).astype(np.float32)
        dx, dw, _ = conv2d_backward(dout, cache)
    xt, wt = to_torch(x.astype(np.float64), True), to_torch(w.astype(np.float64), True)
    ref = F.conv2d(xt, wt, padding=1)
    ref.backward(to_torch(dout.astype(np.float64)))
    assert_close(out, ref, rtol=1e-4, atol=tolerance, name="out")
    assert_close(dx, xt.grad, rtol=1e-4, atol=tolerance, name="dx")
    assert_close(dw, wt.grad, rtol=1e-4, atol=100 * tolerance, name="dw")  # sums of 1024 products of unit scale


@pytest.mark.parametrize(
    "kernel, stride, dilation, groups, channels, out_hw, m",
    [
        ((3, 3), 1, 1, 1, 128, (16, 16), 4),
        ((3, 3), 1, 1, 1, 64, (32, 32), 4),
        ((3, 3), 1, 1, 1, 128, (8, 8), 4),
        ((3, 3), 1, 1, 1, 64, (8, 8), 0),  # too little work per pass for F(4x4), too few channels for F(2x2)
        ((3, 3), 1, 1, 1, 256, (4, 4), 2),  # F(4x4): one tile per image, too little work per pass
        ((3, 3), 1, 1, 1, 128, (7, 7), 2),  # F(2x2): 64 outputs computed for 49, still pays
        ((3, 3), 1, 1, 1, 128, (6, 6), 2),  # F(4x4) would compute 64 for 36; F(2x2) tiles exactly
        ((3, 3), 1, 1, 1, 64, (6, 6), 0),  # and F(2x2) needs 128 channels
        ((3, 3), 1, 1, 1, 128, (3, 3), 0),  # 16 for 9 either way: does not pay
        ((3, 3), 1, 1, 1, 32, (16, 16), 0),  # too few channels: measured a draw or worse
        ((3, 3), 2, 1, 1, 128, (8, 8), 0),
        ((3, 3), 1, 2, 1, 128, (8, 8), 0),
        ((3, 3), 1, 1, 2, 256, (8, 8), 0),
        ((5, 5), 1, 1, 1, 128, (8, 8), 0),
    ],
)
def test_which_convolutions_go_through_which_tiling(kernel, stride, dilation, groups, channels, out_hw, m):
    span = (dilation * (kernel[0] - 1), dilation * (kernel[1] - 1))
    in_hw = ((out_hw[0] - 1) * stride + span[0] + 1 - 2, (out_hw[1] - 1) * stride + span[1] + 1 - 2)
    geom = geometry.window_geometry(in_hw, kernel, stride, 1, dilation)
    assert geom.out_hw == out_hw
    assert winograd.tile_size(geom, groups, channels, channels) == m
    assert winograd.applies(geom, groups, channels, channels) is (m > 0)


def test_disabled_gives_the_same_values_through_im2col():
    rng = np.random.default_rng(4)
    x, w = channels_last(rng.standard_normal((2, 128, 6, 6))), rng.standard_normal((128, 128, 3, 3))
    through = conv2d_forward(x, w, None, pad=1)[0]
    with engine.use("im2col"):
        assert_close(conv2d_forward(x, w, None, pad=1)[0], through, rtol=1e-11)


def _nonfinite(a):
    return ~np.isfinite(np.asarray(a))


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_a_non_finite_pixel_spreads_exactly_as_in_the_direct_sum(m, value):
    """Winograd spread one inf pixel to every output of its tiles (1600 where the direct sum has 576)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 6, 9, 9))
    x[1, 2, 4, 5] = value
    w, dout = rng.standard_normal((6, 6, 3, 3)), channels_last(rng.standard_normal((3, 6, 9, 9)))
    with small_layers(m) as calls, np.errstate(invalid="ignore", over="ignore"):
        out, cache = conv2d_forward(channels_last(x), w, None, pad=1)
        dx, dw, _ = conv2d_backward(dout, cache)
        out_naive, cache_naive = conv2d_forward_naive(x, w, None, pad=1)
        dx_naive, dw_naive, _ = conv2d_backward_naive(dout, cache_naive)
    assert calls["forward"] == 2 and calls["weight_grad"] == 1
    for name, got, want in (("out", out, out_naive), ("dx", dx, dx_naive), ("dw", dw, dw_naive)):
        np.testing.assert_array_equal(_nonfinite(got), _nonfinite(want), err_msg=name)
        finite = ~_nonfinite(want)
        assert_close(got[finite], want[finite], rtol=1e-10, atol=1e-10, name=name)
    assert _nonfinite(out).sum() == 6 * 9  # every filter, the 3x3 window around the pixel


@pytest.mark.parametrize("m", [2, 4])
def test_a_non_finite_dout_reaches_the_same_gradients_as_the_direct_sum(m):
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((2, 6, 8, 8)), rng.standard_normal((6, 6, 3, 3))
    dout = rng.standard_normal((2, 6, 8, 8))
    dout[0, 1, 3, 3] = np.inf
    with small_layers(m), np.errstate(invalid="ignore", over="ignore"):
        _, cache = conv2d_forward(channels_last(x), w, None, pad=1)
        dx, dw, _ = conv2d_backward(channels_last(dout), cache)
        _, cache_naive = conv2d_forward_naive(x, w, None, pad=1)
        dx_naive, dw_naive, _ = conv2d_backward_naive(dout, cache_naive)
    np.testing.assert_array_equal(_nonfinite(dx), _nonfinite(dx_naive))
    np.testing.assert_array_equal(_nonfinite(dw), _nonfinite(dw_naive))


@pytest.mark.parametrize("m", [2, 4])
def test_a_large_finite_float32_input_stays_finite(m):
    """1e38 in float32: the direct sum is finite, Winograd's transforms (x up to 100) overflowed."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 6, 8, 8)).astype(np.float32)
    x[0, 3, 4, 4] = 1e38
    w = (rng.standard_normal((6, 6, 3, 3)) / 10).astype(np.float32)
    with small_layers(m), np.errstate(over="raise", invalid="raise"):
        out, _ = conv2d_forward(channels_last(x), w, None, pad=1)
    want = conv2d_forward_naive(x.astype(np.float64), w.astype(np.float64), None, pad=1)[0]
    assert np.isfinite(want).all() and np.isfinite(out).all()
    assert_close(out, want, rtol=1e-5, atol=1e-5 * np.abs(want).max(), name="out")


def test_non_finite_weights_take_the_direct_sum():
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal((2, 6, 8, 8)), rng.standard_normal((6, 6, 3, 3))
    w[2, 1, 0, 2] = np.nan
    with small_layers(4), np.errstate(invalid="ignore"):
        out, _ = conv2d_forward(channels_last(x), w, None, pad=1)
    want = conv2d_forward_naive(x, w, None, pad=1)[0]
    np.testing.assert_array_equal(_nonfinite(out), _nonfinite(want))  # filter 2 only
    assert _nonfinite(out)[:, 2].all() and not _nonfinite(out)[:, [0, 1, 3, 4, 5]].any()


def test_only_chunks_beyond_the_safe_range_take_the_direct_sum():
    """One image per chunk (small_layers): the chunk with a value past the limit, and no other."""
    rng = np.random.default_rng(9)
    geom = geometry.window_geometry((8, 8), (3, 3), 1, 1, 1)
    w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    with small_layers(4):
        tiling = winograd.TILINGS[winograd.tile_size(geom, 1, 4, 4)]
        limit = winograd.input_limit(np.float32, winograd.forward_growth(tiling, 4), winograd.max_abs(w))
        x_l = rng.uniform(-limit, limit, (4, 8, 8, 4)).astype(np.float32)
        x_l[1, 0, 0, 0] = np.float32(limit) * 0.999  # inside: Winograd, and finite
        x_l[2, 5, 5, 3] = np.float32(limit) * 1.01  # beyond: the direct sum
        out, taken = np.empty((4, 8, 8, 4), np.float32), []

        def direct(start, stop):
            taken.append((start, stop))
            out[start:stop] = 0

        with np.errstate(over="raise", invalid="raise"):
            winograd.forward(x_l, w, geom, out, direct)
    assert taken == [(2, 3)]
    assert np.isfinite(out).all()
