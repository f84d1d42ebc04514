"""Which rows of a batch each rank takes, and how the ranks' results are weighted.

Contiguous shards whose sizes differ by at most one, the larger first:
128 rows over 3 ranks -> [0, 43), [43, 86), [86, 128). A rank's weight in
the combined loss and gradients is its fraction of the rows, rows_r / total,
so that sum_r fraction_r * (mean over its rows) is the mean over the batch.
"""

from __future__ import annotations

import numpy as np

__all__ = ["shard_bounds", "weighted_sum"]


def shard_bounds(total: int, size: int) -> list[tuple[int, int]]:
    """[(start, stop)] for ranks 0..size-1; ranks past `total` rows get empty shards (start == stop)."""
    if total < 0 or size < 1:
        raise ValueError(f"need total >= 0 and size >= 1, got total {total}, size {size}")
    base, extra = divmod(total, size)
    bounds, start = [], 0
    for rank in range(size):
        stop = start + base + (1 if rank < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def weighted_sum(parts: list, fractions: list[float]):
    """sum_r fractions[r] * parts[r], added left to right (rank order): the same bits on every run.

    parts are arrays of one shape, or floats; with one part of fraction 1 the result is that part's bits.
    """
    total = fractions[0] * parts[0]
    for part, fraction in zip(parts[1:], fractions[1:]):
        total = total + fraction * part
    return np.asarray(total) if isinstance(total, np.ndarray) else total
