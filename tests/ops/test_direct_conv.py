"""The Numba direct convolution (ops/engine/direct.py) against the loop version, and numcnn without Numba.

Each kernel compiles on first use (seconds each, then cached on disk), so
only one small case runs by default; the rest are marked slow.
"""

import importlib
import sys

import numpy as np
import pytest

from helpers import assert_close
from numcnn.ops import conv2d_backward, conv2d_backward_naive, conv2d_forward, conv2d_forward_naive, engine
from numcnn.ops.engine import direct, geometry

needs_numba = pytest.mark.skipif(not direct.available(), reason="Numba is not installed (pip install numcnn[numba])")

# (x shape, w shape, stride, pad): thin 3x3 layers of 16 and 32 channels, strided, unpadded, and 7x7 RGB stems.
CASES = {
    "16ch s1 p1": ((2, 16, 7, 9), (16, 16, 3, 3), 1, 1),
    "16->32 s2 p1": ((2, 16, 9, 7), (32, 16, 3, 3), 2, 1),
    "32->16 s1 p0": ((3, 32, 6, 5), (16, 32, 3, 3), 1, 0),
    "32ch s2 p0 batch 1": ((1, 32, 8, 7), (32, 32, 3, 3), 2, 0),
    "stem 3->16 7x7 s2 p3 batch 1": ((1, 3, 11, 10), (16, 3, 7, 7), 2, 3),
    "stem 3->32 7x7 s1 p3": ((2, 3, 9, 8), (32, 3, 7, 7), 1, 3),
    "stem 3->16 5x5 s1 p2 rows of 10": ((2, 3, 5, 10), (16, 3, 5, 5), 1, 2),
    "stem 2->16 3x3 s1 p1 rows of 3": ((3, 2, 4, 3), (16, 2, 3, 3), 1, 1),
}
FAST_CASE = "16ch s1 p1"
TOLERANCE = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=1e-4, atol=1e-4)}


def _case_params():
    for name in CASES:
        for dtype in (np.float64, np.float32):
            slow = not (name == FAST_CASE and dtype is np.float64)
            yield pytest.param(name, dtype, id=f"{name}-{dtype.__name__}", marks=[pytest.mark.slow] if slow else [])


@needs_numba
@pytest.mark.parametrize("name, dtype", list(_case_params()))
def test_direct_engine_equals_the_loops(name, dtype):
    """out, dx, dw, db under engine.use("direct") match conv2d_forward_naive / backward_naive."""
    x_shape, w_shape, stride, pad = CASES[name]
    rng = np.random.default_rng(7)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    expected, cache = conv2d_forward_naive(x, w, b, stride=stride, pad=pad)
    dout = rng.standard_normal(expected.shape).astype(dtype)
    dx_expected, dw_expected, db_expected = conv2d_backward_naive(dout, cache)
    geom = geometry.window_geometry(x_shape[2:], w_shape[2:], stride, pad, 1)
    assert direct.runs(geom, 1, x_shape, w_shape[0], dtype) is False  # too small for the rule under "auto"
    with engine.use("direct"):
        assert direct.runs(geom, 1, x_shape, w_shape[0], dtype)
        out, cache = conv2d_forward(x, w, b, stride=stride, pad=pad)
        dx, dw, db = conv2d_backward(dout, cache)
    tol = TOLERANCE[dtype]
    for got, want, what in [(out, expected, "out"), (dx, dx_expected, "dx"), (dw, dw_expected, "dw")]:
        assert got.dtype == dtype
        scale = np.abs(want).max()  # float32: errors relative to the sum's scale, as rounding makes them
        assert_close(got / scale, want / scale, name=what, **tol)
    assert_close(db, db_expected, name="db", **tol)


@needs_numba
def test_weight_gradient_has_the_same_bits_for_any_thread_count():
    """Partial sums over fixed runs of images, added in order: one thread or two give the same bits."""
    x_shape, w_shape, stride, pad = CASES[FAST_CASE]
    rng = np.random.default_rng(1)
    n = 2 * direct.WEIGHT_GRAD_IMAGES_PER_PART + 3  # three parts, the last a short one
    x, dout = rng.standard_normal((n, *x_shape[1:])), rng.standard_normal((n, w_shape[0], *x_shape[2:]))
    geom = geometry.window_geometry(x_shape[2:], w_shape[2:], stride, pad, 1)
    before = engine.num_threads()
    try:
        engine.set_num_threads(1)
        serial = direct.conv_weight_grad(x, dout, geom)
        engine.set_num_threads(2)
        split = direct.conv_weight_grad(x, dout, geom)
    finally:
        engine.set_num_threads(before)
    assert np.array_equal(split, serial)
    expected = conv2d_backward_naive(dout, conv2d_forward_naive(x, np.zeros(w_shape), None, pad=pad)[1])[1]
    assert_close(split, expected)


@needs_numba
def test_compiling_leaves_numbas_slp_setting_as_it_was():
    import numba

    before = numba.config.SLP_VECTORIZE
    x_shape, w_shape, stride, pad = CASES[FAST_CASE]
    geom = geometry.window_geometry(x_shape[2:], w_shape[2:], stride, pad, 1)
    direct.conv_output(np.ones(x_shape), np.ones(w_shape), geom)
    assert numba.config.SLP_VECTORIZE == before


@pytest.mark.parametrize(
    "channels, filters, groups, applies",
    [
        (16, 16, 1, True),
        (3, 64, 1, True),
        (32, 32, 2, False),
        (16, 8, 1, False),
        (16, 72, 1, False),
        (96, 16, 1, False),
    ],
)
def test_which_layers_the_engine_takes(channels, filters, groups, applies):
    geom = geometry.window_geometry((8, 8), (3, 3), 1, 1, 1)
    assert direct.direct_conv_applies(geom, groups, channels, filters) is (applies and direct.available())
    assert direct.direct_conv_applies(geom, 1, 16, 16, np.int32) is False


