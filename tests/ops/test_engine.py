"""The engine beneath the ops: scoped engine choice, the one window formula, layouts."""

import threading

import numpy as np
import pytest

from helpers import assert_close, channels_last
from numcnn.ops import conv2d_forward, engine
from numcnn.ops.engine import geometry, layout, threads, winograd

WINOGRAD_LAYER = geometry.window_geometry((16, 16), (3, 3), 1, 1, 1)  # 128 channels here: F(4x4) under "auto"


def test_use_chooses_the_engine_for_its_block_only():
    assert engine.chosen() == "auto"
    assert winograd.tile_size(WINOGRAD_LAYER, 1, 128, 128) == 4
    with engine.use("im2col") as name:
        assert name == "im2col" and engine.chosen() == "im2col"
        assert winograd.tile_size(WINOGRAD_LAYER, 1, 128, 128) == 0
        with engine.use("winograd2"):
            assert winograd.tile_size(WINOGRAD_LAYER, 1, 4, 4) == 2  # forced: whatever the size
        assert engine.chosen() == "im2col"
    assert engine.chosen() == "auto"


def test_forced_winograd_still_needs_a_3x3_stride_1_layer():
    strided = geometry.window_geometry((16, 16), (3, 3), 2, 1, 1)
    with engine.use("winograd4"):
        assert winograd.tile_size(strided, 1, 128, 128) == 0
        assert winograd.tile_size(WINOGRAD_LAYER, 2, 128, 128) == 0  # two groups


def test_use_refuses_an_unknown_engine():
    with pytest.raises(ValueError, match="engine must be one of 'auto', 'im2col'.*got 'fft'"):
        with engine.use("fft"):
            pass
    assert engine.chosen() == "auto"


def test_the_choice_is_local_to_its_thread():
    inside, release, seen = threading.Event(), threading.Event(), []

    def other():
        with engine.use("im2col"):
            inside.set()
            release.wait(5)
            seen.append(engine.chosen())

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait(5)
    try:
        assert engine.chosen() == "auto"  # the other thread's block does not reach this one
    finally:
        release.set()
        thread.join()
    assert seen == ["im2col"]


def test_the_choice_reaches_the_engines_worker_threads():
    if threads.ThreadpoolController is None:
        pytest.skip("threadpoolctl is not installed: the ops run serially")
    before = threads.num_threads()
    threads.set_num_threads(2)
    try:
        with engine.use("winograd4"):
            per_worker = threads.map_chunks(lambda a, b: engine.chosen(), [(0, 1), (1, 2)], threads=2)
    finally:
        threads.set_num_threads(before)
    assert len(per_worker) == 2 and per_worker == [["winograd4"], ["winograd4"]]


def test_every_engine_gives_the_same_convolution():
    rng = np.random.default_rng(0)
    x, w = channels_last(rng.standard_normal((2, 8, 7, 7))), rng.standard_normal((8, 8, 3, 3))
    results = {}
    for name in engine.ENGINES:
        with engine.use(name):
            results[name] = conv2d_forward(x, w, None, pad=1)[0]
    for name, out in results.items():
        assert_close(out, results["im2col"], rtol=1e-10, atol=1e-11, name=name)


@pytest.mark.parametrize("stride, dilation, pad", [(1, 1, 0), (2, 1, 1), ((1, 3), (2, 1), (2, 0))])
def test_receptive_fields_and_tap_slices_are_one_formula(stride, dilation, pad):
    """Output (i, j)'s window at tap (u, v) is tap (u, v)'s slice at output (i, j): padded pixel i*s + u*d."""
    geom = geometry.window_geometry((9, 8), (3, 2), stride, pad, dilation)
    (OH, OW), (KH, KW) = geom.out_hw, geom.kernel
    taps = geometry.tap_slices(geom)
    for i in range(OH):
        for j in range(OW):
            rows, cols = geometry.receptive_field(geom, i, j)
            for u in range(KH):
                for v in range(KW):
                    tap_rows, tap_cols = taps[u * KW + v]
                    assert range(9 + 8)[rows][u] == range(9 + 8)[tap_rows][i]
                    assert range(8 + 8)[cols][v] == range(8 + 8)[tap_cols][j]


@pytest.mark.parametrize("chosen", [layout.CHANNELS_LAST, layout.CHANNELS_FIRST], ids=repr)
def test_a_layouts_weight_matrix_round_trips(chosen):
    w = np.random.default_rng(1).standard_normal((6, 2, 3, 2))
    wm = chosen.weight_matrix(w, 3)
    assert wm.shape == (3, 2 * 3 * 2, 2)
    np.testing.assert_array_equal(chosen.weight_from_matrix(wm, w.shape, 3), w)


def test_layout_follows_the_channels_and_a_forced_winograd():
    assert layout.layout_for(3, 1) is layout.CHANNELS_FIRST
    assert layout.layout_for(32, 2) is layout.CHANNELS_LAST
    assert layout.layout_for(32, 4) is layout.CHANNELS_FIRST
    with engine.use("winograd2"):
        assert layout.layout_for(3, 1) is layout.CHANNELS_LAST  # Winograd runs on channels-last images
