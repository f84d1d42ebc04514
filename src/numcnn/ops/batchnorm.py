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

See norm.py for the shared standardization and its backward pass.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import float_array, optional_float_array, probability
from .norm import (NormCache, affine, norm_backward, standardize,
                   standardize_backward_naive, standardize_naive)


class NaiveBatchNormCache(NamedTuple):
    xhat: np.ndarray
    inv_std: np.ndarray          # (D,)
    gamma: np.ndarray | None
    batch_statistics: bool       # False: running statistics were used as constants


def _arguments(x, gamma, beta, running_mean, running_var, momentum):
    x = float_array(x, "x", ndim=(2, 4))
    D = x.shape[1]
    gamma = optional_float_array(gamma, "gamma", (D,))
    beta = optional_float_array(beta, "beta", (D,))
    running_mean = optional_float_array(running_mean, "running_mean", (D,))
    running_var = optional_float_array(running_var, "running_var", (D,))
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must both be arrays or both be None")
    momentum = probability(momentum, "momentum")
    return x, gamma, beta, running_mean, running_var, momentum


def _check_batch(x, training):
    if training and x.size // x.shape[1] < 2:
        raise ValueError(
            f"batch norm in training needs more than 1 value per channel, got x of shape {x.shape}"
        )


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """Batch norm of x (N, D) or (N, C, H, W).

    gamma, beta: (D,) or None (no affine). running_mean, running_var: (D,)
    or None (no tracking). Returns out (like x), cache, new_running_mean,
    new_running_var (None when not tracking).
    """
    x, gamma, beta, rm, rv, momentum = _arguments(x, gamma, beta, running_mean, running_var, momentum)
    _check_batch(x, training)
    D = x.shape[1]
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = (1, D) + (1,) * (x.ndim - 2)
    as_feature = lambda a: None if a is None else a.reshape(shape).astype(x.dtype, copy=False)
    if training or rm is None:
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
    return norm_backward(dout, cache, (cache.input_shape[1],))


def batchnorm_forward_naive(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """Batch norm one feature at a time, statistics summed by hand."""
    x, gamma, beta, rm, rv, momentum = _arguments(x, gamma, beta, running_mean, running_var, momentum)
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