def test_the_auto_rule_takes_only_large_thin_3x3_layers(monkeypatch):
    """Under "auto": a ResNet-20 16-channel layer at batch 128 (when Numba is there); not a small one,
    not a wide one, not a 7x7 stem, never under engine.use("im2col")."""
    thin = geometry.window_geometry((32, 32), (3, 3), 1, 1, 1)
    assert direct.runs(thin, 1, (128, 16, 32, 32), 16, np.float32) is direct.available()
    assert direct.runs(thin, 1, (2, 16, 32, 32), 16, np.float32) is False
    assert direct.runs(thin, 1, (128, 64, 32, 32), 64, np.float32) is False
    stem = geometry.window_geometry((32, 32), (7, 7), 1, 3, 1)
    assert direct.runs(stem, 1, (128, 3, 32, 32), 64, np.float32) is False
    with engine.use("im2col"):
        assert direct.runs(thin, 1, (128, 16, 32, 32), 16, np.float32) is False


def test_without_numba_every_engine_choice_still_convolves(monkeypatch):
    """With `import numba` failing, direct.py imports, takes no layer, and engine.use("direct") runs im2col."""
    monkeypatch.setitem(sys.modules, "numba", None)  # makes `import numba` raise ImportError
    try:
        plain = importlib.reload(direct)
        assert plain.available() is False
        geom = geometry.window_geometry((7, 9), (3, 3), 1, 1, 1)
        assert plain.direct_conv_applies(geom, 1, 16, 16) is False
        assert plain.runs(geom, 1, (128, 16, 7, 9), 16, np.float64) is False
        rng = np.random.default_rng(3)
        x, w = rng.standard_normal((2, 16, 7, 9)), rng.standard_normal((16, 16, 3, 3))
        with engine.use("direct"):
            out, cache = conv2d_forward(x, w, None, pad=1)
            dx, dw, _ = conv2d_backward(np.ones_like(out), cache)
        expected, naive_cache = conv2d_forward_naive(x, w, None, pad=1)
        assert_close(out, expected)
        assert_close(dw, conv2d_backward_naive(np.ones_like(out), naive_cache)[1])
    finally:
        monkeypatch.undo()
        importlib.reload(direct)
    assert direct.available() is ("numba" in sys.modules and sys.modules["numba"] is not None)


@needs_numba
@pytest.mark.slow
def test_a_resnet_step_under_the_direct_engine_equals_im2col():
    """A whole training step (forward, loss, backward) of a small 16-channel ResNet: every gradient the
    same within float64 rounding, whichever engine ran its convolutions."""
    from numcnn import models, ops

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 8, 8))
    y = np.array([0, 1, 2, 3])
    grads = {}
    for name in ("im2col", "direct"):
        net = models.resnet.resnet_cifar(
            8, num_classes=4, widths=(16, 16, 32), dtype=np.float64, rng=np.random.default_rng(1)
        )
        with engine.use(name):
            scores = net(x)
            loss, dscores = ops.softmax_loss(scores, y)
            net.backward(dscores)
        grads[name] = (loss, dict(net.named_grads()))
    assert grads["direct"][0] == pytest.approx(grads["im2col"][0], rel=1e-12)
    for key, value in grads["im2col"][1].items():
        assert_close(grads["direct"][1][key], value, rtol=1e-9, atol=1e-10, name=key)


def test_importing_numcnn_does_not_import_numba():
    """Numba costs half a second to import; only a layer that runs through it pays that."""
    import subprocess

    code = "import sys, numcnn.ops, numcnn.models; print('numba' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@needs_numba
def test_prepare_compiles_a_layers_kernels_before_it_runs():
    """After prepare, the layer's first real call compiles nothing: every kernel it calls has its types."""
    x_shape, w_shape, stride, pad = CASES[FAST_CASE]
    geom = geometry.window_geometry(x_shape[2:], w_shape[2:], stride, pad, 1)
    assert direct.prepare(geom, x_shape[1], w_shape[0], np.float64) >= 0
    before = {key: len(kernel.overloads) for key, kernel in direct._kernels.items()}
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    out = direct.conv_output(x, w, geom)
    direct.conv_weight_grad(x, np.ones_like(out), geom)
    direct.conv_input_grad(np.ones_like(out), w, geom)
    assert {key: len(kernel.overloads) for key, kernel in direct._kernels.items()} == before


def test_layers_the_direct_engine_cannot_run_go_through_im2col_under_its_choice():
    """engine.use("direct") on a 128-channel 3x3 layer (beyond MAX_CHANNELS) and a transposed
    convolution: im2col's values, never Winograd's (whose tiling the choice does not name)."""
    from numcnn.ops import conv_transpose2d_forward

    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((1, 128, 5, 5)), rng.standard_normal((128, 128, 3, 3))
    with engine.use("im2col"):
        expected = conv2d_forward(x, w, None, pad=1)[0]
        expected_t = conv_transpose2d_forward(x[:, :16], w[:16, :16], None, stride=2)[0]
    with engine.use("direct"):
        assert direct.runs(geometry.window_geometry((5, 5), (3, 3), 1, 1, 1), 1, x.shape, 128, x.dtype) is False
        assert_close(conv2d_forward(x, w, None, pad=1)[0], expected)
        assert_close(conv_transpose2d_forward(x[:, :16], w[:16, :16], None, stride=2)[0], expected_t)
