import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from helpers import F, assert_close, channels_last, requires_torch, to_torch
from numcnn.gradcheck import check_op
from numcnn.ops import avg_pool, pool
from numcnn.ops.avg_pool import (
    avg_pool2d_backward,
    avg_pool2d_backward_naive,
    avg_pool2d_forward,
    avg_pool2d_forward_naive,
    global_avg_pool_backward,
    global_avg_pool_backward_naive,
    global_avg_pool_forward,
    global_avg_pool_forward_naive,
)
from numcnn.ops.pool import (
    max_pool2d_backward,
    max_pool2d_backward_naive,
    max_pool2d_forward,
    max_pool2d_forward_naive,
)


@st.composite
def pool_case(draw, dilated=True):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilated else (1, 1)
    pad = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    H, W = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    x = np.zeros((N, C, H, W))
    try:
        pool.pool_geometry(x, kernel, stride, pad, dilation)
    except ValueError:
        assume(False)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    # Small integers: nearly every window holds its maximum more than once.
    x = rng.integers(-2, 3, size=x.shape).astype(float)
    if draw(st.booleans()):
        x = channels_last(x)
    return x, dict(kernel_size=kernel, stride=stride, pad=pad), dilation, rng


def _with_nan_and_minus_inf(x, rng):
    """Some pixels NaN or -inf: a NaN is every window's max, and -inf ties with the padding."""
    x = x.copy(order="K")
    x[rng.random(x.shape) < 0.15] = np.nan
    x[rng.random(x.shape) < 0.3] = -np.inf
    return x


@given(pool_case(), st.booleans())
def test_max_pool_fast_matches_naive_with_ties(case, special_values):
    x, params, dilation, rng = case
    x = _with_nan_and_minus_inf(x, rng) if special_values else x
    out, cache = max_pool2d_forward(x, dilation=dilation, **params)
    out_naive, cache_naive = max_pool2d_forward_naive(x, dilation=dilation, **params)
    assert_close(out, out_naive, name="out")
    dout = rng.standard_normal(out.shape)
    assert_close(max_pool2d_backward(dout, cache), max_pool2d_backward_naive(dout, cache_naive), name="dx")


@given(pool_case(dilated=False), st.booleans())
def test_avg_pool_fast_matches_naive(case, count_include_pad):
    x, params, _, rng = case
    x = x + rng.standard_normal(x.shape)
    out, cache = avg_pool2d_forward(x, count_include_pad=count_include_pad, **params)
    out_naive, cache_naive = avg_pool2d_forward_naive(x, count_include_pad=count_include_pad, **params)
    assert_close(out, out_naive, name="out")
    dout = rng.standard_normal(out.shape)
    assert_close(avg_pool2d_backward(dout, cache), avg_pool2d_backward_naive(dout, cache_naive), name="dx")


def _every_window_reads_the_image(x, params, dilation):
    """False when a dilated window's taps all land in the padding (e.g. H=1, kernel 2, dilation
    2, pad 1: taps at rows -1 and 1). PyTorch 2.13 then returns an index outside the input and
    its backward writes there, corrupting memory; numcnn gives -inf and drops that gradient."""
    geom = pool.pool_geometry(x, params["kernel_size"], params["stride"], params["pad"], dilation)
    (top, _, left, _), (H, W) = geom.pad, geom.in_hw
    for size, out_size, k, s, d, p in (
        (H, geom.out_hw[0], geom.kernel[0], geom.stride[0], geom.dilation[0], top),
        (W, geom.out_hw[1], geom.kernel[1], geom.stride[1], geom.dilation[1], left),
    ):
        for o in range(out_size):
            if not any(0 <= o * s - p + i * d < size for i in range(k)):
                return False
    return True


def test_a_window_all_padding_gives_minus_inf_and_no_gradient():
    x = np.array([[[[5.0, 6.0]]]])
    params = dict(kernel_size=(2, 1), stride=1, pad=(1, 0))
    assert not _every_window_reads_the_image(x, params, (2, 1))
    out, cache = max_pool2d_forward(x, dilation=(2, 1), **params)
    np.testing.assert_array_equal(out, [[[[-np.inf, -np.inf]]]])
    np.testing.assert_array_equal(max_pool2d_backward(np.ones_like(out), cache), np.zeros_like(x))


