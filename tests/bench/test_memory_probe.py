"""`numcnn bench train`'s memory figures: the probe's two measures and the table that shows them."""

from __future__ import annotations

from numcnn.bench import train as bench


def test_a_steps_memory_is_measured_in_a_fresh_process_after_a_first_step():
    small = bench.peak_memory(["threelayer"], 8, ["numcnn"])["threelayer"]["numcnn"]
    large = bench.peak_memory(["threelayer"], 128, ["numcnn"])["threelayer"]["numcnn"]
    # 120 more images each hold at least their 32x32x32 float32 conv output (128 KB) through the step,
    # besides its ReLU, pooling and gradients (~0.27 MB an image measured); at most a few MB each
    assert 120 * 0.125 < large["step"] - small["step"] < 120 * 2
    # the process holds Python, NumPy and the model besides the step; the first step held at least as much
    assert large["process"] > large["step"] + 30
    assert large["first"] > 0.5 * large["step"]


def test_the_table_gives_numcnn_and_pytorch_side_by_side_with_their_ratio():
    cells = bench._memory_cells(
        {
            "numcnn": {"step": 200.0, "first": 250.0, "process": 300.0},
            "torch": {"step": 100.0, "first": 125.0, "process": 400.0},
        }
    )
    assert [c.split() for c in cells.split(" | ")[1:]] == [
        ["200", "100", "2.00"],
        ["250", "125", "2.00"],
        ["300", "400", "0.75"],
    ]
    alone = bench._memory_cells({"numcnn": {"step": None, "first": 250.0, "process": 300.0}})
    assert [c.split() for c in alone.split(" | ")[1:]] == [["-"], ["250", "-", "-"], ["300", "-", "-"]]
