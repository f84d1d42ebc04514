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
    """What local_response_norm_forward (and its loop version) keeps for the backward.

    Attributes:
        x: The input (N, C, ...).
        d: `k + alpha * s` per element, like x, with s the mean of the squares over each
            channel's window.
        size: The number of neighbouring channels in a window.
        alpha: The scale of the mean of squares.
        beta: The exponent: `out = x * d ** -beta`.
    """

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
    """Loop version of local_response_norm_forward: same signature, same output and LRNCache.

    x (N, C, ...) -> out (like x). Loops over channels c (vectorized over samples and
    pixels), summing the squares of the window's channels one by one:

        d[c]   = k + alpha * (sum of x[c']^2 for c' from c - size//2 to c + (size-1)//2) / size
        out[c] = x[c] * d[c] ** (-beta)

    with channels outside 0 .. C-1 counting as zero. Raises ValueError for x with fewer
    than 3 dimensions, a size below 1, an alpha that is negative or not finite, a beta that
    is not finite, or a k that is not a positive finite number.
    """
    x, size, alpha, beta, k = _arguments(x, size, alpha, beta, k)
    C = x.shape[1]
    d = np.zeros_like(x)
    for c in range(C):
        window = range(max(0, c - size // 2), min(C, c + (size - 1) // 2 + 1))
        d[:, c] = k + alpha * sum(x[:, j] ** 2 for j in window) / size
    return x * d**-beta, LRNCache(x, d, size, alpha, beta)


def local_response_norm_backward_naive(dout, cache: LRNCache):
    """Loop version of local_response_norm_backward: same signature and cache, same dx (like x).

    Loops over channels c, then over the channels j whose window holds c
    (j - size//2 <= c <= j + (size-1)//2), adding each one's term:

        dx[c] = dout[c] * d[c] ** (-beta)
                + sum over j of dout[j] * x[j] * (-beta) * d[j] ** (-beta - 1) * 2 * alpha * x[c] / size

    Raises ValueError when dout does not have x's shape.
    """
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
