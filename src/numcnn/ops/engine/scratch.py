"""Reusable scratch buffers for the ops' temporaries (patch matrices, padded chunks).

A convolution needs several megabytes of scratch per call. Allocating them
afresh each time is not free: the C allocator hands large blocks back to
the operating system when they are freed, and the next call pays a page
fault for every 4 KB it touches again, which measured here doubled the time
of a small convolution. Buffers are therefore kept per thread, keyed by
purpose, shape and dtype, in a small least-recently-used cache.

Only scratch whose contents never escape an op call comes from here;
arrays returned to the caller are always freshly allocated.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from . import tuning

_local = threading.local()


def _cache() -> OrderedDict:
    if not hasattr(_local, "buffers"):
        _local.buffers = OrderedDict()
    return _local.buffers


def scratch(tag: str, shape: tuple[int, ...], dtype, zeroed_key=None) -> np.ndarray:
    """A buffer of `shape` and `dtype` for this thread, reused across calls.

    Its contents are whatever the last user left, except that a buffer
    requested with a `zeroed_key` is zero-filled the first time that key is
    seen: callers that only ever write the same region (the interior of a
    padded chunk) can rely on the rest staying zero.
    """
    cache = _cache()
    key = (tag, tuple(shape), np.dtype(dtype).str, zeroed_key)
    buffer = cache.pop(key, None)
    if buffer is None:
        buffer = np.zeros(shape, dtype) if zeroed_key is not None else np.empty(shape, dtype)
        _evict(cache, buffer.nbytes)
    cache[key] = buffer  # most recently used last
    return buffer


def shared_scratch(tag: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A buffer of `shape` for this thread, one per tag whatever the shape.

    It grows to the largest request, so the layers of a network, each of a
    different shape, share it instead of keeping one buffer each (Winograd's
    temporaries, kept per shape, cost airbench 130 MB). Only for temporaries
    whose uses never overlap: a second request with the same tag returns
    the same memory.
    """
    cache = _cache()
    key = (tag, None, np.dtype(dtype).str, "shared")
    size = int(np.prod(shape))
    buffer = cache.pop(key, None)
    if buffer is None or buffer.size < size:
        buffer = None  # release the smaller one before allocating
        buffer = np.empty(size, dtype)
        _evict(cache, buffer.nbytes)
    cache[key] = buffer
    return buffer[:size].reshape(shape)


def _evict(cache: OrderedDict, incoming: int) -> None:
    total = sum(b.nbytes for b in cache.values()) + incoming
    while cache and total > tuning.SCRATCH_MAX_BYTES:
        _, oldest = cache.popitem(last=False)
        total -= oldest.nbytes


def clear() -> None:
    """Release this thread's buffers."""
    _cache().clear()