@requires_torch
@given(pool_case(), st.booleans())
def test_max_pool_matches_torch_with_ties(case, special_values):
    """The gradient of a tied maximum goes to the same position PyTorch picks; so does that of a
    window holding NaN (its last NaN) or only -inf (its first pixel inside the image, not padding)."""
    x, params, dilation, rng = case
    assume(_every_window_reads_the_image(x, params, dilation))  # else torch writes out of bounds
    x = _with_nan_and_minus_inf(x, rng) if special_values else x
    out, cache = max_pool2d_forward(x, dilation=dilation, **params)
    dout = rng.standard_normal(out.shape)
    xt = to_torch(x, True)
    out_t = F.max_pool2d(xt, params["kernel_size"], params["stride"], params["pad"], dilation)
    out_t.backward(to_torch(dout))
    assert_close(out, out_t, name="out")
    assert_close(max_pool2d_backward(dout, cache), xt.grad, name="dx")


@requires_torch
@given(pool_case(dilated=False), st.booleans())
def test_avg_pool_matches_torch(case, count_include_pad):
    x, params, _, rng = case
    out, cache = avg_pool2d_forward(x, count_include_pad=count_include_pad, **params)
    dout = rng.standard_normal(out.shape)
    xt = to_torch(x, True)
    out_t = F.avg_pool2d(
        xt, params["kernel_size"], params["stride"], params["pad"], count_include_pad=count_include_pad
    )
    out_t.backward(to_torch(dout))
    assert_close(out, out_t, name="out")
    assert_close(avg_pool2d_backward(dout, cache), xt.grad, name="dx")


def test_tie_gradient_goes_to_first_position_in_raster_order():
    x = np.array([[[[1.0, 3.0], [3.0, 3.0]]]])
    out, cache = max_pool2d_forward(x, 2)
    np.testing.assert_array_equal(max_pool2d_backward(np.array([[[[5.0]]]]), cache), [[[[0.0, 5.0], [0.0, 0.0]]]])


@st.composite
def image_batch(draw, max_size=6):
    shape = (
        draw(st.integers(1, 3)),
        draw(st.integers(1, 4)),
        draw(st.integers(1, max_size)),
        draw(st.integers(1, max_size)),
    )
    x = np.random.default_rng(draw(st.integers(0, 2**16))).standard_normal(shape)
    return channels_last(x) if draw(st.booleans()) else x


@given(image_batch())
def test_global_avg_pool(x):
    out, cache = global_avg_pool_forward(x)
    out_naive, cache_naive = global_avg_pool_forward_naive(x)
    assert out.shape == x.shape[:2] + (1, 1)
    assert_close(out, x.mean(axis=(2, 3), keepdims=True))
    assert_close(out, out_naive)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    assert_close(global_avg_pool_backward(dout, cache), global_avg_pool_backward_naive(dout, cache_naive))
    assert_close(global_avg_pool_backward(dout, cache), np.broadcast_to(dout / (x.shape[2] * x.shape[3]), x.shape))


@requires_torch
@given(image_batch())
def test_global_avg_pool_matches_torch(x):
    out, cache = global_avg_pool_forward(x)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    xt = to_torch(x, True)
    out_t = F.adaptive_avg_pool2d(xt, 1)
    out_t.backward(to_torch(dout))
    assert_close(out, out_t)
    assert_close(global_avg_pool_backward(dout, cache), xt.grad)


@pytest.mark.parametrize(
    "forward, backward, kwargs",
    [
        (max_pool2d_forward, max_pool2d_backward, dict(kernel_size=3, stride=2, pad=1)),
        (max_pool2d_forward, max_pool2d_backward, dict(kernel_size=2, stride=1, dilation=2)),
        (avg_pool2d_forward, avg_pool2d_backward, dict(kernel_size=3, stride=2, pad=1, count_include_pad=False)),
        (global_avg_pool_forward, global_avg_pool_backward, {}),
    ],
)
def test_numerical_gradients(forward, backward, kwargs):
    # Distinct values 0.1 apart: a max pool is only differentiable away from
    # ties. Pools are piecewise linear, so a step of 1e-4 is exact but for rounding.
    x = np.random.default_rng(0).permutation(2 * 3 * 7 * 7).reshape(2, 3, 7, 7) / 10.0
    errors = check_op(forward, backward, x, h=1e-4, **kwargs)
    assert errors["x"] < 1e-8, errors


def test_layout_is_kept():
    x = channels_last(np.random.default_rng(0).standard_normal((2, 8, 6, 6)))
    for forward in (max_pool2d_forward, avg_pool2d_forward):
        out, _ = forward(x, 2, pad=1)
        assert out.transpose(0, 2, 3, 1).flags.c_contiguous


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(kernel_size=3, pad=2), "pad must be at most half"),
        (dict(kernel_size=0), "kernel_size must be at least 1"),
        (dict(kernel_size=5), "larger than the padded input"),
        (dict(kernel_size=2, stride=0), "stride must be at least 1"),
        (dict(kernel_size="2"), "kernel_size must be an int or a pair"),
    ],
)
@pytest.mark.parametrize(
    "forward", [max_pool2d_forward, avg_pool2d_forward, max_pool2d_forward_naive, avg_pool2d_forward_naive]
)
def test_bad_arguments_are_named(forward, kwargs, message):
    with pytest.raises(ValueError, match=message):
        forward(np.zeros((1, 1, 4, 4)), **kwargs)


