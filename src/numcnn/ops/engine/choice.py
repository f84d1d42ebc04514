"""Which convolution engine runs: chosen in a scope, never by a module global.

    with engine.use("im2col"):        # every convolution in this block (and this thread) via im2col
        out, cache = conv2d_forward(x, w, b, pad=1)

The choices:

    "auto"       Winograd where it was measured to pay (tuning.WINOGRAD_*), else im2col (the default)
    "im2col"     the direct sum as GEMMs over im2col patches, always
    "winograd2"  F(2x2, 3x3) for every 3x3 / stride 1 / dilation 1 / one-group layer, whatever its size
    "winograd4"  F(4x4, 3x3) likewise
    "direct"     the compiled direct convolution (direct.py, needs Numba) for every layer it can run,
                 im2col for the rest

Every choice computes the same values up to rounding; the forced ones
exist to compare engines (tests, benchmarks). Under "auto" with tuning on
(NUMCNN_TUNE, planner.py), large layers run the engine measured fastest
on this machine instead of the rules; a forced choice turns that off.

`with engine.scaled_chunks(4): ...` multiplies the chunk sizes
(tuning.CHUNK_BYTES, WINOGRAD_CHUNK_BYTES) in the block: a knob the
planner measures, never a change of values beyond rounding. The choice lives in a
contextvars.ContextVar: it is local to the thread (and asyncio task) that
set it, is restored when the block exits, and is carried into the engine's
own worker threads (threads.map_chunks runs each in a copy of the caller's
context).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

ENGINES = ("auto", "im2col", "winograd2", "winograd4", "direct")

_chosen: contextvars.ContextVar[str] = contextvars.ContextVar("numcnn_engine", default="auto")
_chunk_scale: contextvars.ContextVar[float] = contextvars.ContextVar("numcnn_chunk_scale", default=1.0)


def chosen() -> str:
    """The engine chosen for the current context ("auto" unless inside engine.use)."""
    return _chosen.get()


@contextlib.contextmanager
def use(name: str) -> Iterator[str]:
    """Run the block's convolutions through engine `name` (one of ENGINES); yields the name."""
    if name not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(map(repr, ENGINES))}, got {name!r}")
    token = _chosen.set(name)
    try:
        yield name
    finally:
        _chosen.reset(token)


def chunk_scale() -> float:
    """The factor on the engines' chunk sizes in the current context (1 unless inside scaled_chunks)."""
    return _chunk_scale.get()


@contextlib.contextmanager
def scaled_chunks(scale: float) -> Iterator[float]:
    """Run the block's engines with chunks `scale` times tuning's sizes (scale > 0); yields it."""
    if not (isinstance(scale, (int, float)) and 0 < scale < float("inf")):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    token = _chunk_scale.set(float(scale))
    try:
        yield scale
    finally:
        _chunk_scale.reset(token)
