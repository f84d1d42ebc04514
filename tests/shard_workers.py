"""Data-parallel workers simulated with threads, for the tests of shard-aware layers.

run_shards(total, workers, task) splits rows [0, total) into contiguous
shards (sizes differing by at most 1, the larger first: 10 over 3 is 4, 3,
3), and runs task(rank, shard) in one thread per worker under
nn.shard.batch_shard(shard). The shards' combine is collective through a
threading.Barrier: every worker gets the sum over workers added in rank
order, so all hold the same bits, as a communicator's sum_in_rank_order.
"""

from __future__ import annotations

import threading

import numpy as np

from numcnn.nn.shard import BatchShard, batch_shard


def shard_bounds(total: int, workers: int) -> list[tuple[int, int]]:
    """[start, stop) of each worker's rows, in rank order."""
    base, extra = divmod(total, workers)
    bounds, start = [], 0
    for rank in range(workers):
        stop = start + base + (rank < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


class BarrierSum:
    """A sum over `workers` threads in rank order; each rank calls for_rank(rank)(array)."""

    def __init__(self, workers: int):
        self.barrier = threading.Barrier(workers, timeout=60)
        self.slots: list[np.ndarray | None] = [None] * workers
        self.calls = [0] * workers

    def for_rank(self, rank: int):
        def combine(array):
            self.slots[rank] = np.array(array, copy=True)
            self.calls[rank] += 1
            self.barrier.wait()  # every rank's array is in its slot
            shapes = {(slot.shape, slot.dtype) for slot in self.slots}
            assert len(shapes) == 1, f"combine called with different arrays: {shapes}"
            total = self.slots[0].copy()
            for slot in self.slots[1:]:
                total = total + slot
            self.barrier.wait()  # every rank has read the slots before any writes again
            return total

        return combine

    def gather_for_rank(self, rank: int):
        def gather(array):
            self.slots[rank] = np.array(array, copy=True)
            self.calls[rank] += 1
            self.barrier.wait()
            parts = [slot.copy() for slot in self.slots]
            self.barrier.wait()
            return parts

        return gather


def run_shards(total: int, workers: int, task, gather: bool = False) -> tuple[list, list[BatchShard]]:
    """task(rank, shard) in one thread per worker, under batch_shard(shard); returns the results and
    the shards, in rank order. With gather, the shards also gather (as real workers' shards do).
    An exception in one worker breaks the barrier and is raised here."""
    summed = BarrierSum(workers)
    shards = [
        BatchShard(a, b, total, summed.for_rank(rank), summed.gather_for_rank(rank) if gather else None)
        for rank, (a, b) in enumerate(shard_bounds(total, workers))
    ]
    results, errors = [None] * workers, [None] * workers

    def work(rank):
        try:
            with batch_shard(shards[rank]):
                results[rank] = task(rank, shards[rank])
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            errors[rank] = error
            summed.barrier.abort()

    threads = [threading.Thread(target=work, args=(rank,)) for rank in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first = next(
        (error for error in errors if error is not None and not isinstance(error, threading.BrokenBarrierError)), None
    )
    if first is None:
        first = next((error for error in errors if error is not None), None)
    if first is not None:
        raise first
    assert len(set(summed.calls)) == 1, f"workers called combine unequal numbers of times: {summed.calls}"
    return results, shards


def weighted_sum(values, shards):
    """sum_r fraction_r * values_r, in rank order: how the root adds workers' gradients."""
    total = shards[0].fraction * values[0]
    for value, shard in zip(values[1:], shards[1:]):
        total = total + shard.fraction * value
    return total
