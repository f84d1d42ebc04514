"""Batch norm over a batch split into shards: each shard's partial sums, and the steps that take the
whole batch's statistics and sums as given.

Data-parallel workers each hold rows of one batch; batch norm in training
must still normalize with the statistics of the whole batch. With m_r
values per channel in shard r (rows times H*W), the forward needs

    partials r:  m_r, mean_r = sum(x_r) / m_r, M2_r = sum((x_r - mean_r)^2)   (two passes: stable)
    whole batch: M = sum_r m_r, mean = sum_r m_r * mean_r / M,
                 M2 = sum_r (M2_r + m_r * (mean_r - mean)^2), var = M2 / M

(Chan, Golub and LeVeque's parallel formula for K parts; for two it is
M2 = M2_a + M2_b + (mean_b - mean_a)^2 * m_a * m_b / M). Each shard then
normalizes its rows with the whole batch's mean and var, and the running
statistics move with the whole batch's count (unbiased factor M / (M - 1)).

The backward's closed form (see batchnorm.py) needs two sums per channel
over the whole batch, S_dout = sum(dout) and S_xhat = sum(dout * xhat):

    dx = a * dout + b * xhat + c,  a = gamma * inv_std,  b = -a * S_xhat / M,  c = -a * S_dout / M

so each shard computes its own two sums, the caller adds them over shards,
and each shard forms its rows of dx from the totals. These functions are
pure; adding over shards (through a communicator) is the caller's work
(numcnn.nn.norm). With the whole batch in one shard they give what
batchnorm_forward and batchnorm_backward give, within rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..checks import batch_array, float_array, optional_float_array, positive_float, probability, upstream_gradient
from .batchnorm import (
    NaiveBatchNormCache,
    _centred_squares,
    _channel_means,
    _closed_form_coefficients,
    _fast_backward_sums,
    _fast_dx,
    _fast_forward_with_stats,
    _layout,
    _rows,
)
from .norm import NormCache, affine


class BatchNormPartials(NamedTuple):
    """One shard's statistics per channel: count values each, their mean (C,) and M2 (C,) =
    sum((x - mean)^2)."""

    count: int
    mean: np.ndarray
    m2: np.ndarray


def _feature_shape(x: np.ndarray) -> tuple[int, ...]:
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _axes(x: np.ndarray) -> tuple[int, ...]:
    return (0,) if x.ndim == 2 else (0, 2, 3)


def batchnorm_partial_stats(x) -> BatchNormPartials:
    """A shard's partial statistics. x (N, D) or (N, C, H, W) -> count = N*H*W, mean (C,), m2 (C,).

    mean = sum(x) / count and m2 = sum((x - mean)^2) over every axis but 1,
    in x's dtype; one value per channel is allowed (m2 = 0).
    """
    x = batch_array(x, "x", ndim=(2, 4))
    count = x.size // x.shape[1]
    rows = _rows(x)
    if rows is not None:  # batchnorm.py's row passes: BLAS column sums over wide views
        k, blocks = _layout(rows)
        mean = _channel_means(rows, k, blocks)
        return BatchNormPartials(count, mean, _centred_squares(rows, mean, k, blocks))
    axes = _axes(x)
    mean = x.mean(axis=axes)
    m2 = np.sum(np.square(x - mean.reshape(_feature_shape(x))), axis=axes)
    return BatchNormPartials(count, mean, m2)


def batchnorm_partial_stats_naive(x) -> BatchNormPartials:
    """One channel at a time, sums by hand."""
    x = batch_array(x, "x", ndim=(2, 4))
    C = x.shape[1]
    mean, m2 = np.zeros(C, x.dtype), np.zeros(C, x.dtype)
    for c in range(C):
        values = x[:, c]
        mean[c] = np.sum(values) / values.size
        m2[c] = np.sum((values - mean[c]) ** 2)
    return BatchNormPartials(x.size // C, mean, m2)


def combine_partial_stats(partials: Sequence[BatchNormPartials]) -> BatchNormPartials:
    """The whole batch's (count, mean (C,), m2 (C,)) from its shards' partials, in float64.

    M = sum_r m_r; mean = sum_r m_r * mean_r / M; m2 = sum_r (m2_r + m_r * (mean_r - mean)^2),
    summed in the order given. (numcnn.nn.norm computes the same across
    workers in two rounds of sums; var = m2 / M.)
    """
    if not partials:
        raise ValueError("partials must hold at least one shard's statistics")
    count = sum(int(p.count) for p in partials)
    mean = sum(p.count * np.asarray(p.mean, np.float64) for p in partials) / count
    m2 = sum(
        np.asarray(p.m2, np.float64) + p.count * np.square(np.asarray(p.mean, np.float64) - mean) for p in partials
    )
    return BatchNormPartials(count, mean, m2)


def _given_arguments(x, gamma, beta, mean, var, count, running_mean, running_var, momentum, eps):
    x = batch_array(x, "x", ndim=(2, 4))
    D = x.shape[1]
    stats = [optional_float_array(float_array(v, name), name, (D,)) for v, name in ((mean, "mean"), (var, "var"))]
    parameters = [
        optional_float_array(v, name, (D,))
        for v, name in ((gamma, "gamma"), (beta, "beta"), (running_mean, "running_mean"), (running_var, "running_var"))
    ]
    if (parameters[2] is None) != (parameters[3] is None):
        raise ValueError("running_mean and running_var must both be arrays or both be None")
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 2:
        raise ValueError(f"count must be the whole batch's values per channel, an integer >= 2, got {count!r}")
    return x, *parameters, *stats, int(count), probability(momentum, "momentum"), positive_float(eps, "eps")


def _running(rm, rv, mean, var, count, momentum):
    """The running statistics moved towards the whole batch's mean and unbiased variance."""
    if rm is None:
        return None, None
    rm = (1 - momentum) * rm + momentum * mean
    rv = (1 - momentum) * rv + momentum * var * (count / (count - 1))
    return rm, rv


