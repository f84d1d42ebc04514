"""Batch norm with running statistics, as torch.nn.functional.batch_norm defines it.

x (N, D) is normalized per feature over the batch; x (N, C, H, W) per
channel over (N, H, W) ("spatial batch norm"). In training the batch's own
mean and (biased) variance are used and the running statistics move towards
them:

    running_mean <- (1 - momentum) * running_mean + momentum * mean
    running_var  <- (1 - momentum) * running_var  + momentum * var * m / (m - 1)

with m = N*H*W values per channel (the stored variance is unbiased). In
evaluation the running statistics are used as constants. Without running
statistics (track_running_stats=False in PyTorch) the batch statistics are
used in both modes. The new running statistics are returned, never written
into the arrays passed in, so the function stays pure.

See norm.py for the shared standardization and its backward pass, and
batchnorm_partial.py for the same over a batch split among data-parallel
workers (partial statistics and sums, built from the row passes below).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..checks import batch_array, optional_float_array, positive_float, probability, upstream_gradient
from .engine import direct, scratch, tuning
from .engine.threads import blocks_for_threads, map_chunks, summed_in_order, vector_sums
from .norm import NormCache, affine, norm_backward, standardize, standardize_backward_naive, standardize_naive


class NaiveBatchNormCache(NamedTuple):
    """What batchnorm_forward_naive keeps for batchnorm_backward_naive.

    Attributes:
        xhat: The standardized input, x's shape.
        inv_std: `1 / sqrt(var + eps)` per feature or channel, (D,).
        gamma: The scale (D,), or None.
        batch_statistics: True when the batch's own statistics were used (training, or
            no running statistics); False when the running ones were constants.
    """

    xhat: np.ndarray
    inv_std: np.ndarray  # (D,)
    gamma: np.ndarray | None
    batch_statistics: bool  # False: running statistics were used as constants


def _arguments(x, gamma, beta, running_mean, running_var, momentum, eps):
    x = batch_array(x, "x", ndim=(2, 4))
    D = x.shape[1]
    gamma = optional_float_array(gamma, "gamma", (D,))
    beta = optional_float_array(beta, "beta", (D,))
    running_mean = optional_float_array(running_mean, "running_mean", (D,))
    running_var = optional_float_array(running_var, "running_var", (D,))
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must both be arrays or both be None")
    momentum = probability(momentum, "momentum")
    eps = positive_float(eps, "eps")
    return x, gamma, beta, running_mean, running_var, momentum, eps


def _check_batch(x, training):
    if training and x.size // x.shape[1] < 2:
        raise ValueError(f"batch norm in training needs more than 1 value per channel, got x of shape {x.shape}")


# -- the fast path for rows of channels -----------------------------------------
# Conv outputs are channels-last, so a per-channel statistic is a reduction
# over the rows of an (M, C) matrix with C often only 16-64 wide. NumPy's axis
# reductions and (M, C) x (C,) broadcasts then run inner loops of C numbers
# (measured 3-5x slower than the memory traffic). Instead: sums are
# matrix-vector products with a ones vector (BLAS), and elementwise steps run
# on an (M/k, k*C) view against the per-channel vector tiled k times.
# With Numba installed, large activations take compiled passes instead
# (engine/rows_kernels.py): each pass below does its two to four NumPy steps
# in one sweep over memory.


def _compiled_passes(rows: np.ndarray):
    """engine.rows_kernels when Numba is installed and rows are float and large enough, else None."""
    if rows.size < tuning.COMPILED_ROWS_MIN_NUMBERS or rows.dtype not in (np.float32, np.float64):
        return None
    if not direct.available():  # Numba is not installed
        return None
    from .engine import rows_kernels

    return rows_kernels


def _compiled_sums(kernel, blocks, count: int, *arrays) -> np.ndarray:
    """(count, C) per-channel sums over row blocks, in the arrays' dtype: for each block,
    kernel(its rows of each 2-d array, each 1-d array whole, *count float64 sums from zeros); the
    blocks' sums added in block order."""
    rows = next(a for a in arrays if a.ndim == 2)

    def task(start, stop):
        sums = np.zeros((count, rows.shape[1]))
        kernel(*(a[start:stop] if a.ndim == 2 else a for a in arrays), *sums)
        return sums

    return _summed(task, blocks).astype(rows.dtype)


def _rows(x: np.ndarray):
    """x as an (M, C) view with channels contiguous (channels-last 4-d, or (N, D)), else None."""
    if x.ndim == 2:
        return x if x.flags.c_contiguous else None
    rows = x.transpose(0, 2, 3, 1)
    return rows.reshape(-1, x.shape[1]) if rows.flags.c_contiguous else None


