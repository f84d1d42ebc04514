"""Batch norm's passes over rows of channels, compiled with Numba: one pass where NumPy takes two to four.

Imported only by ops/batchnorm.py, and only when Numba is installed and
the activation is large (tuning.COMPILED_ROWS_MIN_NUMBERS). rows are
(m, C), C-contiguous, channels contiguous: a channels-last activation's
block of rows. Each NumPy step of batchnorm.py streams the whole
activation through memory once (subtract, square, sum; multiply, multiply,
add; ...); here each pass reads its inputs once and does every step on
numbers already in registers:

    column_sums           sums[c] += rows[i, c]
    centred_square_sums   centred = rows - mean;  sums[c] += centred^2
    normalize             xhat *= inv_std (in place);  out = gain * xhat + shift
    backward_sums         s_dout[c] += dout;  s_dout_xhat[c] += dout * xhat
    combine               dx = a * dout + b * xhat + c

Sums accumulate in float64 (sums arrays are float64), row after row in
order, so a block's result does not depend on anything but its rows. The
inner loop runs over C with C known only at run time; LLVM's loop
vectorizer takes it. fastmath={"contract"}: multiply-adds fused, sums kept
in order. Kernels are serial and release the GIL: batchnorm.py's row
blocks go to numcnn's threads as before.
"""

from __future__ import annotations

import numba

CONTRACT = {"contract"}


@numba.njit(nogil=True, fastmath=CONTRACT, cache=True)
def column_sums(rows, sums):
    """Add the columns of rows (m, C) onto sums (C,), float64, row after row; returns nothing.

    sums[c] += rows[i, c]
    """
    for i in range(rows.shape[0]):
        for c in range(rows.shape[1]):
            sums[c] += rows[i, c]


@numba.njit(nogil=True, fastmath=CONTRACT, cache=True)
def centred_square_sums(rows, mean, centred, sums):
    """Centre rows (m, C) on mean (C,) into centred (m, C) and add the squares onto sums (C,).

    centred[i, c] = rows[i, c] - mean[c]
    sums[c] += centred[i, c]^2
    """
    for i in range(rows.shape[0]):
        for c in range(rows.shape[1]):
            v = rows[i, c] - mean[c]
            centred[i, c] = v
            sums[c] += v * v


@numba.njit(nogil=True, fastmath=CONTRACT, cache=True)
def normalize(xhat, inv_std, gain, shift, out):
    """Scale centred values by inv_std in place, and write the affine map of the result to out.

    xhat (m, C) holds x - mean on entry and the standardized values on return; inv_std,
    gain and shift are (C,):

        xhat[i, c] = xhat[i, c] * inv_std[c]
        out[i, c]  = gain[c] * xhat[i, c] + shift[c]
    """
    for i in range(xhat.shape[0]):
        for c in range(xhat.shape[1]):
            v = xhat[i, c] * inv_std[c]
            xhat[i, c] = v
            out[i, c] = v * gain[c] + shift[c]


@numba.njit(nogil=True, fastmath=CONTRACT, cache=True)
def backward_sums(dout, xhat, sum_dout, sum_dout_xhat):
    """The two per-channel sums batch norm's backward needs, added onto float64 arrays (C,).

    sum_dout[c]      += dout[i, c]
    sum_dout_xhat[c] += dout[i, c] * xhat[i, c]
    """
    for i in range(dout.shape[0]):
        for c in range(dout.shape[1]):
            d = dout[i, c]
            sum_dout[c] += d
            sum_dout_xhat[c] += d * xhat[i, c]


@numba.njit(nogil=True, fastmath=CONTRACT, cache=True)
def combine(dout, xhat, a, b, shift, dx):
    """Batch norm's input gradient from per-channel coefficients, written into dx (m, C).

    a, b and shift are (C,):

        dx[i, c] = a[c] * dout[i, c] + b[c] * xhat[i, c] + shift[c]
    """
    for i in range(dout.shape[0]):
        for c in range(dout.shape[1]):
            dx[i, c] = a[c] * dout[i, c] + b[c] * xhat[i, c] + shift[c]
