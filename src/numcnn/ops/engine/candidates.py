"""The ways a convolution can run, as interchangeable candidates the planner times.

A candidate computes one convolution's forward and backward (the sums in
numcnn.ops.conv) its own way; every one gives the same values up to
rounding (tests/ops/test_planner.py checks each against the loop version):

    forward(x, w, b, geom, groups) -> (out, saved)
        x (N, C, H, W) any memory layout, w (F, C/groups, KH, KW), b (F,) or None;
        out (N, F, OH, OW) with the bias added; saved: x's values in whatever
        memory the backward reads best (it becomes Conv2dCache.x)
    backward(dout, saved, w, with_bias, geom, groups, input_grad) -> (dx or None, dw, db or None)
    applies(problem) -> bool      problem: a ConvProblem (shapes, geometry, groups, dtype)

The built-in ones are the engines of im2col.py and winograd.py, held to
one layout or tiling (EngineCandidate); RULES is today's fixed rules
(layout_for, tuning's Winograd thresholds, engine.use), exactly the code
that ran before the planner. Others (a compiled kernel) are added with
planner.register_candidate; direct_candidate adapts the Numba direct
convolution (engine/direct.py) when it is there.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import direct, winograd
from .choice import scaled_chunks, use
from .geometry import WindowGeometry
from .im2col import bias_grad, conv_input_grad, conv_output, conv_weight_grad
from .layout import CHANNELS_FIRST, CHANNELS_LAST, Layout, channels_last_copy, is_channels_last, layout_for


class ConvProblem(NamedTuple):
    """What a convolution's speed depends on, besides the machine."""

    x_shape: tuple[int, int, int, int]
    w_shape: tuple[int, int, int, int]
    geom: WindowGeometry
    groups: int
    dtype: np.dtype
    channels_last: bool  # the input's memory: (N, H, W, C) or plain NCHW

    @classmethod
    def of(cls, x: np.ndarray, w: np.ndarray, geom: WindowGeometry, groups: int) -> ConvProblem:
        return cls(tuple(x.shape), tuple(w.shape), geom, groups, x.dtype, is_channels_last(x))

    def macs(self) -> int:
        """Multiply-adds of one forward pass: N * OH * OW * F * (C/groups) * KH * KW."""
        N, (OH, OW) = self.x_shape[0], self.geom.out_hw
        return N * OH * OW * math.prod(self.w_shape)

    def winograd_shaped(self) -> bool:
        """3x3, stride 1, no dilation, one group: the layers Winograd computes."""
        g = self.geom
        return g.kernel == (3, 3) and g.stride == (1, 1) and g.dilation == (1, 1) and self.groups == 1


@dataclass(frozen=True)
class Candidate:
    """One way to run a convolution (see the module's docstring for the three functions)."""

    name: str
    applies: Callable[[ConvProblem], bool]
    forward: Callable
    backward: Callable


def always(problem: ConvProblem) -> bool:
    """The applies() of a candidate that runs any convolution: True whatever the problem."""
    return True


def engine_candidate(name: str, engine: str | None, layout: Layout | None, scale: float = 1.0) -> Candidate:
    """The im2col / Winograd engines held to `engine` (engine.use's names; None: the scope's own)
    and `layout` (None: layout_for's rule), with chunks `scale` times tuning's sizes."""

    def scope():
        stack = contextlib.ExitStack()
        if engine is not None:
            stack.enter_context(use(engine))
        if scale != 1.0:
            stack.enter_context(scaled_chunks(scale))
        return stack

    def forward(x, w, b, geom, groups):
        with scope():
            chosen = layout or layout_for(x.shape[1], groups)
            x = chosen.arranged(x)  # once, for the forward and the weight gradient
            out = conv_output(x, w, geom, groups, chosen)
        if b is not None:
            out += b[:, None, None]
        return out, x

    def backward(dout, x, w, with_bias, geom, groups, input_grad):
        with scope():
            chosen = layout or layout_for(x.shape[1], groups)
            dout = chosen.arranged(dout)  # both engines read it in x's layout
            dx = conv_input_grad(dout, w, geom, groups, x.shape[1], chosen) if input_grad else None
            dw = conv_weight_grad(x, dout, geom, groups, w.shape, chosen)
        db = bias_grad(dout) if with_bias else None
        return dx, dw, db

    applies = (lambda p: p.winograd_shaped()) if engine and engine.startswith("winograd") else always
    return Candidate(name, applies, forward, backward)


