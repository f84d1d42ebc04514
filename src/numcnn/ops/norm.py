"""Layer, group and instance norm, and the standardization all norms share.

Every normalization layer standardizes x over some axes and then applies a
per-feature affine map:

    mu = mean(x), var = mean((x - mu)^2)      over the normalized axes (biased)
    xhat = (x - mu) / sqrt(var + eps)
    out = gamma * xhat + beta

They differ only in the axes (for x of shape (N, C, H, W)):

    batch norm      over (N, H, W) per channel          (batchnorm.py)
    layer norm      over (C, H, W) per sample           (all but the first axis)
    group norm      over (C/G, H, W) per sample and group of channels
    instance norm   over (H, W) per sample and channel

The backward pass of the standardization has one compact closed form, with
means over the same axes:

    dx = (1 / sqrt(var + eps)) * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))

where dxhat = dout * gamma; dgamma = sum(dout * xhat) and dbeta = sum(dout)
over every axis but the feature axes. The loop versions below standardize
one vector at a time and backpropagate through the computational graph step
by step instead, which is how the closed form is derived.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..checks import batch_array, optional_float_array, positive_float, positive_int, upstream_gradient


class NormCache(NamedTuple):
    """What a normalization forward keeps for its backward: layer, group, instance and batch norm.

    Attributes:
        xhat: The standardized input, in the normalized view's shape (x's, or
            `(N, G, C/G, H*W)` for group and instance norm).
        inv_std: `1 / sqrt(var + eps)`, broadcastable to xhat.
        axes: The axes of xhat the statistics were taken over; None when they were
            constants (batch norm in evaluation), so that dx is a plain scale of dout.
        gamma: The scale, broadcastable to xhat, or None without an affine map.
        param_axes: The axes of xhat that dgamma and dbeta sum over.
        input_shape: x's shape, which dout must have and dx gets.
    """

    xhat: np.ndarray  # standardized input, in the normalized view's shape
    inv_std: np.ndarray  # 1 / sqrt(var + eps), broadcastable to xhat
    axes: tuple[int, ...] | None  # normalized axes of xhat; None: fixed statistics
    gamma: np.ndarray | None  # broadcastable to xhat
    param_axes: tuple[int, ...]  # axes of xhat that dgamma and dbeta sum over
    input_shape: tuple[int, ...]


# ---------------------------------------------------------------------------
# The shared core
# ---------------------------------------------------------------------------


def standardize(x: np.ndarray, axes: tuple[int, ...], eps: float):
    """xhat = (x - mean) / sqrt(var + eps) over `axes`; returns xhat, inv_std, mean, var."""
    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    var = np.mean(np.square(centered), axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    centered *= inv_std
    return centered, inv_std, mean, var


def standardize_backward(dxhat: np.ndarray, xhat: np.ndarray, inv_std: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The closed form above: dx from d(loss)/d(xhat)."""
    mean_dxhat = dxhat.mean(axis=axes, keepdims=True)
    mean_dxhat_xhat = np.mean(dxhat * xhat, axis=axes, keepdims=True)
    return inv_std * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)


def affine(xhat, gamma, beta):
    """gamma * xhat + beta, either of them possibly None."""
    out = xhat * gamma if gamma is not None else xhat.copy()
    if beta is not None:
        out += beta
    return out


def norm_backward(dout, cache: NormCache, gamma_shape):
    """Shared backward: returns dx, dgamma, dbeta (the last two None without gamma)."""
    xhat, inv_std, axes, gamma, param_axes, input_shape = cache
    dout = upstream_gradient(dout, "dout", input_shape).reshape(xhat.shape)
    dxhat = dout * gamma if gamma is not None else dout
    if axes is None:  # mean and variance were constants (batch norm in eval mode)
        dx = dxhat * inv_std
    else:
        dx = standardize_backward(dxhat, xhat, inv_std, axes)
    dx = dx.reshape(input_shape)
    if gamma is None:
        return dx, None, None
    dgamma = np.sum(dout * xhat, axis=param_axes).reshape(gamma_shape)
    dbeta = np.sum(dout, axis=param_axes).reshape(gamma_shape)
    return dx, dgamma, dbeta


