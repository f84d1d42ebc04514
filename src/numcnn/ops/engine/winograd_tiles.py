"""Winograd tiles F(2x2, 3x3) and F(4x4, 3x3): their matrices, transforms and matrix twins.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR
2016). Each m x m block of outputs of a 3x3 correlation is computed from
the a x a input tile under it, a = m + 2 (one channel, one filter):

    y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise, all a x a)

numcnn has two sizes. F(2x2, 3x3), a = 4:

    B^T = [[1, 0, -1, 0],    G = [[1,    0,    0  ],    A^T = [[1, 1,  1,  0],
           [0, 1,  1, 0],         [1/2,  1/2,  1/2],           [0, 1, -1, -1]]
           [0, -1, 1, 0],         [1/2, -1/2,  1/2],
           [0, 1,  0, -1]]        [0,    0,    1  ]]

F(4x4, 3x3), a = 6, from the points 0, 1, -1, 2, -2 and infinity:

    B^T = [[4,  0, -5,  0, 1, 0],   G = [[ 1/4,     0,    0],   A^T = [[1, 1,  1, 1,  1, 0],
           [0, -4, -4,  1, 1, 0],        [-1/6,  -1/6, -1/6],          [0, 1, -1, 2, -2, 0],
           [0,  4, -4, -1, 1, 0],        [-1/6,   1/6, -1/6],          [0, 1,  1, 4,  4, 0],
           [0, -2, -1,  2, 1, 0],        [ 1/24, 1/12,  1/6],          [0, 1, -1, 8, -8, 1]]
           [0,  2, -1, -2, 1, 0],        [ 1/24, -1/12, 1/6],
           [0,  4,  0, -5, 0, 1]]        [ 0,       0,    1]]

Each transform is written twice: unrolled into a few NumPy passes over
whole image rows (what runs), and as the matrix products above, one tile
at a time (Tiling.*_by_matrix, the twin the tests compare it with).
Layouts: images channels-last, (n, H, W, C); V and M are (a*a, n, th, tw, C).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from . import scratch


class Tiling(NamedTuple):
    """F(m x m, 3x3): its matrices (float64, for the weights) and its transforms."""

    m: int
    B_T: np.ndarray  # (a, a)
    G: np.ndarray  # (a, 3)
    A_T: np.ndarray  # (m, a)
    input_transform: Callable  # xp (n, >= m*th + 2, >= m*tw + 2, C) -> V (a*a, n, th, tw, C)
    output_transform: Callable  # M (a*a, n, th, tw, F) -> out (n, m*th, m*tw, F)
    output_grad_transform: Callable  # dy (n, m*th, m*tw, F) -> dM (a*a, n, th, tw, F)

    @property
    def alpha(self) -> int:
        return self.m + 2

    # The matrix form, one tile at a time: the twin the unrolled transforms
    # below are tested against (as the _naive ops are for the fast ones).

    def input_transform_by_matrix(self, xp: np.ndarray, tiles: tuple[int, int]) -> np.ndarray:
        """V (a*a, n, th, tw, C): B^T d B for every a x a tile d of xp (n, >= m*th + 2, >= m*tw + 2, C)."""
        (th, tw), a, m = tiles, self.alpha, self.m
        n, C = xp.shape[0], xp.shape[3]
        V = np.empty((a, a, n, th, tw, C), xp.dtype)
        for i in range(th):
            for j in range(tw):
                d = xp[:, m * i : m * i + a, m * j : m * j + a, :]  # (n, a, a, C)
                V[:, :, :, i, j] = np.einsum("xu,nuvc,yv->xync", self.B_T, d, self.B_T)
        return V.reshape(a * a, n, th, tw, C)

    def output_transform_by_matrix(self, M: np.ndarray) -> np.ndarray:
        """out (n, m*th, m*tw, F): A^T t A for every a x a tile t of M (a*a, n, th, tw, F)."""
        a, m = self.alpha, self.m
        _, n, th, tw, F = M.shape
        tiles = M.reshape(a, a, n, th, tw, F)
        out = np.empty((n, m * th, m * tw, F), M.dtype)
        for i in range(th):
            for j in range(tw):
                out[:, m * i : m * i + m, m * j : m * j + m] = np.einsum(
                    "px,xynf,qy->npqf", self.A_T, tiles[:, :, :, i, j], self.A_T
                )
        return out

    def output_grad_transform_by_matrix(self, dy: np.ndarray) -> np.ndarray:
        """dM (a*a, n, th, tw, F): A b A^T for every m x m block b of dy (n, m*th, m*tw, F)."""
        a, m = self.alpha, self.m
        n, F = dy.shape[0], dy.shape[3]
        th, tw = dy.shape[1] // m, dy.shape[2] // m
        dM = np.empty((a, a, n, th, tw, F), dy.dtype)
        for i in range(th):
            for j in range(tw):
                block = dy[:, m * i : m * i + m, m * j : m * j + m]  # (n, m, m, F)
                dM[:, :, :, i, j] = np.einsum("px,npqf,qy->xynf", self.A_T, block, self.A_T)
        return dM.reshape(a * a, n, th, tw, F)


def weight_transform(w: np.ndarray, tiling: Tiling) -> np.ndarray:
    """w (F, C, 3, 3) -> U (a*a, C, F), U[a*xi + nu] = (G g G^T)[xi, nu] for every (c, f)."""
    F, C = w.shape[:2]
    g = tiling.G.astype(w.dtype)
    U = np.einsum("xu,fcuv,yv->xycf", g, w, g, optimize=True)
    return np.ascontiguousarray(U.reshape(tiling.alpha**2, C, F))


def weight_grad_from(dU: np.ndarray, w_shape, tiling: Tiling) -> np.ndarray:
    """dU (a*a, C, F) -> dw (F, C, 3, 3) = G^T dU G for every (c, f)."""
    F, C = w_shape[:2]
    g, a = tiling.G.astype(dU.dtype), tiling.alpha
    return np.ascontiguousarray(np.einsum("xu,xycf,yv->fcuv", g, dU.reshape(a, a, C, F), g, optimize=True))


# ---------------------------------------------------------------------------
# F(2x2, 3x3): 4x4 tiles overlapping by 2
# ---------------------------------------------------------------------------


def input_transform_2x2(xp: np.ndarray, tiles: tuple[int, int], V: np.ndarray) -> None:
    """V[4*xi + nu] = (B^T d B)[xi, nu] for every 4x4 tile d of xp.

    xp: (n, >= 2*th + 2, >= 2*tw + 2, C) padded images; V: (16, n, th, tw, C).
    Tile (i, j) starts at row 2i, column 2j. Rows first (B^T d), then columns.
    """
    th, tw = tiles
    n, C = xp.shape[0], xp.shape[3]
    d = [xp[:, r : r + 2 * th : 2, : 2 * tw + 2] for r in range(4)]  # row r of every tile
    rows = scratch.shared_scratch("winograd rows", (4, n, th, 2 * tw + 2, C), xp.dtype)
    np.subtract(d[0], d[2], out=rows[0])
    np.add(d[1], d[2], out=rows[1])
    np.subtract(d[2], d[1], out=rows[2])
    np.subtract(d[1], d[3], out=rows[3])
    for xi in range(4):
        e = [rows[xi][:, :, c : c + 2 * tw : 2] for c in range(4)]  # column c of every tile
        np.subtract(e[0], e[2], out=V[4 * xi + 0])
        np.add(e[1], e[2], out=V[4 * xi + 1])
        np.subtract(e[2], e[1], out=V[4 * xi + 2])
        np.subtract(e[1], e[3], out=V[4 * xi + 3])


def output_transform_2x2(M: np.ndarray, out: np.ndarray) -> None:
    """out's 2x2 blocks = A^T m A for every tile m of M.

    M: (16, n, th, tw, F); out: (n, 2*th, 2*tw, F). Rows (A^T m) first, then columns.
    """
    s = scratch.shared_scratch("winograd sums", (2, 4) + M.shape[1:], M.dtype)
    for nu in range(4):
        np.add(M[nu], M[4 + nu], out=s[0, nu])
        np.add(s[0, nu], M[8 + nu], out=s[0, nu])
        np.subtract(M[4 + nu], M[8 + nu], out=s[1, nu])
        np.subtract(s[1, nu], M[12 + nu], out=s[1, nu])
    for a in range(2):
        left, right = out[:, a::2, 0::2], out[:, a::2, 1::2]
        np.add(s[a, 0], s[a, 1], out=left)
        np.add(left, s[a, 2], out=left)
        np.subtract(s[a, 1], s[a, 2], out=right)
        np.subtract(right, s[a, 3], out=right)


def output_grad_transform_2x2(dy: np.ndarray, dM: np.ndarray) -> None:
    """dM[4*xi + nu] = (A dy A^T)[xi, nu] for every 2x2 block of dy.

    dy: (n, 2*th, 2*tw, F); dM: (16, n, th, tw, F). A = [[1, 0], [1, 1], [1, -1], [0, -1]].
    """
    n, H2, W2, F = dy.shape
    rows = scratch.shared_scratch("winograd rows", (4, n, H2 // 2, W2, F), dy.dtype)
    top, bottom = dy[:, 0::2], dy[:, 1::2]
    rows[0] = top
    np.add(top, bottom, out=rows[1])
    np.subtract(top, bottom, out=rows[2])
    np.negative(bottom, out=rows[3])
    for xi in range(4):
        left, right = rows[xi][:, :, 0::2], rows[xi][:, :, 1::2]
        dM[4 * xi + 0] = left
        np.add(left, right, out=dM[4 * xi + 1])
        np.subtract(left, right, out=dM[4 * xi + 2])
        np.negative(right, out=dM[4 * xi + 3])


# ---------------------------------------------------------------------------
# F(4x4, 3x3): 6x6 tiles overlapping by 2. Each transform is one matrix
# applied to rows (a pass per output row of the matrix over whole image
# rows), then to columns; the shared sums below halve the passes.
# ---------------------------------------------------------------------------


def _apply_B_T(d, out, tmp) -> None:
    """out[i] = sum_k B^T[i, k] d[k], i < 6, for six arrays d of one shape; tmp: two scratch arrays."""
    t1, t2 = tmp
    np.multiply(d[2], -4, out=t1)
    t1 += d[4]  # d4 - 4 d2
    np.multiply(d[1], -4, out=t2)
    t2 += d[3]  # d3 - 4 d1
    np.add(t1, t2, out=out[1])
    np.subtract(t1, t2, out=out[2])
    np.subtract(d[4], d[2], out=t1)  # d4 - d2
    np.subtract(d[3], d[1], out=t2)
    t2 *= 2  # 2 (d3 - d1)
    np.add(t1, t2, out=out[3])
    np.subtract(t1, t2, out=out[4])
    np.subtract(d[0], d[2], out=out[0])
    out[0] *= 4
    out[0] += t1  # 4 d0 - 5 d2 + d4
    np.subtract(d[1], d[3], out=out[5])
    out[5] *= 4
    np.subtract(d[5], d[3], out=t1)
    out[5] += t1  # 4 d1 - 5 d3 + d5


def _apply_A_T(m, out, tmp) -> None:
    """out[i] = sum_k A^T[i, k] m[k], i < 4, for six arrays m of one shape; tmp: two scratch arrays."""
    c, d = tmp
    np.add(m[1], m[2], out=out[2])  # a = m1 + m2
    np.add(m[3], m[4], out=c)  # c = m3 + m4
    np.add(out[2], c, out=out[0])
    out[0] += m[0]  # m0 + a + c
    c *= 4
    out[2] += c  # a + 4c
    np.subtract(m[1], m[2], out=out[3])  # b = m1 - m2
    np.subtract(m[3], m[4], out=d)  # d = m3 - m4
    np.multiply(d, 2, out=c)
    np.add(out[3], c, out=out[1])  # b + 2d
    d *= 8
    out[3] += d
    out[3] += m[5]  # b + 8d + m5


def _apply_A(r, out, tmp) -> None:
    """out[i] = sum_k A[i, k] r[k], i < 6 (A = (A^T)^T), for four arrays r of one shape."""
    t1, t2 = tmp
    out[0][...] = r[0]
    out[5][...] = r[3]
    np.add(r[0], r[2], out=t1)
    np.add(r[1], r[3], out=t2)
    np.add(t1, t2, out=out[1])  # r0 + r1 + r2 + r3
    np.subtract(t1, t2, out=out[2])  # r0 - r1 + r2 - r3
    np.multiply(r[2], 4, out=t1)
    t1 += r[0]  # r0 + 4 r2
    np.multiply(r[3], 4, out=t2)
    t2 += r[1]
    t2 *= 2  # 2 r1 + 8 r3
    np.add(t1, t2, out=out[3])
    np.subtract(t1, t2, out=out[4])


def input_transform_4x4(xp: np.ndarray, tiles: tuple[int, int], V: np.ndarray) -> None:
    """V[6*xi + nu] = (B^T d B)[xi, nu] for every 6x6 tile d of xp.

    xp: (n, >= 4*th + 2, >= 4*tw + 2, C) padded images; V: (36, n, th, tw, C).
    Tile (i, j) starts at row 4i, column 4j. Rows first (B^T d), then columns.
    """
    th, tw = tiles
    n, C = xp.shape[0], xp.shape[3]
    width = 4 * tw + 2
    d = [xp[:, r : r + 4 * th : 4, :width] for r in range(6)]  # row r of every tile
    rows = scratch.shared_scratch("winograd rows", (6, n, th, width, C), xp.dtype)
    _apply_B_T(d, rows, scratch.shared_scratch("winograd row sums", (2, n, th, width, C), xp.dtype))
    tmp = scratch.shared_scratch("winograd column sums", (2, n, th, tw, C), xp.dtype)
    for xi in range(6):
        e = [rows[xi][:, :, k : k + 4 * tw : 4] for k in range(6)]  # column k of every tile
        _apply_B_T(e, V[6 * xi : 6 * xi + 6], tmp)


def output_transform_4x4(M: np.ndarray, out: np.ndarray) -> None:
    """out's 4x4 blocks = A^T m A for every tile m of M.

    M: (36, n, th, tw, F); out: (n, 4*th, 4*tw, F). Rows (A^T m) first, then columns.
    """
    by_row = M.reshape((6, 6) + M.shape[1:])  # [xi][nu]
    s = scratch.shared_scratch("winograd sums", (4,) + by_row.shape[1:], M.dtype)
    _apply_A_T(by_row, s, scratch.shared_scratch("winograd row sums", (2,) + by_row.shape[1:], M.dtype))
    tmp = scratch.shared_scratch("winograd column sums", (2,) + M.shape[1:], M.dtype)
    for a in range(4):
        _apply_A_T(s[a], [out[:, a::4, b::4] for b in range(4)], tmp)


def output_grad_transform_4x4(dy: np.ndarray, dM: np.ndarray) -> None:
    """dM[6*xi + nu] = (A dy A^T)[xi, nu] for every 4x4 block of dy.

    dy: (n, 4*th, 4*tw, F); dM: (36, n, th, tw, F).
    """
    n, H4, W4, F = dy.shape
    rows = scratch.shared_scratch("winograd rows", (6, n, H4 // 4, W4, F), dy.dtype)
    _apply_A(
        [dy[:, a::4] for a in range(4)],
        rows,
        scratch.shared_scratch("winograd row sums", (2, n, H4 // 4, W4, F), dy.dtype),
    )
    tmp = scratch.shared_scratch("winograd column sums", (2, n, H4 // 4, W4 // 4, F), dy.dtype)
    for xi in range(6):
        _apply_A([rows[xi][:, :, b::4] for b in range(4)], dM[6 * xi : 6 * xi + 6], tmp)


F_2X2 = Tiling(
    m=2,
    B_T=np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], float),
    G=np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]]),
    A_T=np.array([[1, 1, 1, 0], [0, 1, -1, -1]], float),
    input_transform=input_transform_2x2,
    output_transform=output_transform_2x2,
    output_grad_transform=output_grad_transform_2x2,
)
F_4X4 = Tiling(
    m=4,
    B_T=np.array(
        [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ],
        float,
    ),
    G=np.array(
        [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ]
    ),
    A_T=np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], float),
    input_transform=input_transform_4x4,
    output_transform=output_transform_4x4,
    output_grad_transform=output_grad_transform_4x4,
)
TILINGS = {2: F_2X2, 4: F_4X4}
