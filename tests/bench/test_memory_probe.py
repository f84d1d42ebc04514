"""`numcnn bench train`'s memory figures: the probe's two measures and the table that shows them."""

from __future__ import annotations

from numcnn.bench import train as bench


def test_a_steps_memory_is_measured_in_a_fresh_process_after_a_first_step():
    small = bench.peak_memory(["threelayer"], 8, ["numcnn"])["threelayer"]["numcnn"]
    large = bench.peak_memory(["threelayer"], 64, ["numcnn"])["threelayer"]["numcnn"]
    # 56 more images each hold a 32x32x32 conv output, its ReLU and pooling, and their gradients:
    # ~0.5 MB an image in float32
    assert large["step"] - small["step"] > 56 * 0.25
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