def batchnorm_forward_with_stats(x, gamma, beta, mean, var, count, running_mean, running_var, momentum=0.1, eps=1e-5):
    """Batch norm in training of a shard x (N, D) or (N, C, H, W) with the whole batch's statistics.

    mean, var (C,): the whole batch's mean and biased variance; count: its
    values per channel (M). out = gamma * (x - mean) / sqrt(var + eps) + beta.
    Running statistics (C,) or None move as in batchnorm_forward, with
    var * M / (M - 1). Returns out (like x), cache (NormCache, for
    batchnorm_backward_sums and batchnorm_backward_with_sums), new_running_mean,
    new_running_var.
    """
    x, gamma, beta, rm, rv, mean, var, count, momentum, eps = _given_arguments(
        x, gamma, beta, mean, var, count, running_mean, running_var, momentum, eps
    )
    rm, rv = _running(rm, rv, mean, var, count, momentum)
    mean, var = mean.astype(x.dtype, copy=False), var.astype(x.dtype, copy=False)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    shape, axes = _feature_shape(x), _axes(x)
    gamma = None if gamma is None else gamma.astype(x.dtype, copy=False)
    beta = None if beta is None else beta.astype(x.dtype, copy=False)
    rows = _rows(x)
    if rows is not None:
        out, xhat = _fast_forward_with_stats(x, rows, gamma, beta, mean, inv_std)
    else:
        xhat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
        out = affine(
            xhat, None if gamma is None else gamma.reshape(shape), None if beta is None else beta.reshape(shape)
        )
    as_feature = lambda a: None if a is None else a.reshape(shape)
    return out, NormCache(xhat, inv_std.reshape(shape), axes, as_feature(gamma), axes, x.shape), rm, rv


def batchnorm_forward_with_stats_naive(
    x, gamma, beta, mean, var, count, running_mean, running_var, momentum=0.1, eps=1e-5
):
    """One channel at a time: xhat = (x - mean) / sqrt(var + eps), then the affine map."""
    x, gamma, beta, rm, rv, mean, var, count, momentum, eps = _given_arguments(
        x, gamma, beta, mean, var, count, running_mean, running_var, momentum, eps
    )
    rm, rv = _running(rm, rv, mean, var, count, momentum)
    xhat, out = np.zeros_like(x), np.zeros_like(x)
    inv_std = np.zeros(x.shape[1], x.dtype)
    for c in range(x.shape[1]):
        inv_std[c] = 1.0 / np.sqrt(var[c] + eps)
        xhat[:, c] = (x[:, c] - mean[c]) * inv_std[c]
        out[:, c] = xhat[:, c] * (1 if gamma is None else gamma[c]) + (0 if beta is None else beta[c])
    return out, NaiveBatchNormCache(xhat, inv_std, gamma, True), rm, rv


def _check_cache(cache) -> None:
    batch_statistics = cache.axes is not None if isinstance(cache, NormCache) else cache.batch_statistics
    if not batch_statistics:
        raise ValueError("cache must come from a forward with batch statistics (training), not running ones")


