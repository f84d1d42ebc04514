"""Fully connected (affine) layer, CS231n's affine_forward / affine_backward.

Each input is flattened to a row of D numbers, then

    out = x2d @ w + b              x (N, d1, ..., dk) -> x2d (N, D), w (D, M), b (M,) or None
    dx = (dout @ w.T).reshape(x.shape),   dw = x2d.T @ dout,   db = sum_n dout

Note w is (D, M) as in CS231n; torch.nn.Linear stores the transpose
(numcnn.nn.Linear handles that).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..checks import batch_array, float_array, optional_float_array, upstream_gradient


class LinearCache(NamedTuple):
    """What linear_forward (and its loop version) keeps for the backward.

    Attributes:
        x: The input (N, d1, ..., dk), as given (not flattened).
        w: The weight (D, M), in x's dtype.
        b: The bias (M,), in x's dtype, or None.
    """

    x: np.ndarray
    w: np.ndarray
    b: np.ndarray | None


def _arguments(x, w, b):
    x = batch_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must have shape (N, d1, ..., dk), got shape {x.shape}")
    w = float_array(w, "w", ndim=2, integers_ok=True).astype(x.dtype, copy=False)
    D = int(np.prod(x.shape[1:]))
    if w.shape[0] != D:
        raise ValueError(
            f"w must have shape ({D}, M) for x of shape {x.shape} ({D} features per sample), got {w.shape}"
        )
    b = optional_float_array(b, "b", (w.shape[1],))
    return x, w, None if b is None else b.astype(x.dtype, copy=False)


def linear_forward(x, w, b):
    """x (N, d1, ..., dk), w (D, M), b (M,) or None -> out (N, M)."""
    x, w, b = _arguments(x, w, b)
    out = x.reshape(x.shape[0], -1) @ w
    if b is not None:
        out += b
    return out, LinearCache(x, w, b)


def linear_backward(dout, cache: LinearCache):
    """Returns dx (like x), dw (D, M), db (M,) or None."""
    x, w, b = cache
    dout = upstream_gradient(dout, "dout", (x.shape[0], w.shape[1]), ndim=2)
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0) if b is not None else None
    return dx, dw, db


def linear_forward_naive(x, w, b):
    """out[n, m] = b[m] + sum_d x2d[n, d] * w[d, m], one output at a time."""
    x, w, b = _arguments(x, w, b)
    rows = x.reshape(x.shape[0], -1)
    N, (D, M) = rows.shape[0], w.shape
    out = np.zeros((N, M), x.dtype)
    for n in range(N):
        for m in range(M):
            out[n, m] = sum(rows[n, d] * w[d, m] for d in range(D)) + (b[m] if b is not None else 0)
    return out, LinearCache(x, w, b)


def linear_backward_naive(dout, cache: LinearCache):
    """Loop version of linear_backward: same signature and cache, same dx, dw and db.

    Loops over samples n and outputs m, each adding its share (x2d: x flattened to (N, D)):

        dx2d[n] += dout[n, m] * w[:, m]
        dw[:, m] += dout[n, m] * x2d[n]
        db[m] = sum over n of dout[n, m]

    Returns dx (like x), dw (D, M) and db (M,) or None. Raises ValueError when dout is not (N, M).
    """
    x, w, b = cache
    dout = upstream_gradient(dout, "dout", (x.shape[0], w.shape[1]), ndim=2)
    rows = x.reshape(x.shape[0], -1)
    N, M = rows.shape[0], w.shape[1]
    drows, dw = np.zeros_like(rows), np.zeros_like(w)
    for n in range(N):
        for m in range(M):
            drows[n] += dout[n, m] * w[:, m]
            dw[:, m] += dout[n, m] * rows[n]
    db = np.array([sum(dout[n, m] for n in range(N)) for m in range(M)]) if b is not None else None
    return drows.reshape(x.shape), dw, db