def standardize_naive(values: np.ndarray, eps: float):
    """One vector (any shape) standardized by explicit sums; returns xhat, inv_std."""
    m = values.size
    mean = np.sum(values) / m
    var = np.sum((values - mean) ** 2) / m
    inv_std = 1.0 / np.sqrt(var + eps)
    return (values - mean) * inv_std, inv_std


def standardize_backward_naive(dxhat: np.ndarray, xhat: np.ndarray, inv_std) -> np.ndarray:
    """Backpropagation through the standardization graph, one step at a time.

    Forward graph (m values): mu = sum(x)/m; xc = x - mu; var = sum(xc^2)/m;
    istd = (var + eps)^(-1/2); xhat = xc * istd. Each line undoes one step.
    """
    m = xhat.size
    xc = xhat / inv_std
    distd = np.sum(dxhat * xc)  # xhat = xc * istd
    dxc = dxhat * inv_std
    dvar = distd * -0.5 * inv_std**3  # istd = (var + eps)^(-1/2)
    dxc = dxc + dvar * 2.0 * xc / m  # var = sum(xc^2)/m
    dmu = -np.sum(dxc)  # xc = x - mu
    return dxc + dmu / m  # mu = sum(x)/m


class NaiveNormCache(NamedTuple):
    """What the loop versions of layer, group and instance norm keep for their backward.

    Attributes:
        xhat: The standardized input, x's shape.
        inv_std: `1 / sqrt(var + eps)`, one per standardized vector: (N,) for layer norm,
            (N, G) for group norm.
        gamma: The scale as given (x.shape[1:] for layer norm, (C,) for group norm), or None.
        num_groups: G for group norm (C for instance norm); 1 for layer norm.
    """

    xhat: np.ndarray
    inv_std: np.ndarray  # one per standardized vector
    gamma: np.ndarray | None
    num_groups: int


# ---------------------------------------------------------------------------
# Layer norm
# ---------------------------------------------------------------------------


def _layernorm_args(x, gamma, beta, eps):
    x = batch_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 dimensions (N, ...), got shape {x.shape}")
    gamma = optional_float_array(gamma, "gamma", x.shape[1:])
    beta = optional_float_array(beta, "beta", x.shape[1:])
    return x, gamma, beta, positive_float(eps, "eps")


def layernorm_forward(x, gamma, beta, eps=1e-5):
    """Layer norm over all but the first axis. x (N, ...); gamma, beta: x.shape[1:] or None."""
    x, gamma, beta, eps = _layernorm_args(x, gamma, beta, eps)
    axes = tuple(range(1, x.ndim))
    xhat, inv_std, _, _ = standardize(x, axes, eps)
    gamma = None if gamma is None else gamma[None].astype(x.dtype, copy=False)
    beta = None if beta is None else beta[None].astype(x.dtype, copy=False)
    return affine(xhat, gamma, beta), NormCache(xhat, inv_std, axes, gamma, (0,), x.shape)


def layernorm_backward(dout, cache: NormCache):
    """Returns dx (like x), dgamma and dbeta (x.shape[1:]), the last two None without gamma."""
    return norm_backward(dout, cache, cache.input_shape[1:])


def layernorm_forward_naive(x, gamma, beta, eps=1e-5):
    """Loop version of layernorm_forward: same signature and output; its cache is a NaiveNormCache.

    x (N, ...) -> out (like x); gamma and beta of shape x.shape[1:] or None. Loops over
    samples, standardizing each with its mean and biased variance summed by hand
    (standardize_naive):

        xhat[n] = (x[n] - mean(x[n])) / sqrt(var(x[n]) + eps)
        out[n]  = gamma * xhat[n] + beta

    Raises ValueError for x with fewer than 2 dimensions, gamma or beta of another size,
    or an eps that is not a positive finite number.
    """
    x, gamma, beta, eps = _layernorm_args(x, gamma, beta, eps)
    xhat, out = np.zeros_like(x), np.zeros_like(x)
    inv_std = np.zeros(x.shape[0], x.dtype)
    for n in range(x.shape[0]):
        xhat[n], inv_std[n] = standardize_naive(x[n], eps)
        out[n] = xhat[n] * (1 if gamma is None else gamma) + (0 if beta is None else beta)
    return out, NaiveNormCache(xhat, inv_std, gamma, 1)


