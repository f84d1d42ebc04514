"""Local response normalization across channels (AlexNet), as PyTorch defines it.

For x (N, C, ...) and a window of `size` neighbouring channels,

    s[c]   = (1 / size) * sum_{c' = c - size//2}^{c + (size-1)//2} x[c']^2   (zero outside 0..C-1)
    d[c]   = k + alpha * s[c]
    out[c] = x[c] * d[c]^(-beta)

Note PyTorch's alpha is divided by `size` (the mean of the squares, not the
sum, as in AlexNet's paper). Differentiating, channel c receives its own
term and one from every channel c'' whose window contains c:

    dx[c] = dout[c] * d[c]^(-beta)
            - (2 * alpha * beta / size) * x[c] * sum_{c'' : c in window(c'')} dout[c''] * x[c''] * d[c'']^(-beta-1)

and c is in window(c'') exactly when c - (size-1)//2 <= c'' <= c + size//2.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..checks import batch_array, finite_float, nonnegative_float, positive_float, positive_int, upstream_gradient


class LRNCache(NamedTuple):
    x: np.ndarray
    d: np.ndarray  # k + alpha * s, per element
    size: int
    alpha: float
    beta: float


def _arguments(x, size, alpha, beta, k):
    x = batch_array(x, "x")
    if x.ndim < 3:
        raise ValueError(f"x must have at least 3 dimensions (N, C, ...), got shape {x.shape}")
    size = positive_int(size, "size")
    # alpha >= 0 and k > 0 keep d = k + alpha * s positive, so d ** -beta is never NaN
    alpha, beta = nonnegative_float(alpha, "alpha"), finite_float(beta, "beta")
    k = positive_float(k, "k")
    return x, size, alpha, beta, k


def _channel_window_sum(values: np.ndarray, before: int, after: int) -> np.ndarray:
    """out[c] = sum of values[c - before .. c + after] along axis 1, zeros outside."""
    C = values.shape[1]
    out = np.zeros_like(values)
    for shift in range(-before, after + 1):
        lo, hi = max(0, -shift), min(C, C - shift)  # channels c with c + shift inside
        if lo < hi:
            out[:, lo:hi] += values[:, lo + shift : hi + shift]
    return out


def local_response_norm_forward(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """x (N, C, ...) -> out (like x)."""
    x, size, alpha, beta, k = _arguments(x, size, alpha, beta, k)
    s = _channel_window_sum(np.square(x), size // 2, (size - 1) // 2) / size
    d = k + alpha * s
    return x * d**-beta, LRNCache(x, d, size, alpha, beta)


def local_response_norm_backward(dout, cache: LRNCache):
    """Returns dx (like x)."""
    x, d, size, alpha, beta = cache
    dout = upstream_gradient(dout, "dout", x.shape)
    through_windows = _channel_window_sum(dout * x * d ** (-beta - 1), (size - 1) // 2, size // 2)
    return dout * d**-beta - (2 * alpha * beta / size) * x * through_windows


def local_response_norm_forward_naive(x, size, alpha=1e-4, beta=0.75, k=1.0):
    x, size, alpha, beta, k = _arguments(x, size, alpha, beta, k)
    C = x.shape[1]
    d = np.zeros_like(x)
    for c in range(C):
        window = range(max(0, c - size // 2), min(C, c + (size - 1) // 2 + 1))
        d[:, c] = k + alpha * sum(x[:, j] ** 2 for j in window) / size
    return x * d**-beta, LRNCache(x, d, size, alpha, beta)


def local_response_norm_backward_naive(dout, cache: LRNCache):
    x, d, size, alpha, beta = cache
    dout = upstream_gradient(dout, "dout", x.shape)
    C = x.shape[1]
    dx = np.zeros_like(x)
    for c in range(C):
        dx[:, c] = dout[:, c] * d[:, c] ** -beta
        # every channel j whose window holds c: j - size//2 <= c <= j + (size-1)//2
        for j in range(max(0, c - (size - 1) // 2), min(C, c + size // 2 + 1)):
            dd_dxc = alpha * 2 * x[:, c] / size
            dx[:, c] += dout[:, j] * x[:, j] * -beta * d[:, j] ** (-beta - 1) * dd_dxc
    return dx
