"""Winograd's minimal filtering F(2x2, 3x3): 3x3 stride-1 convolutions in 2.25x fewer multiplications.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR
2016). Each 2x2 block of outputs of a 3x3 correlation is computed from the
4x4 input tile under it (one channel, one filter):

    y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise, all 4x4)

    B^T = [[1, 0, -1, 0],    G = [[1,    0,    0  ],    A^T = [[1, 1,  1,  0],
           [0, 1,  1, 0],         [1/2,  1/2,  1/2],           [0, 1, -1, -1]]
           [0, -1, 1, 0],         [1/2, -1/2,  1/2],
           [0, 1,  0, -1]]        [0,    0,    1  ]]

Summed over channels, the 16 elementwise products become 16 matrix
products, one per tile position (xi, nu), over all T tiles at once:

    M[xi,nu] (T, F) = V[xi,nu] (T, C) @ U[xi,nu] (C, F)
    V = B^T d B per tile and channel,  U = G g G^T per channel and filter

16*T*C*F multiply-adds where im2col's GEMM does 36*T*C*F (4 outputs x 9
taps). The transforms are additions only, done a few images at a time so
they stay in cache, split over the cores, while the 16 GEMMs use BLAS's own
threads.

Backward: the input gradient of a 3x3 stride-1 convolution is itself one
(see conv.conv_input_grad), so it comes through forward(). The weight
gradient follows from y being linear in U:

    dU[xi,nu] (C, F) = V[xi,nu]^T @ dM[xi,nu],   dM = A dy A^T per 2x2 tile of dout,   dg = G^T dU G

Layouts: images channels-last, (n, H, W, C). Outputs with an odd size are
computed on one more row or column of tiles (over zero padding) and
cropped.
"""

from __future__ import annotations

import numpy as np

from . import windows as win
from . import workspace
from .parallel import map_chunks, num_threads

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])

# Images per chunk: about this much transformed data (V or M), measured to
# keep the transforms in cache while the GEMMs stay large.
CHUNK_BYTES = 8 << 20


# Measured on 2 cores (BENCHMARKS.md): with 128 channels in and out, the
# 2.25x fewer multiplications outweigh the transforms' memory traffic (the
# GEMMs' share of the time grows with the channels); at 64 it is a draw.
MIN_CHANNELS = 128
# Odd output sizes compute whole tiles past the edge: 3x3 outputs take 4x4,
# 78% more work, which costs more than Winograd saves; 7x7 (31% more) still pays.
MAX_TILE_WASTE = 1.35
ENABLED = True  # False: every convolution goes through im2col (to compare the two)


def applies(geom: win.WindowGeometry, groups: int, channels: int, filters: int) -> bool:
    """Whether a channels-last convolution goes through Winograd: 3x3, stride 1, no dilation,
    one group, MIN_CHANNELS in and out, and an output that tiles without much waste."""
    if not (ENABLED and geom.kernel == (3, 3) and geom.stride == (1, 1) and geom.dilation == (1, 1)
            and groups == 1 and min(channels, filters) >= MIN_CHANNELS):
        return False
    (th, tw), (OH, OW) = _tiles(geom), geom.out_hw
    return 4 * th * tw <= MAX_TILE_WASTE * OH * OW


def weight_transform(w: np.ndarray) -> np.ndarray:
    """w (F, C, 3, 3) -> U (16, C, F), U[4*xi + nu] = (G g G^T)[xi, nu] for every (c, f)."""
    F, C = w.shape[:2]
    g = G.astype(w.dtype)
    U = np.einsum("xu,fcuv,yv->xycf", g, w, g, optimize=True)
    return np.ascontiguousarray(U.reshape(16, C, F))


def weight_grad_from(dU: np.ndarray, w_shape) -> np.ndarray:
    """dU (16, C, F) -> dw (F, C, 3, 3) = G^T dU G for every (c, f)."""
    F, C = w_shape[:2]
    g = G.astype(dU.dtype)
    return np.ascontiguousarray(np.einsum("xu,xycf,yv->fcuv", g, dU.reshape(4, 4, C, F), g, optimize=True))


def input_transform(xp: np.ndarray, tiles: tuple[int, int], V: np.ndarray) -> None:
    """V[4*xi + nu] = (B^T d B)[xi, nu] for every 4x4 tile d of xp.

    xp: (n, >= 2*th + 2, >= 2*tw + 2, C) padded images; V: (16, n, th, tw, C).
    Tile (i, j) starts at row 2i, column 2j. Rows first (B^T d), then columns.
    """
    th, tw = tiles
    n, C = xp.shape[0], xp.shape[3]
    d = [xp[:, r:r + 2 * th:2, :2 * tw + 2] for r in range(4)]  # row r of every tile
    rows = workspace.scratch("winograd rows", (4, n, th, 2 * tw + 2, C), xp.dtype)
    np.subtract(d[0], d[2], out=rows[0])
    np.add(d[1], d[2], out=rows[1])
    np.subtract(d[2], d[1], out=rows[2])
    np.subtract(d[1], d[3], out=rows[3])
    for xi in range(4):
        e = [rows[xi][:, :, c:c + 2 * tw:2] for c in range(4)]  # column c of every tile
        np.subtract(e[0], e[2], out=V[4 * xi + 0])
        np.add(e[1], e[2], out=V[4 * xi + 1])
        np.subtract(e[2], e[1], out=V[4 * xi + 2])
        np.subtract(e[1], e[3], out=V[4 * xi + 3])


