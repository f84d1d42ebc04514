"""The Numba kernels of direct.py, one factory per sum, compiled for its constants and cached on disk.

Imported only by direct.py, and only when Numba is installed. Arrays are
channels-last and C-contiguous: x (N, H, W, C), weights (KH, KW, C, F),
dout and out (N, OH, OW, F). Geometry arguments are those of
geometry.WindowGeometry: strides sh, sw, dilations dh, dw, padding top,
bottom, left, right. Each image is zero-padded into a per-image buffer, so
the inner loops run without bounds tests.

Each factory closes over compile-time constants (F, and a block size), so
that LLVM unrolls the channel loop and keeps the block's accumulators in
registers: `register_block` makes them a fixed-size stack array (Numba's
own arrays live on the heap, where LLVM cannot promote them).
Kernels run serially and release the GIL (nogil): direct.py splits the
images over numcnn's threads. fastmath={"contract"} lets LLVM fuse each multiply-add into one FMA (one
rounding instead of two); sums keep their order.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import RequireLiteralValue
from numba.extending import intrinsic

CONTRACT = {"contract"}


@intrinsic
def register_block(typingctx, size, dtype):
    """A pointer to `size` (a compile-time constant) uninitialised numbers of `dtype`, on the stack."""
    if not isinstance(size, types.IntegerLiteral):
        raise RequireLiteralValue(size)
    count = size.literal_value

    def codegen(context, builder, signature, args):
        element = context.get_value_type(dtype.dtype)
        return cgutils.alloca_once(builder, element, size=ir.Constant(ir.IntType(64), count))

    return types.CPointer(dtype.dtype)(size, dtype), codegen


def forward(F: int, FB: int, JB: int):
    """out[n, i, j, :] = sum over (kh, kw, c) of xp[n, i*sh + kh*dh, j*sw + kw*dw, c] * w[kh, kw, c, :].

    Blocks of JB pixels of one output row x FB of the F channels (FB divides
    F) stay in registers over the whole sum; a row's last block starts at
    OW - JB (recomputing a few pixels, with the same arithmetic), so every
    block is a full one.
    """
    size = FB * JB

    @numba.njit(nogil=True, fastmath=CONTRACT, cache=True)
    def kernel(x, w, out, sh, sw, dh, dw, top, bottom, left, right):
        N, H, W, C = x.shape
        KH, KW = w.shape[0], w.shape[1]
        OH, OW = out.shape[1], out.shape[2]
        for n in range(N):
            xp = np.zeros((H + top + bottom, W + left + right, C), x.dtype)
            xp[top : top + H, left : left + W, :] = x[n]
            acc = numba.carray(register_block(size, x.dtype), (JB, FB))
            blocks = (OW + JB - 1) // JB if OW >= JB else 0
            for i in range(OH):
                for block in range(blocks):
                    j0 = min(block * JB, OW - JB)  # the last block overlaps its neighbour: same values again
                    for f0 in range(0, F, FB):
                        for jj in range(JB):
                            for f in range(FB):
                                acc[jj, f] = 0
                        for kh in range(KH):
                            row = i * sh + kh * dh
                            for kw in range(KW):
                                for c in range(C):
                                    for jj in range(JB):
                                        v = xp[row, (j0 + jj) * sw + kw * dw, c]
                                        for f in range(FB):
                                            acc[jj, f] += v * w[kh, kw, c, f0 + f]
                        for jj in range(JB):
                            for f in range(FB):
                                out[n, i, j0 + jj, f0 + f] = acc[jj, f]
                for j in range(OW if blocks == 0 else 0):  # rows narrower than a block: pixel by pixel
                    for f0 in range(0, F, FB):
                        for f in range(FB):
                            acc[0, f] = 0
                        for kh in range(KH):
                            for kw in range(KW):
                                for c in range(C):
                                    v = xp[i * sh + kh * dh, j * sw + kw * dw, c]
                                    for f in range(FB):
                                        acc[0, f] += v * w[kh, kw, c, f0 + f]
                        for f in range(FB):
                            out[n, i, j, f0 + f] = acc[0, f]

    return kernel


def forward_lanes(OC: int, L: int, JB: int):
    """out[n, i, j, o] = sum over (kh, kw, c) of xp[n, i*sh + kh*dh, j*sw + kw*dw, c] * w[kh, kw, o, c].

    The forward for few output channels OC and many input channels C (C a
    multiple of L): an RGB stem's input gradient, 3 channels summed over
    32-64. Vectorizing over OC would fill 3 of 8 lanes, so the sum over c
    runs in L lanes instead (lane l sums c = l, L + l, 2L + l, ...), each
    lane its own accumulator, and the L lanes are added at the end: JB
    pixels x OC channels x L lanes stay in registers. w is (KH, KW, OC, C).
    """
    size = JB * OC * L

    @numba.njit(nogil=True, fastmath=CONTRACT, cache=True)
    def kernel(x, w, out, sh, sw, dh, dw, top, bottom, left, right):
        N, H, W, C = x.shape
        KH, KW = w.shape[0], w.shape[1]
        OH, OW = out.shape[1], out.shape[2]
        for n in range(N):
            xp = np.zeros((H + top + bottom, W + left + right, C), x.dtype)
            xp[top : top + H, left : left + W, :] = x[n]
            acc = numba.carray(register_block(size, x.dtype), (JB, OC, L))
            width = JB if OW >= JB else 1  # rows narrower than a block: pixel by pixel (all JB repeat it)
            for i in range(OH):
                for block in range((OW + width - 1) // width):
                    j0 = min(block * width, OW - width)  # the last block overlaps its neighbour: same values
                    for jj in range(JB):
                        for o in range(OC):
                            for lane in range(L):
                                acc[jj, o, lane] = 0
                    for kh in range(KH):
                        row = i * sh + kh * dh
                        for kw in range(KW):
                            for c0 in range(0, C, L):
                                for jj in range(JB):  # a constant count, so the block stays in registers
                                    col = (j0 + min(jj, width - 1)) * sw + kw * dw
                                    for o in range(OC):
                                        for lane in range(L):
                                            acc[jj, o, lane] += xp[row, col, c0 + lane] * w[kh, kw, o, c0 + lane]
                    for jj in range(width):
                        for o in range(OC):
                            total = acc[jj, o, 0]
                            for lane in range(1, L):
                                total += acc[jj, o, lane]
                            out[n, i, j0 + jj, o] = total

    return kernel


def input_grad(C: int):
    """dx[n] = interior of dxp, dxp[i*sh + kh*dh, j*sw + kw*dw, :] += sum_f dout[n, i, j, f] * w[kh, kw, f, :].

    w is (KH, KW, F, C); each (pixel, tap) sums its C channels in registers
    over f, then adds them onto the padded per-image gradient.
    """

    @numba.njit(nogil=True, fastmath=CONTRACT, cache=True)
    def kernel(dout, w, dx, sh, sw, dh, dw, top, bottom, left, right):
        N, OH, OW, F = dout.shape
        KH, KW = w.shape[0], w.shape[1]
        H, W = dx.shape[1], dx.shape[2]
        for n in range(N):
            dxp = np.zeros((H + top + bottom, W + left + right, C), dout.dtype)
            acc = numba.carray(register_block(C, dout.dtype), (C,))
            for i in range(OH):
                for j in range(OW):
                    for kh in range(KH):
                        for kw in range(KW):
                            for c in range(C):
                                acc[c] = 0
                            for f in range(F):
                                d = dout[n, i, j, f]
                                for c in range(C):
                                    acc[c] += d * w[kh, kw, f, c]
                            row, col = i * sh + kh * dh, j * sw + kw * dw
                            for c in range(C):
                                dxp[row, col, c] += acc[c]
            dx[n] = dxp[top : top + H, left : left + W, :]

    return kernel


def weight_grad(F: int, CB: int):
    """parts[t, kh, kw, c, :] = sum over images bounds[t] <= n < bounds[t+1] and pixels of xp * dout.

    For each output row, tap and block of CB input channels (CB divides C),
    CB x F accumulators stay in registers over the row's pixels; each part
    t sums its images and rows in order.
    """
    size = F * CB

    @numba.njit(nogil=True, fastmath=CONTRACT, cache=True)
    def kernel(x, dout, parts, bounds, sh, sw, dh, dw, top, bottom, left, right):
        N, H, W, C = x.shape
        OH, OW = dout.shape[1], dout.shape[2]
        KH, KW = parts.shape[1], parts.shape[2]
        for t in range(len(bounds) - 1):
            xp = np.zeros((H + top + bottom, W + left + right, C), x.dtype)
            acc = numba.carray(register_block(size, x.dtype), (CB, F))
            for n in range(bounds[t], bounds[t + 1]):
                xp[top : top + H, left : left + W, :] = x[n]
                for i in range(OH):  # one output row at a time: its dout and input rows stay in L1
                    for kh in range(KH):
                        row = i * sh + kh * dh
                        for kw in range(KW):
                            for c0 in range(0, C - CB + 1, CB):
                                for cb in range(CB):
                                    for f in range(F):
                                        acc[cb, f] = parts[t, kh, kw, c0 + cb, f]
                                for j in range(OW):
                                    col = j * sw + kw * dw
                                    for cb in range(CB):
                                        v = xp[row, col, c0 + cb]
                                        for f in range(F):
                                            acc[cb, f] += v * dout[n, i, j, f]
                                for cb in range(CB):
                                    for f in range(F):
                                        parts[t, kh, kw, c0 + cb, f] = acc[cb, f]

    return kernel