def _period(M: int, C: int) -> int:
    """k dividing M with k*C around tuning.WIDE_ROW_NUMBERS: the row width of the wide view."""
    k = 1
    while k * C < tuning.WIDE_ROW_NUMBERS and M % (2 * k) == 0:
        k *= 2
    return k


def _wide(rows: np.ndarray, start: int, stop: int, k: int) -> np.ndarray:
    """Rows start:stop of an (M, C) view as ((stop - start)/k, k*C); k divides both."""
    return rows[start:stop].reshape(-1, k * rows.shape[1])


def _column_sums(rows: np.ndarray) -> np.ndarray:
    return vector_sums(rows, axis=0)


def _row_blocks(M: int, k: int, itemsize_times_C: int) -> list[tuple[int, int]]:
    """Row ranges, multiples of the wide view's period k, one per thread when that pays (each pass
    below streams the whole activation through memory once)."""
    return blocks_for_threads(M, M * itemsize_times_C, multiple=k)


def _summed(task, blocks) -> np.ndarray:
    """Sum of task(start, stop) over row blocks, in block order."""
    return summed_in_order(map_chunks(task, blocks))


def _layout(rows: np.ndarray):
    """The wide view's period k and the row blocks of an (M, C) view."""
    M, C = rows.shape
    k = _period(M, C)
    return k, _row_blocks(M, k, C * rows.itemsize)


def _channel_means(rows, k, blocks) -> np.ndarray:
    """Pass 1: per-channel means, as column sums by BLAS over row blocks."""
    compiled = _compiled_passes(rows)
    if compiled:
        return _compiled_sums(compiled.column_sums, blocks, 1, rows)[0] / rows.dtype.type(rows.shape[0])
    return _summed(lambda a, b: _column_sums(rows[a:b]), blocks) / rows.shape[0]


def _centred_squares(rows, mean, k, blocks, centred_rows=None) -> np.ndarray:
    """Pass 2: per-channel sums of (x - mean)^2; the centred values go to centred_rows if given."""
    C = rows.shape[1]
    compiled = _compiled_passes(rows)
    if compiled:
        if centred_rows is None:
            centred_rows = scratch.scratch("batchnorm square", rows.shape, rows.dtype)
        return _compiled_sums(compiled.centred_square_sums, blocks, 1, rows, mean.astype(rows.dtype), centred_rows)[0]
    tiled_mean = np.tile(mean, k)

    def centre(a, b):
        square = scratch.scratch("batchnorm square", (b - a, C), rows.dtype)
        centred = centred_rows[a:b] if centred_rows is not None else square
        np.subtract(_wide(rows, a, b, k), tiled_mean, out=_wide(centred, 0, b - a, k))
        np.square(centred, out=square)
        return _column_sums(square)

    return _summed(centre, blocks)


def _centre(rows, mean, k, blocks, centred_rows) -> None:
    """x - mean into centred_rows (pass 2 without the squares: the statistics are given)."""
    tiled_mean = np.tile(mean, k)
    map_chunks(lambda a, b: np.subtract(_wide(rows, a, b, k), tiled_mean, out=_wide(centred_rows, a, b, k)), blocks)


def _normalize(xhat_rows, out_rows, inv_std, gamma, beta, k, blocks) -> None:
    """Pass 3, in place: xhat_rows *= inv_std; out_rows = gamma * xhat_rows + beta."""
    C = xhat_rows.shape[1]
    compiled = _compiled_passes(xhat_rows)
    if compiled:
        gain = np.ones(C, xhat_rows.dtype) if gamma is None else gamma.astype(xhat_rows.dtype)
        bias = np.zeros(C, xhat_rows.dtype) if beta is None else beta.astype(xhat_rows.dtype)
        scale = inv_std.astype(xhat_rows.dtype)
        map_chunks(lambda a, b: compiled.normalize(xhat_rows[a:b], scale, gain, bias, out_rows[a:b]), blocks)
        return
    scale, shift = np.tile(inv_std, k), None if beta is None else np.tile(beta, k)
    gain = np.tile(gamma if gamma is not None else np.ones(C, xhat_rows.dtype), k)

    def normalize(a, b):
        normalized, result = _wide(xhat_rows, a, b, k), _wide(out_rows, a, b, k)
        np.multiply(normalized, scale, out=normalized)
        np.multiply(normalized, gain, out=result)
        if shift is not None:
            np.add(result, shift, out=result)

    map_chunks(normalize, blocks)