def rules_candidate() -> Candidate:
    """Today's fixed rules: the Numba direct convolution where direct.runs takes the layer (thin 3x3
    layers under "auto", any it can run under engine.use("direct")), else im2col / Winograd by
    layout_for and tuning's thresholds (under engine.use, the engine named)."""
    engines = engine_candidate("rules", None, None)

    compiled = functools.cache(lambda: direct_candidate(direct))  # made once, on the first layer it takes

    def direct_path(x_shape, w, geom, groups):
        return compiled() if direct.runs(geom, groups, x_shape, w.shape[0], w.dtype) else None

    def forward(x, w, b, geom, groups):
        chosen = direct_path(x.shape, w, geom, groups) or engines
        return chosen.forward(x, w, b, geom, groups)

    def backward(dout, x, w, with_bias, geom, groups, input_grad):
        chosen = direct_path(x.shape, w, geom, groups) or engines
        return chosen.backward(dout, x, w, with_bias, geom, groups, input_grad)

    return Candidate("rules", always, forward, backward)


RULES = rules_candidate()
IM2COL_CL = engine_candidate("im2col channels-last", "im2col", CHANNELS_LAST)
IM2COL_CF = engine_candidate("im2col channels-first", "im2col", CHANNELS_FIRST)
WINOGRAD_2 = engine_candidate("winograd F(2x2)", "winograd2", CHANNELS_LAST)
WINOGRAD_4 = engine_candidate("winograd F(4x4)", "winograd4", CHANNELS_LAST)
BUILT_IN = (IM2COL_CL, IM2COL_CF, WINOGRAD_2, WINOGRAD_4)
_ENGINES = {IM2COL_CL: ("im2col", CHANNELS_LAST), IM2COL_CF: ("im2col", CHANNELS_FIRST)}
_ENGINES.update({WINOGRAD_2: ("winograd2", CHANNELS_LAST), WINOGRAD_4: ("winograd4", CHANNELS_LAST)})


def scaled_name(base: str, scale: float) -> str:
    """The name of an engine run with its chunks scaled, e.g. "im2col channels-last, chunks x2"."""
    return f"{base}, chunks x{scale:g}"


def chunk_variants(scales) -> dict[str, list[Candidate]]:
    """For each built-in engine, itself with chunks scaled by each of `scales`."""
    return {c.name: [engine_candidate(scaled_name(c.name, s), *_ENGINES[c], s) for s in scales] for c in BUILT_IN}


def rules_pick(problem: ConvProblem) -> str:
    """The built-in candidate today's rules would run for `problem` (under engine "auto")."""
    C, F = problem.x_shape[1], problem.w_shape[0]
    if direct.runs(problem.geom, problem.groups, problem.x_shape, F, problem.dtype):
        return "direct"
    if layout_for(C, problem.groups) is CHANNELS_FIRST:
        return IM2COL_CF.name
    m = winograd.tile_size(problem.geom, problem.groups, C, F)
    return {0: IM2COL_CL.name, 2: WINOGRAD_2.name, 4: WINOGRAD_4.name}[m]


DIRECT_FUNCTIONS = ("available", "direct_conv_applies", "conv_output", "conv_input_grad", "conv_weight_grad")


def direct_candidate(module) -> Candidate | None:
    """The direct convolution of `module` (engine/direct.py: Numba kernels over channels-last images)
    as the candidate "direct"; None where it cannot run (no Numba) or lacks DIRECT_FUNCTIONS.

    module.direct_conv_applies(geom, groups, C, F, dtype) says which layers it takes;
    conv_output(x, w, geom), conv_input_grad(dout, w, geom) and conv_weight_grad(x, dout, geom)
    compute the three sums without bias.
    """
    if not all(hasattr(module, name) for name in DIRECT_FUNCTIONS) or not module.available():
        return None

    def applies(problem: ConvProblem) -> bool:
        C, F = problem.x_shape[1], problem.w_shape[0]
        return bool(module.direct_conv_applies(problem.geom, problem.groups, C, F, problem.dtype))

    def forward(x, w, b, geom, groups):
        x = channels_last_copy(x)  # once, for the forward and the weight gradient
        out = module.conv_output(x, w, geom)
        if b is not None:
            out += b[:, None, None]
        return out, x

    def backward(dout, x, w, with_bias, geom, groups, input_grad):
        dout = channels_last_copy(dout)
        dx = module.conv_input_grad(dout, w, geom) if input_grad else None
        dw = module.conv_weight_grad(x, dout, geom)
        return dx, dw, (bias_grad(dout) if with_bias else None)

    return Candidate("direct", applies, forward, backward)