def output_transform(M: np.ndarray, out: np.ndarray) -> None:
    """out's 2x2 blocks = A^T m A for every tile m of M.

    M: (16, n, th, tw, F); out: (n, 2*th, 2*tw, F). Rows (A^T m) first, then columns.
    """
    s = workspace.scratch("winograd sums", (2, 4) + M.shape[1:], M.dtype)
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


def output_grad_transform(dy: np.ndarray, dM: np.ndarray) -> None:
    """dM[4*xi + nu] = (A dy A^T)[xi, nu] for every 2x2 block of dy.

    dy: (n, 2*th, 2*tw, F); dM: (16, n, th, tw, F). A = [[1, 0], [1, 1], [1, -1], [0, -1]].
    """
    n, H2, W2, F = dy.shape
    rows = workspace.scratch("winograd rows", (4, n, H2 // 2, W2, F), dy.dtype)
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


def _tiles(geom: win.WindowGeometry) -> tuple[int, int]:
    OH, OW = geom.out_hw
    return -(-OH // 2), -(-OW // 2)


def _tile_padded(geom: win.WindowGeometry) -> win.WindowGeometry:
    """The geometry with bottom/right padding grown to cover whole tiles (2*t + 2 rows and columns)."""
    (th, tw), (OH, OW) = _tiles(geom), geom.out_hw
    top, bottom, left, right = geom.pad
    return geom._replace(pad=(top, bottom + 2 * th - OH, left, right + 2 * tw - OW))


def _halves(start: int, stop: int) -> list[tuple[int, int]]:
    """An image range split in one part per thread."""
    threads = min(num_threads(), stop - start)
    step = -(-(stop - start) // max(threads, 1))
    return [(a, min(stop, a + step)) for a in range(start, stop, step)]


def _chunk(N: int, tiles: tuple[int, int], width: int, itemsize: int) -> int:
    return max(1, min(N, CHUNK_BYTES // (16 * tiles[0] * tiles[1] * width * itemsize)))


def forward(x_l: np.ndarray, w: np.ndarray, geom: win.WindowGeometry, out_l: np.ndarray) -> None:
    """Write the correlation of x_l (N, H, W, C) with w (F, C, 3, 3) into out_l (N, OH, OW, F)."""
    N, C, F = x_l.shape[0], x_l.shape[3], w.shape[0]
    th, tw = tiles = _tiles(geom)
    padded = _tile_padded(geom)
    U = weight_transform(w)
    n_chunk = _chunk(N, tiles, max(C, F), x_l.dtype.itemsize)
    exact = out_l.shape[1:3] == (2 * th, 2 * tw)
    for start, stop in win.chunk_ranges(N, n_chunk):
        n = stop - start
        xp = win.padded_chunk(x_l[start:stop], padded,
                              True, win.new_pad_buffer(n_chunk, C, padded, True, x_l.dtype))
        V = workspace.scratch("winograd V", (16, n_chunk, th, tw, C), x_l.dtype)[:, :n]
        map_chunks(lambda a, b: input_transform(xp[a:b], tiles, V[:, a:b]), _halves(0, n))
        M = workspace.scratch("winograd M", (16, n_chunk * th * tw, F), x_l.dtype)[:, :n * th * tw]
        np.matmul(V.reshape(16, -1, C), U, out=M)
        M = M.reshape(16, n, th, tw, F)
        target = out_l[start:stop] if exact else np.empty((n, 2 * th, 2 * tw, F), x_l.dtype)
        map_chunks(lambda a, b: output_transform(M[:, a:b], target[a:b]), _halves(0, n))
        if not exact:
            out_l[start:stop] = target[:, :out_l.shape[1], :out_l.shape[2]]


def weight_grad(x_l: np.ndarray, dout_l: np.ndarray, geom: win.WindowGeometry, w_shape) -> np.ndarray:
    """dw (F, C, 3, 3) from x_l (N, H, W, C) and dout_l (N, OH, OW, F)."""
    N, C, F = x_l.shape[0], x_l.shape[3], w_shape[0]
    th, tw = tiles = _tiles(geom)
    padded = _tile_padded(geom)
    (OH, OW), exact = geom.out_hw, geom.out_hw == (2 * th, 2 * tw)
    n_chunk = _chunk(N, tiles, max(C, F), x_l.dtype.itemsize)
    dU = np.zeros((16, C, F), x_l.dtype)
    for start, stop in win.chunk_ranges(N, n_chunk):
        n = stop - start
        xp = win.padded_chunk(x_l[start:stop], padded,
                              True, win.new_pad_buffer(n_chunk, C, padded, True, x_l.dtype))
        if exact:
            dy = dout_l[start:stop]
        else:  # whole tiles: the outputs past the edge get zero gradient
            dy = workspace.scratch("winograd dy", (n_chunk, 2 * th, 2 * tw, F), x_l.dtype, zeroed_key=(OH, OW))[:n]
            dy[:, :OH, :OW] = dout_l[start:stop]
        V = workspace.scratch("winograd V", (16, n_chunk, th, tw, C), x_l.dtype)[:, :n]
        dM = workspace.scratch("winograd M", (16, n_chunk, th, tw, F), x_l.dtype)[:, :n]

        def transforms(a, b):
            input_transform(xp[a:b], tiles, V[:, a:b])
            output_grad_transform(dy[a:b], dM[:, a:b])

        map_chunks(transforms, _halves(0, n))
        dU += np.matmul(V.reshape(16, -1, C).transpose(0, 2, 1), dM.reshape(16, -1, F))
    return weight_grad_from(dU, w_shape)