def _fast_train_forward(x, rows, gamma, beta, eps):
    """Batch statistics and the normalized output over the rows of an (M, C) view.

    Three passes over row blocks, split over the cores: sums for the mean;
    centring, with sums of squares for the variance; scaling and shift.
    """
    M = rows.shape[0]
    k, blocks = _layout(rows)
    mean = _channel_means(rows, k, blocks)
    xhat = np.empty_like(x)
    xhat_rows = _rows(xhat)
    var = _centred_squares(rows, mean, k, blocks, xhat_rows) / M
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    out = np.empty_like(x)
    _normalize(xhat_rows, _rows(out), inv_std, gamma, beta, k, blocks)
    return out, xhat, inv_std, mean, var


def _fast_forward_with_stats(x, rows, gamma, beta, mean, inv_std):
    """The normalized output with given statistics: centring, then scaling and shift."""
    k, blocks = _layout(rows)
    xhat = np.empty_like(x)
    xhat_rows = _rows(xhat)
    _centre(rows, mean, k, blocks, xhat_rows)
    out = np.empty_like(x)
    _normalize(xhat_rows, _rows(out), inv_std, gamma, beta, k, blocks)
    return out, xhat


def _fast_backward_sums(d_rows, xhat_rows):
    """Per-channel sum(dout) and sum(dout * xhat) over the rows, in one pass over row blocks."""
    C = d_rows.shape[1]
    k, blocks = _layout(d_rows)
    compiled = _compiled_passes(d_rows)
    if compiled:
        sum_dout, sum_dout_xhat = _compiled_sums(compiled.backward_sums, blocks, 2, d_rows, xhat_rows)
        return sum_dout, sum_dout_xhat

    def sums(a, b):
        product = scratch.scratch("batchnorm square", (b - a, C), d_rows.dtype)
        np.multiply(d_rows[a:b], xhat_rows[a:b], out=product)
        return np.stack([_column_sums(d_rows[a:b]), _column_sums(product)])

    sum_dout, sum_dout_xhat = _summed(sums, blocks)
    return sum_dout, sum_dout_xhat


def _fast_dx(dout, d_rows, xhat_rows, a, b, c):
    """dx = a*dout + b*xhat + c with per-channel a, b, c, in one pass over row blocks."""
    C = d_rows.shape[1]
    k, blocks = _layout(d_rows)
    dx = np.empty_like(dout)
    dx_rows = _rows(dx)
    compiled = _compiled_passes(d_rows)
    if compiled:
        map_chunks(
            lambda start, stop: compiled.combine(
                d_rows[start:stop], xhat_rows[start:stop], a, b, c, dx_rows[start:stop]
            ),
            blocks,
        )
        return dx
    tiled_a, tiled_b, tiled_c = np.tile(a, k), np.tile(b, k), np.tile(c, k)

    def combine(start, stop):
        result = _wide(dx_rows, start, stop, k)
        product = _wide(scratch.scratch("batchnorm square", (stop - start, C), d_rows.dtype), 0, stop - start, k)
        np.multiply(_wide(d_rows, start, stop, k), tiled_a, out=result)
        np.multiply(_wide(xhat_rows, start, stop, k), tiled_b, out=product)
        np.add(result, product, out=result)
        np.add(result, tiled_c, out=result)

    map_chunks(combine, blocks)
    return dx


def _closed_form_coefficients(cache: NormCache, sum_dout, sum_dout_xhat, count, dtype):
    """a, b, c (C,) of dx = a*dout + b*xhat + c, from the batch's sums over `count` values per channel:
    a = gamma * inv_std, b = -a * sum(dout * xhat) / count, c = -a * sum(dout) / count."""
    C = cache.input_shape[1]
    gamma = cache.gamma.reshape(C) if cache.gamma is not None else np.ones(C, dtype)
    a = gamma * cache.inv_std.reshape(C)
    b, c = -a * sum_dout_xhat / count, -a * sum_dout / count
    return (v.astype(dtype, copy=False) for v in (a, b, c))