@given(image_batch(max_size=9), st.integers(1, 9), st.integers(1, 9), st.booleans())
def test_adaptive_avg_pool_fast_matches_naive(x, oh, ow, square):
    from numcnn.ops.avg_pool import (
        adaptive_avg_pool2d_backward,
        adaptive_avg_pool2d_backward_naive,
        adaptive_avg_pool2d_forward,
        adaptive_avg_pool2d_forward_naive,
    )

    output_size = oh if square else (oh, ow)
    out, cache = adaptive_avg_pool2d_forward(x, output_size)
    out_naive, cache_naive = adaptive_avg_pool2d_forward_naive(x, output_size)
    assert_close(out, out_naive)
    dout = np.random.default_rng(2).standard_normal(out.shape)
    assert_close(adaptive_avg_pool2d_backward(dout, cache), adaptive_avg_pool2d_backward_naive(dout, cache_naive))


@requires_torch
@given(image_batch(max_size=9), st.integers(1, 9), st.integers(1, 9))
def test_adaptive_avg_pool_matches_torch(x, oh, ow):
    """PyTorch's windows: start floor(i*H/oh), end ceil((i+1)*H/oh), so they overlap when oh does not divide H."""
    from numcnn.ops.avg_pool import adaptive_avg_pool2d_backward, adaptive_avg_pool2d_forward

    out, cache = adaptive_avg_pool2d_forward(x, (oh, ow))
    dout = np.random.default_rng(2).standard_normal(out.shape)
    xt = to_torch(x, True)
    out_t = F.adaptive_avg_pool2d(xt, (oh, ow))
    out_t.backward(to_torch(dout))
    assert_close(out, out_t)
    assert_close(adaptive_avg_pool2d_backward(dout, cache), xt.grad)


@pytest.mark.parametrize(
    "x_shape, output_size", [((2, 3, 7, 10), (3, 4)), ((1, 2, 5, 5), (5, 2)), ((2, 1, 9, 4), (4, 4))]
)
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_adaptive_avg_pool_uneven_windows_have_their_own_fast_path(monkeypatch, x_shape, output_size, layout):
    """Uneven windows used to run the loop version itself, so fast-vs-naive compared it with itself."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal(x_shape).astype(np.float32)
    x = channels_last(x) if layout == "channels_last" else x
    out_loops, cache_loops = avg_pool.adaptive_avg_pool2d_forward_naive(x, output_size)
    dout = rng.standard_normal(out_loops.shape).astype(np.float32)
    dx_loops = avg_pool.adaptive_avg_pool2d_backward_naive(dout, cache_loops)

    def loops_not_allowed(*args):
        raise AssertionError("the fast path ran the loop version")

    monkeypatch.setattr(avg_pool, "adaptive_avg_pool2d_forward_naive", loops_not_allowed)
    monkeypatch.setattr(avg_pool, "adaptive_avg_pool2d_backward_naive", loops_not_allowed)
    out, cache = avg_pool.adaptive_avg_pool2d_forward(x, output_size)
    dx = avg_pool.adaptive_avg_pool2d_backward(dout, cache)
    assert out.dtype == dx.dtype == np.float32
    assert_close(out, out_loops, rtol=1e-6, atol=1e-6, name="out")
    assert_close(dx, dx_loops, rtol=1e-6, atol=1e-6, name="dx")


@requires_torch
def test_adaptive_avg_pool_uneven_windows_match_torch():
    from numcnn.ops.avg_pool import adaptive_avg_pool2d_backward, adaptive_avg_pool2d_forward

    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 7, 10))
    out, cache = adaptive_avg_pool2d_forward(x, (3, 4))
    assert cache.inner is None  # neither global nor an ordinary pooling: the uneven path
    dout = rng.standard_normal(out.shape)
    xt = to_torch(x, True)
    out_t = F.adaptive_avg_pool2d(xt, (3, 4))
    out_t.backward(to_torch(dout))
    assert_close(out, out_t, rtol=1e-12)
    assert_close(adaptive_avg_pool2d_backward(dout, cache), xt.grad, rtol=1e-12)
