"""Chunks split over threads give the serial result, reproducibly."""

import numpy as np
import pytest

from helpers import assert_close, channels_last
from numcnn.ops import conv2d_backward, conv2d_forward, conv_transpose2d_backward, conv_transpose2d_forward, engine


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Force many chunks and the threaded path even on test-sized arrays."""
    if engine.threads.ThreadpoolController is None:
        pytest.skip("threadpoolctl is not installed: the ops run serially (pip install threadpoolctl)")
    monkeypatch.setattr(engine.tuning, "CHUNK_BYTES", 1)
    monkeypatch.setattr(engine.tuning, "MIN_PARALLEL_BYTES", 0)
    yield
    engine.threads.set_num_threads(engine.threads.num_threads())


def _run(forward, backward, args, params, threads):
    engine.threads.set_num_threads(threads)
    out, cache = forward(*args, **params)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    return out, backward(dout, cache)


@pytest.mark.parametrize(
    "case",
    [
        (conv2d_forward, conv2d_backward, (5, 20, 6, 6), (24, 20, 3, 3), dict(stride=1, pad=1)),
        (conv2d_forward, conv2d_backward, (5, 20, 7, 7), (24, 10, 3, 3), dict(stride=2, pad=1, groups=2)),
        (
            conv_transpose2d_forward,
            conv_transpose2d_backward,
            (5, 20, 4, 4),
            (20, 18, 3, 3),
            dict(stride=2, pad=1, output_padding=1),
        ),
        # channels-first engines (few channels per group): RGB input, depthwise
        (conv2d_forward, conv2d_backward, (5, 3, 9, 9), (7, 3, 3, 3), dict(stride=2, pad=1)),
        (conv2d_forward, conv2d_backward, (5, 20, 6, 6), (20, 1, 3, 3), dict(stride=1, pad=1, groups=20)),
        (
            conv_transpose2d_forward,
            conv_transpose2d_backward,
            (5, 4, 4, 4),
            (4, 3, 3, 3),
            dict(stride=2, pad=1, output_padding=1),
        ),
    ],
)
def test_threads_match_serial_and_repeat_exactly(tiny_chunks, case):
    forward, backward, x_shape, w_shape, params = case
    rng = np.random.default_rng(0)
    x = channels_last(rng.standard_normal(x_shape))
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[1] * params.get("groups", 1) if forward is conv_transpose2d_forward else w_shape[0])
    serial = _run(forward, backward, (x, w, b), params, threads=1)
    threaded = _run(forward, backward, (x, w, b), params, threads=2)
    again = _run(forward, backward, (x, w, b), params, threads=2)
    assert_close(threaded[0], serial[0], rtol=1e-12, name="out")
    for g_threaded, g_serial, g_again in zip(threaded[1], serial[1], again[1]):
        assert_close(g_threaded, g_serial, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(g_threaded, g_again)  # bit for bit


def test_without_threadpoolctl_everything_is_serial(monkeypatch):
    monkeypatch.setattr(engine.threads, "ThreadpoolController", None)
    assert engine.threads.num_threads() == 1
    calls = engine.threads.map_chunks(lambda a, b: (a, b), [(0, 1), (1, 2), (2, 3)], threads=4)
    assert calls == [[(0, 1), (1, 2), (2, 3)]]


def test_set_num_threads_checks_its_argument():
    with pytest.raises(ValueError, match="n must be a positive int"):
        engine.threads.set_num_threads(0)


def test_workspace_reuses_buffers_and_keeps_zeroed_borders():
    engine.scratch.clear()
    a = engine.scratch.scratch("test", (3, 4), np.float32, zeroed_key=(1, 1))
    assert not a.any()
    a[1:2, 1:3] = 7.0  # an interior write, as padded_chunk does
    b = engine.scratch.scratch("test", (3, 4), np.float32, zeroed_key=(1, 1))
    assert b is a
    c = engine.scratch.scratch("test", (3, 4), np.float64)
    assert c is not a and c.dtype == np.float64
    engine.scratch.clear()


def test_shared_scratch_is_one_growing_buffer_per_tag():
    """Layers of different shapes share a tag's buffer; it grows to the largest request."""
    engine.scratch.clear()
    small = engine.scratch.shared_scratch("test shared", (2, 3), np.float32)
    small[...] = 1.0
    large = engine.scratch.shared_scratch("test shared", (4, 5), np.float32)
    assert large.shape == (4, 5) and not np.shares_memory(small, large)  # grown: a new buffer
    again = engine.scratch.shared_scratch("test shared", (3, 2), np.float32)
    assert again.shape == (3, 2) and np.shares_memory(again, large)  # smaller: the same memory
    other = engine.scratch.shared_scratch("another tag", (3, 2), np.float32)
    assert not np.shares_memory(other, large)
    assert not np.shares_memory(engine.scratch.shared_scratch("test shared", (3, 2), np.float64), large)
    engine.scratch.clear()