def layernorm_backward_naive(dout, cache: NaiveNormCache):
    """Loop version of layernorm_backward, for the cache of layernorm_forward_naive.

    Returns dx (like x), dgamma and dbeta (x.shape[1:]; None without gamma). Loops over
    samples, backpropagating `dxhat = dout[n] * gamma` through the standardization graph
    one step at a time (standardize_backward_naive); then

        dgamma = sum over n of dout[n] * xhat[n],   dbeta = sum over n of dout[n]

    Raises ValueError when dout does not have x's shape.
    """
    xhat, inv_std, gamma, _ = cache
    dout = upstream_gradient(dout, "dout", xhat.shape)
    dx = np.zeros_like(xhat)
    for n in range(xhat.shape[0]):
        dxhat = dout[n] * (1 if gamma is None else gamma)
        dx[n] = standardize_backward_naive(dxhat, xhat[n], inv_std[n])
    if gamma is None:
        return dx, None, None
    return dx, np.sum(dout * xhat, axis=0), np.sum(dout, axis=0)


# ---------------------------------------------------------------------------
# Group norm (and instance norm, which is group norm with one channel per group)
# ---------------------------------------------------------------------------


def _groupnorm_args(x, gamma, beta, num_groups, eps, min_ndim=2):
    x = batch_array(x, "x")
    if x.ndim < min_ndim:
        raise ValueError(f"x must have at least {min_ndim} dimensions (N, C, ...), got shape {x.shape}")
    num_groups = positive_int(num_groups, "num_groups")
    C = x.shape[1]
    if C % num_groups:
        raise ValueError(f"x has {C} channels, which num_groups={num_groups} does not divide")
    gamma = optional_float_array(gamma, "gamma", (C,))
    beta = optional_float_array(beta, "beta", (C,))
    # PyTorch refuses a single value to normalize (its variance is 0); so do we
    if x.shape[0] * (C // num_groups) * int(np.prod(x.shape[2:])) == 1:
        raise ValueError(f"group norm needs more than 1 value per group, got x of shape {x.shape}")
    return x, gamma, beta, num_groups, positive_float(eps, "eps")


def _instancenorm_args(x, gamma, beta, eps):
    x, gamma, beta, _, eps = _groupnorm_args(x, gamma, beta, 1, eps, min_ndim=3)
    if int(np.prod(x.shape[2:])) == 1:
        raise ValueError(f"instance norm needs more than 1 spatial element, got x of shape {x.shape}")
    return x, gamma, beta, eps


def groupnorm_forward(x, gamma, beta, num_groups, eps=1e-5):
    """Group norm. x (N, C, ...) with C divisible by num_groups; gamma, beta (C,) or None."""
    x, gamma, beta, num_groups, eps = _groupnorm_args(x, gamma, beta, num_groups, eps)
    N, C = x.shape[:2]
    grouped = x.reshape(N, num_groups, C // num_groups, -1)  # (N, G, C/G, H*W)
    xhat, inv_std, _, _ = standardize(grouped, (2, 3), eps)
    per_channel = (1, num_groups, C // num_groups, 1)
    gamma = None if gamma is None else gamma.reshape(per_channel).astype(x.dtype, copy=False)
    beta = None if beta is None else beta.reshape(per_channel).astype(x.dtype, copy=False)
    out = affine(xhat, gamma, beta).reshape(x.shape)
    return out, NormCache(xhat, inv_std, (2, 3), gamma, (0, 3), x.shape)


def groupnorm_backward(dout, cache: NormCache):
    """Returns dx (like x), dgamma (C,), dbeta (C,), the last two None without gamma."""
    return norm_backward(dout, cache, (cache.input_shape[1],))


def groupnorm_forward_naive(x, gamma, beta, num_groups, eps=1e-5):
    """Loop version of groupnorm_forward: same signature and output; its cache is a NaiveNormCache.

    x (N, C, ...) with C divisible by num_groups; gamma and beta (C,) or None. Loops over
    samples n and groups g of C/G channels, standardizing each group's values with sums
    written by hand (standardize_naive), then over channels for the affine map:

        xhat[n, group] = (x[n, group] - mean) / sqrt(var + eps)    over its channels and pixels
        out[n, c]      = gamma[c] * xhat[n, c] + beta[c]

    Raises ValueError when num_groups does not divide C, for gamma or beta not of C values,
    for a single value to normalize, or an eps that is not a positive finite number.
    """
    x, gamma, beta, num_groups, eps = _groupnorm_args(x, gamma, beta, num_groups, eps)
    N, C = x.shape[:2]
    per_group = C // num_groups
    xhat, out = np.zeros_like(x), np.zeros_like(x)
    inv_std = np.zeros((N, num_groups), x.dtype)
    for n in range(N):
        for g in range(num_groups):
            channels = slice(g * per_group, (g + 1) * per_group)
            xhat[n, channels], inv_std[n, g] = standardize_naive(x[n, channels], eps)
        for c in range(C):
            out[n, c] = xhat[n, c] * (1 if gamma is None else gamma[c]) + (0 if beta is None else beta[c])
    return out, NaiveNormCache(xhat, inv_std, gamma, num_groups)


def groupnorm_backward_naive(dout, cache: NaiveNormCache):
    """Loop version of groupnorm_backward, for the cache of groupnorm_forward_naive.

    Returns dx (like x), dgamma (C,) and dbeta (C,), the last two None without gamma. Loops
    over samples and groups, backpropagating `dxhat = dout * gamma` through the
    standardization graph one step at a time (standardize_backward_naive); then over
    channels:

        dgamma[c] = sum over samples and pixels of dout[:, c] * xhat[:, c]
        dbeta[c]  = sum over samples and pixels of dout[:, c]

    Raises ValueError when dout does not have x's shape.
    """
    xhat, inv_std, gamma, num_groups = cache
    dout = upstream_gradient(dout, "dout", xhat.shape)
    N, C = xhat.shape[:2]
    per_group = C // num_groups
    scale = np.ones(C) if gamma is None else gamma
    dx = np.zeros_like(xhat)
    for n in range(N):
        for g in range(num_groups):
            channels = slice(g * per_group, (g + 1) * per_group)
            dxhat = dout[n, channels] * scale[channels].reshape((-1,) + (1,) * (xhat.ndim - 2))
            dx[n, channels] = standardize_backward_naive(dxhat, xhat[n, channels], inv_std[n, g])
    if gamma is None:
        return dx, None, None
    dgamma = np.array([np.sum(dout[:, c] * xhat[:, c]) for c in range(C)])
    dbeta = np.array([np.sum(dout[:, c]) for c in range(C)])
    return dx, dgamma, dbeta


def instancenorm_forward(x, gamma, beta, eps=1e-5):
    """Instance norm: each sample's channel over its spatial axes. x (N, C, ...); gamma, beta (C,) or None."""
    x, gamma, beta, eps = _instancenorm_args(x, gamma, beta, eps)
    return groupnorm_forward(x, gamma, beta, x.shape[1], eps)


def instancenorm_backward(dout, cache: NormCache):
    """Returns dx (like x), dgamma (C,) and dbeta (C,), the last two None without gamma.

    Instance norm is group norm with one channel per group, so this is groupnorm_backward.
    Raises ValueError when dout does not have x's shape.
    """
    return groupnorm_backward(dout, cache)


def instancenorm_forward_naive(x, gamma, beta, eps=1e-5):
    """Loop version of instancenorm_forward: same signature and output; its cache is a NaiveNormCache.

    x (N, C, ...) with at least one spatial axis; gamma and beta (C,) or None. It is
    groupnorm_forward_naive with num_groups = C: loops over samples and channels, each
    channel standardized over its own pixels. Raises ValueError for x with fewer than 3
    dimensions or a single pixel per channel, gamma or beta not of C values, or an eps that
    is not a positive finite number.
    """
    x, gamma, beta, eps = _instancenorm_args(x, gamma, beta, eps)
    return groupnorm_forward_naive(x, gamma, beta, x.shape[1], eps)


def instancenorm_backward_naive(dout, cache: NaiveNormCache):
    """Loop version of instancenorm_backward, for the cache of instancenorm_forward_naive.

    Returns dx (like x), dgamma (C,) and dbeta (C,) (None without gamma), by
    groupnorm_backward_naive's loops over samples and channels, each channel its own group.
    """
    return groupnorm_backward_naive(dout, cache)