def _fast_backward(dout, d_rows, cache: NormCache):
    """dx = a*dout + b*xhat + c per channel: the closed form, in two passes over row blocks."""
    xhat_rows = _rows(cache.xhat)
    dbeta, dgamma = _fast_backward_sums(d_rows, xhat_rows)
    a, b, c = _closed_form_coefficients(cache, dbeta, dgamma, d_rows.shape[0], dout.dtype)
    dx = _fast_dx(dout, d_rows, xhat_rows, a, b, c)
    if cache.gamma is None:
        return dx, None, None
    return dx, dgamma, dbeta


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """Batch norm of x (N, D) or (N, C, H, W).

    gamma, beta: (D,) or None (no affine). running_mean, running_var: (D,)
    or None (no tracking). Returns out (like x), cache, new_running_mean,
    new_running_var (None when not tracking).
    """
    x, gamma, beta, rm, rv, momentum, eps = _arguments(x, gamma, beta, running_mean, running_var, momentum, eps)
    _check_batch(x, training)
    D = x.shape[1]
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = (1, D) + (1,) * (x.ndim - 2)
    as_feature = lambda a: None if a is None else a.reshape(shape).astype(x.dtype, copy=False)
    if training or rm is None:
        rows = _rows(x)
        if rows is not None and x.size // D >= 2:
            g = None if gamma is None else gamma.astype(x.dtype, copy=False)
            b = None if beta is None else beta.astype(x.dtype, copy=False)
            out, xhat, inv_std, mean, var = _fast_train_forward(x, rows, g, b, eps)
            inv_std, mean, var = (v.reshape(shape) for v in (inv_std, mean, var))
            norm_axes = axes
            if training and rm is not None:
                m = x.size // D
                rm = (1 - momentum) * rm + momentum * mean.reshape(D)
                rv = (1 - momentum) * rv + momentum * var.reshape(D) * (m / (m - 1))
            cache = NormCache(xhat, inv_std, norm_axes, as_feature(gamma), axes, x.shape)
            return out, cache, rm, rv
        xhat, inv_std, mean, var = standardize(x, axes, eps)
        norm_axes = axes
        if training and rm is not None:
            m = x.size // D
            rm = (1 - momentum) * rm + momentum * mean.reshape(D)
            rv = (1 - momentum) * rv + momentum * var.reshape(D) * (m / (m - 1))
    else:
        inv_std = as_feature(1.0 / np.sqrt(rv + eps))
        xhat = (x - as_feature(rm)) * inv_std
        norm_axes = None  # statistics are constants: backward is a plain scale
    gamma, beta = as_feature(gamma), as_feature(beta)
    cache = NormCache(xhat, inv_std, norm_axes, gamma, axes, x.shape)
    return affine(xhat, gamma, beta), cache, rm, rv


def batchnorm_backward(dout, cache: NormCache):
    """Returns dx (like x), dgamma (D,), dbeta (D,); the last two None without gamma."""
    if cache.axes is not None and _rows(cache.xhat) is not None:
        dout_array = np.asarray(dout)
        if dout_array.shape == cache.xhat.shape and dout_array.dtype == cache.xhat.dtype:
            d_rows = _rows(dout_array)
            if d_rows is not None:
                return _fast_backward(dout_array, d_rows, cache)
    return norm_backward(dout, cache, (cache.input_shape[1],))


def batchnorm_forward_naive(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """Batch norm one feature at a time, statistics summed by hand."""
    x, gamma, beta, rm, rv, momentum, eps = _arguments(x, gamma, beta, running_mean, running_var, momentum, eps)
    _check_batch(x, training)
    D = x.shape[1]
    use_batch_statistics = training or rm is None
    rm = None if rm is None else rm.copy()
    rv = None if rv is None else rv.copy()
    xhat, out = np.zeros_like(x), np.zeros_like(x)
    inv_std = np.zeros(D, x.dtype)
    for d in range(D):
        values = x[:, d]
        if use_batch_statistics:
            xhat[:, d], inv_std[d] = standardize_naive(values, eps)
            if training and rm is not None:
                m = values.size
                mean = np.sum(values) / m
                rm[d] = (1 - momentum) * rm[d] + momentum * mean
                rv[d] = (1 - momentum) * rv[d] + momentum * np.sum((values - mean) ** 2) / (m - 1)
        else:
            inv_std[d] = 1.0 / np.sqrt(rv[d] + eps)
            xhat[:, d] = (values - rm[d]) * inv_std[d]
        out[:, d] = xhat[:, d] * (1 if gamma is None else gamma[d]) + (0 if beta is None else beta[d])
    cache = NaiveBatchNormCache(xhat, inv_std, gamma, use_batch_statistics)
    return out, cache, rm, rv


def batchnorm_backward_naive(dout, cache: NaiveBatchNormCache):
    """Per feature: through the standardization graph, or a plain scale in eval mode."""
    xhat, inv_std, gamma, batch_statistics = cache
    dout = upstream_gradient(dout, "dout", xhat.shape)
    D = xhat.shape[1]
    dx = np.zeros_like(xhat)
    for d in range(D):
        dxhat = dout[:, d] * (1 if gamma is None else gamma[d])
        if batch_statistics:
            dx[:, d] = standardize_backward_naive(dxhat, xhat[:, d], inv_std[d])
        else:
            dx[:, d] = dxhat * inv_std[d]
    if gamma is None:
        return dx, None, None
    dgamma = np.array([np.sum(dout[:, d] * xhat[:, d]) for d in range(D)])
    dbeta = np.array([np.sum(dout[:, d]) for d in range(D)])
    return dx, dgamma, dbeta
