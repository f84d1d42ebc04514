"""The alpha-beta model of data-parallel steps: its terms against hand-computed values."""

import math

import pytest

from numcnn.bench.scaling import Link, StepCosts, images_per_second, scaling_stop, step_seconds

LINK = Link("test", alpha=1e-5, beta=1e9)
COSTS = StepCosts({8: 2e-3, 64: 1e-3}, gradient_bytes=1_000_000, batchnorm_channels=(16, 32), image_bytes=12288)


def test_one_worker_is_pure_compute():
    terms = step_seconds(COSTS, 1, 64, LINK)
    assert terms == {"compute": 64 * 1e-3, "gradients": 0.0, "batchnorm": 0.0, "batch": 0.0, "total": 64 * 1e-3}


def test_compute_interpolates_per_image_time_in_log_log():
    # halfway between 8 and 64 in log space is about 22.6 rows; t_img halfway in log is sqrt(2e-3 * 1e-3)
    rows = math.sqrt(8 * 64)
    assert COSTS.compute_seconds(rows) == pytest.approx(rows * math.sqrt(2e-6))
    assert COSTS.compute_seconds(4) == 4 * 2e-3 and COSTS.compute_seconds(128) == 128 * 1e-3


def test_four_workers_terms_by_hand():
    terms = step_seconds(COSTS, 4, 64, LINK, "star")
    assert terms["compute"] == pytest.approx(16 * 2e-3 ** (2 / 3) * 1e-3 ** (1 / 3))
    assert terms["gradients"] == pytest.approx(2 * 3 * (1e-5 + 1e-3))
    bn = sum(2 * 2 * 1e-5 + 3 * (8 * (2 * c + 1) + 16 * c) / 1e9 for c in (16, 32))
    assert terms["batchnorm"] == pytest.approx(bn)
    assert terms["batch"] == pytest.approx(3 * 16 * 12288 / 1e9)
    ring = step_seconds(COSTS, 4, 64, LINK, "ring")["gradients"]
    assert ring == pytest.approx(6 * 1e-5 + 2 * 0.75 * 1e-3)
    assert images_per_second(COSTS, 4, 64, LINK) == pytest.approx(64 / terms["total"])


def test_a_slow_link_stops_scaling_at_the_gradients_and_a_fast_one_at_the_batch():
    slow = Link("slow", alpha=1e-4, beta=1e7)
    assert scaling_stop(COSTS, 64, slow) == (1, "gradients")
    fast = Link("fast", alpha=1e-9, beta=1e15)
    assert scaling_stop(COSTS, 64, fast) == (64, "the batch: one image per worker")
    assert scaling_stop(COSTS, 64, fast, most=16) == (16, "still rising at 16 workers")


def test_unknown_topology_is_refused():
    with pytest.raises(ValueError, match="topology"):
        step_seconds(COSTS, 2, 64, LINK, "tree")


def test_bench_scaling_measures_a_network_and_prints_its_projection(capsys, tmp_path):
    from numcnn.bench import scaling_run

    costs = scaling_run.measure_costs("resnet20", batches=(2, 4), repeats=1)
    assert set(costs.seconds_per_image) == {2, 4} and all(t > 0 for t in costs.seconds_per_image.values())
    assert costs.batchnorm_channels == (16,) * 7 + (32,) * 7 + (64,) * 7  # projection shortcuts have one
    assert costs.gradient_bytes == 4 * 272474  # ResNet-20 for CIFAR: 0.27M float32 parameters
    lines = scaling_run.projection_table("resnet20", costs, 4, [Link("x", 1e-5, 1e9)])
    assert lines[2].split()[:3] == ["x", "star", f"{images_per_second(costs, 1, 4, Link('x', 1e-5, 1e9)):.0f}"]
