"""`numcnn bench train --workers 1,2`: the data-parallel figures beside one worker's."""

from __future__ import annotations

import argparse

import pytest

from numcnn.bench import train as bench


def test_throughput_times_two_workers_beside_one(capsys):
    speed = bench.throughput(["threelayer"], 1, 8, None, workers=[1, 2], backends=["processes", "threads"])
    assert set(speed["threelayer"]) == {"numcnn", "numcnn_w2", "numcnn_w2_threads", "numcnn_1core_w2"}
    assert all(v > 0 for v in speed["threelayer"].values())
    bench.print_workers(["threelayer"], speed, [1, 2])
    row = capsys.readouterr().out.splitlines()[-1]
    assert (
        row.startswith("threelayer")
        and " w2 " in row
        and "x w1" in row
        and "; threads " in row
        and "x one core's" in row
    )


def testparse_workers_is_checked():
    assert bench.parse_workers("1,2,4") == [1, 2, 4]
    for bad in ("0", "a", "1,,2"):
        with pytest.raises(argparse.ArgumentTypeError, match="--workers takes worker counts"):
            bench.parse_workers(bad)
    assert bench.parse_backends("threads") == ["threads"]
    with pytest.raises(argparse.ArgumentTypeError, match="--backends takes processes and/or threads"):
        bench.parse_backends("gpu")