@pytest.mark.parametrize("shape", [(6, 16, 5, 7), (3, 48, 4, 4), (37, 24)])
def test_batch_norm_split_over_threads_matches_serial_and_naive(tiny_chunks, monkeypatch, shape):
    """Row blocks on two threads: same statistics, output and gradients as one pass and the loops."""
    from numcnn.ops import (
        batchnorm,
        batchnorm_backward,
        batchnorm_backward_naive,
        batchnorm_forward,
        batchnorm_forward_naive,
    )

    monkeypatch.setattr(engine.tuning, "PARALLEL_BYTES_PER_THREAD", 0)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape) * 3 + 1
    x = channels_last(x) if x.ndim == 4 else x
    gamma, beta = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    stats = (np.zeros(shape[1]), np.ones(shape[1]))
    dout = channels_last(rng.standard_normal(shape)) if x.ndim == 4 else rng.standard_normal(shape)
    results = {}
    for threads in (1, 2):
        engine.threads.set_num_threads(threads)
        out, cache, mean, var = batchnorm_forward(x, gamma, beta, *stats, training=True)
        results[threads] = (out, mean, var) + batchnorm_backward(dout, cache)
    assert len(batchnorm._row_blocks(x.size // shape[1], 1, 8 * shape[1])) == 2  # really split
    out, cache, mean, var = batchnorm_forward_naive(x, gamma, beta, *stats, training=True)
    naive = (out, mean, var) + batchnorm_backward_naive(dout, cache)
    for threaded, serial, loops in zip(results[2], results[1], naive):
        assert_close(threaded, serial, rtol=1e-12, atol=1e-12)
        assert_close(threaded, loops, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "params",
    [
        dict(kernel_size=2, stride=2),  # windows tile the image exactly
        dict(kernel_size=3, stride=2, pad=1),  # overlapping, padded
        dict(kernel_size=2, stride=2, pad=1, dilation=2),  # dilated
        dict(kernel_size=2, stride=3),  # pixels in no window
    ],
)
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_max_pool_split_over_threads_matches_the_loops_with_ties(tiny_chunks, monkeypatch, params, layout):
    """Images split over two threads: same output and gradient as the loops, ties, NaN and -inf included."""
    from numcnn.ops import pool

    monkeypatch.setattr(engine.tuning, "PARALLEL_BYTES_PER_THREAD", 0)
    rng = np.random.default_rng(4)
    x = rng.integers(-2, 3, size=(5, 3, 7, 8)).astype(float)  # small integers: many ties
    x[0, 0, :3, :3] = np.nan
    x[1, 1] = -np.inf
    x = channels_last(x) if layout == "channels_last" else x
    engine.threads.set_num_threads(2)
    assert len(pool._image_blocks(x)) == 2  # really split
    out, cache = pool.max_pool2d_forward(x, **params)
    dout = rng.standard_normal(out.shape)
    dx = pool.max_pool2d_backward(dout, cache)
    out_loops, cache_loops = pool.max_pool2d_forward_naive(x, **params)
    assert_close(out, out_loops, rtol=0, atol=0)
    assert_close(dx, pool.max_pool2d_backward_naive(dout, cache_loops), rtol=0, atol=1e-15)
    assert np.isnan(out).any() and np.isneginf(out).any()  # the special windows were there
