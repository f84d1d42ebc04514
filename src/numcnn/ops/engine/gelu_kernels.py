"""GELU's forward and backward compiled with Numba: one pass over memory each, libm's erf.

Imported only by ops/activation.py, and only when Numba is installed and the
activation is large (tuning.COMPILED_ROWS_MIN_NUMBERS). NumPy's GELU
(ops/special.py's normal_cdf) evaluates three rational functions over the
whole array and selects between them: tens of passes over memory, where
these take one. Arrays are 1-d views of memory in order (any layout).

    forward    cdf = Phi(x);  out = x * cdf
    backward   dx  = dout * (cdf + x * phi(x))      (cdf kept from the forward: erf costs most)

Phi(x) = (1 + erf(x / sqrt 2)) / 2, phi(x) = exp(-x^2 / 2) / sqrt(2 pi), in
the arrays' precision (float32 calls libm's erff). fastmath lets LLVM
vectorize the backward's exp (4 ns a float32 number here, against 21
without; the forward's erf stays scalar, 12 ns); it assumes finite numbers,
which a loss that is not finite stops training long before. Serial,
releasing the GIL.
"""

from __future__ import annotations

import math

import numba

SQRT_HALF = math.sqrt(0.5)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@numba.njit(nogil=True, fastmath=True, cache=True)
def forward(x, out, cdf):
    """GELU's forward in one pass: fills cdf with Phi(x) and out with x times it; returns nothing.

    x, out and cdf are 1-d arrays of one float dtype (views of memory in order):

        cdf[i] = 0.5 + 0.5 * erf(x[i] / sqrt(2))
        out[i] = x[i] * cdf[i]
    """
    half, sqrt_half = x.dtype.type(0.5), x.dtype.type(SQRT_HALF)
    for i in range(x.shape[0]):
        v = x[i]
        p = half + half * math.erf(v * sqrt_half)
        cdf[i] = p
        out[i] = v * p


@numba.njit(nogil=True, fastmath=True, cache=True)
def backward(x, cdf, dout, dx):
    """GELU's backward in one pass: fills dx with dout times GELU's derivative; returns nothing.

    x, cdf (Phi(x), from the forward), dout and dx are 1-d arrays of one float dtype:

        dx[i] = dout[i] * (cdf[i] + x[i] * exp(-x[i]^2 / 2) / sqrt(2 pi))
    """
    half, inv_sqrt_2pi = x.dtype.type(0.5), x.dtype.type(INV_SQRT_2PI)
    for i in range(x.shape[0]):
        v = x[i]
        pdf = math.exp(-half * v * v) * inv_sqrt_2pi
        dx[i] = dout[i] * (cdf[i] + v * pdf)
