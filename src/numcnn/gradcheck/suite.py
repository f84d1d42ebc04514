"""A numerical gradient check of every op, in float64: what `numcnn gradcheck` runs.

Each case draws small random inputs (random gamma and beta for the norms,
distinct values for max pooling, which is not differentiable at ties) and
compares every analytic gradient with centred differences.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .. import ops
from .numerical import check_loss, check_op

THRESHOLD = 1e-5  # a wrong gradient is off by 1e-2 or more; round-off stays below 1e-7


class Result(NamedTuple):
    """One op's gradient check, as run() returns it.

    Attributes:
        op: The op's name, e.g. "conv2d" or "softmax_loss".
        shape: The shape of the op's first input, as text.
        errors: {argument name: relative error of its analytic gradient against the
            numerical one}.
        worst: The largest of the errors.
        passed: Whether worst is below THRESHOLD (1e-5).
    """

    op: str
    shape: str
    errors: dict
    worst: float
    passed: bool


def _distinct(rng, shape):
    """Values 0.1 apart in random order: no ties for max pooling."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) / 10.0


def _cases() -> dict[str, Callable]:
    n = lambda rng, *shape: rng.standard_normal(shape)
    return {
        "linear": lambda r: (ops.linear_forward, ops.linear_backward, (n(r, 4, 2, 3), n(r, 6, 5), n(r, 5)), {}),
        "relu": lambda r: (ops.relu_forward, ops.relu_backward, (n(r, 4, 5) + 0.05,), {}),
        "gelu": lambda r: (ops.gelu_forward, ops.gelu_backward, (n(r, 4, 5) * 2,), {}),
        "leaky_relu": lambda r: (
            ops.leaky_relu_forward,
            ops.leaky_relu_backward,
            (n(r, 4, 5) + 0.05,),
            {"negative_slope": 0.1},
        ),
        "conv2d": lambda r: (
            ops.conv2d_forward,
            ops.conv2d_backward,
            (n(r, 2, 3, 7, 7), n(r, 4, 3, 3, 3), n(r, 4)),
            {"stride": 2, "pad": 1},
        ),
        "conv2d_dilated_grouped": lambda r: (
            ops.conv2d_forward,
            ops.conv2d_backward,
            (n(r, 2, 4, 7, 6), n(r, 6, 2, 3, 2), n(r, 6)),
            {"stride": (1, 2), "pad": "valid", "dilation": 2, "groups": 2},
        ),
        "conv_transpose2d": lambda r: (
            ops.conv_transpose2d_forward,
            ops.conv_transpose2d_backward,
            (n(r, 2, 4, 3, 3), n(r, 4, 3, 3, 3), n(r, 3)),
            {"stride": 2, "pad": 1, "output_padding": 1},
        ),
        "max_pool2d": lambda r: (
            ops.max_pool2d_forward,
            ops.max_pool2d_backward,
            (_distinct(r, (2, 3, 7, 7)),),
            {"kernel_size": 3, "stride": 2, "pad": 1},
        ),
        "avg_pool2d": lambda r: (
            ops.avg_pool2d_forward,
            ops.avg_pool2d_backward,
            (n(r, 2, 3, 6, 6),),
            {"kernel_size": 3, "stride": 2, "pad": 1, "count_include_pad": False},
        ),
        "global_avg_pool": lambda r: (
            ops.global_avg_pool_forward,
            ops.global_avg_pool_backward,
            (n(r, 2, 3, 4, 5),),
            {},
        ),
        "adaptive_avg_pool2d": lambda r: (
            ops.adaptive_avg_pool2d_forward,
            ops.adaptive_avg_pool2d_backward,
            (n(r, 2, 3, 7, 5),),
            {"output_size": (3, 2)},
        ),
        "batchnorm_train": lambda r: (
            ops.batchnorm_forward,
            ops.batchnorm_backward,
            (5 * n(r, 4, 3, 3, 2) + 2, n(r, 3), n(r, 3), n(r, 3), r.random(3) + 0.5, True),
            {},
        ),
        "batchnorm_eval": lambda r: (
            ops.batchnorm_forward,
            ops.batchnorm_backward,
            (5 * n(r, 6, 4) + 2, n(r, 4), n(r, 4), n(r, 4), r.random(4) + 0.5, False),
            {},
        ),
        "layernorm": lambda r: (
            ops.layernorm_forward,
            ops.layernorm_backward,
            (3 * n(r, 3, 4, 2, 2) + 1, n(r, 4, 2, 2), n(r, 4, 2, 2)),
            {},
        ),
        "groupnorm": lambda r: (
            ops.groupnorm_forward,
            ops.groupnorm_backward,
            (3 * n(r, 2, 6, 3, 3) + 1, n(r, 6), n(r, 6), 3),
            {},
        ),
        "instancenorm": lambda r: (
            ops.instancenorm_forward,
            ops.instancenorm_backward,
            (3 * n(r, 2, 3, 3, 4) + 1, n(r, 3), n(r, 3)),
            {},
        ),
        "local_response_norm": lambda r: (
            ops.local_response_norm_forward,
            ops.local_response_norm_backward,
            (n(r, 2, 6, 3, 3), 3, 0.5, 0.75, 1.0),
            {},
        ),
        "dropout": lambda r: (
            ops.dropout_forward,
            ops.dropout_backward,
            (n(r, 4, 6), 0.4, True, np.random.default_rng(0)),
            {},
        ),
    }


LOSSES = {"softmax_loss": ops.softmax_loss, "svm_loss": ops.svm_loss}


def names() -> list[str]:
    """The op names run() accepts: every op with a check case, then the losses."""
    return list(_cases()) + list(LOSSES)


def run(selected: list[str] | None = None, seed: int = 0) -> list[Result]:
    """Check the named ops (all by default); raises ValueError listing the names for an unknown one."""
    cases = _cases()
    selected = list(selected) if selected else names()
    unknown = [name for name in selected if name not in cases and name not in LOSSES]
    if unknown:
        raise ValueError(f"unknown op {', '.join(unknown)}; choose from {', '.join(names())}")
    results = []
    for name in selected:
        rng = np.random.default_rng(seed)
        if name in LOSSES:
            scores, y = rng.standard_normal((6, 5)), rng.integers(0, 5, 6)
            errors = {"scores": check_loss(LOSSES[name], scores, y)}
            shape = str(scores.shape)
        else:
            forward, backward, args, kwargs = cases[name](rng)
            errors = check_op(forward, backward, *args, **kwargs)
            shape = str(args[0].shape)
        worst = max(errors.values())
        results.append(Result(name, shape, errors, worst, worst < THRESHOLD))
    return results