def batchnorm_backward_sums(dout, cache: NormCache):
    """A shard's sums per channel: sum(dout) (C,) and sum(dout * xhat) (C,), over every axis but 1.

    They are this shard's dbeta and dgamma; added over shards, the whole
    batch's S_dout and S_xhat for batchnorm_backward_with_sums.
    """
    _check_cache(cache)
    dout = upstream_gradient(dout, "dout", cache.input_shape)
    xhat = cache.xhat
    if dout.dtype == xhat.dtype:
        d_rows, xhat_rows = _rows(dout), _rows(xhat)
        if d_rows is not None and xhat_rows is not None:
            return _fast_backward_sums(d_rows, xhat_rows)
    axes = _axes(xhat)
    return np.sum(dout, axis=axes), np.sum(dout * xhat, axis=axes)


def batchnorm_backward_sums_naive(dout, cache: NaiveBatchNormCache):
    """One channel at a time."""
    _check_cache(cache)
    dout = upstream_gradient(dout, "dout", cache.xhat.shape)
    C = dout.shape[1]
    sum_dout = np.array([np.sum(dout[:, c]) for c in range(C)])
    sum_dout_xhat = np.array([np.sum(dout[:, c] * cache.xhat[:, c]) for c in range(C)])
    return sum_dout, sum_dout_xhat


def _given_sums(sum_dout, sum_dout_xhat, count, C):
    sums = [
        optional_float_array(float_array(v, n), n, (C,))
        for v, n in ((sum_dout, "sum_dout"), (sum_dout_xhat, "sum_dout_xhat"))
    ]
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"count must be the whole batch's values per channel, a positive integer, got {count!r}")
    return sums[0], sums[1], int(count)


def batchnorm_backward_with_sums(dout, cache: NormCache, sum_dout, sum_dout_xhat, count):
    """dx (like x) of a shard from the whole batch's sums (C,) and its values per channel, count.

    dx = a * dout + b * xhat + c with a = gamma * inv_std, b = -a * sum_dout_xhat / count,
    c = -a * sum_dout / count. dgamma and dbeta are batchnorm_backward_sums's.
    """
    _check_cache(cache)
    dout = upstream_gradient(dout, "dout", cache.input_shape)
    sum_dout, sum_dout_xhat, count = _given_sums(sum_dout, sum_dout_xhat, count, cache.input_shape[1])
    a, b, c = _closed_form_coefficients(cache, sum_dout, sum_dout_xhat, count, dout.dtype)
    xhat = cache.xhat
    if dout.dtype == xhat.dtype:
        d_rows, xhat_rows = _rows(dout), _rows(xhat)
        if d_rows is not None and xhat_rows is not None:
            return _fast_dx(dout, d_rows, xhat_rows, a, b, c)
    shape = _feature_shape(xhat)
    return a.reshape(shape) * dout + b.reshape(shape) * xhat + c.reshape(shape)


def batchnorm_backward_with_sums_naive(dout, cache: NaiveBatchNormCache, sum_dout, sum_dout_xhat, count):
    """Per channel, through the standardization graph with the whole batch's sums.

    Forward graph over the whole batch (M values): mu = sum(x)/M; xc = x - mu;
    var = sum(xc^2)/M; istd = (var + eps)^(-1/2); xhat = xc * istd;
    out = gamma * xhat + beta. A sum over the whole batch of dxhat = gamma * dout
    is gamma times a given sum; sum(xc) = 0.
    """
    _check_cache(cache)
    xhat, inv_std, gamma, _ = cache
    dout = upstream_gradient(dout, "dout", xhat.shape)
    sum_dout, sum_dout_xhat, count = _given_sums(sum_dout, sum_dout_xhat, count, xhat.shape[1])
    dx = np.zeros_like(xhat)
    for c in range(xhat.shape[1]):
        g = 1 if gamma is None else gamma[c]
        xc = xhat[:, c] / inv_std[c]
        distd = g * sum_dout_xhat[c] / inv_std[c]  # sum(dxhat * xc) over the batch; xhat = xc * istd
        dvar = distd * -0.5 * inv_std[c] ** 3  # istd = (var + eps)^(-1/2)
        dxc = g * dout[:, c] * inv_std[c] + dvar * 2.0 * xc / count  # var = sum(xc^2)/M
        dmu = -g * sum_dout[c] * inv_std[c]  # -sum(dxc) over the batch: xc = x - mu, sum(xc) = 0
        dx[:, c] = dxc + dmu / count  # mu = sum(x)/M
    return dx
