"""Winograd's minimal filtering F(m x m, 3x3): 3x3 stride-1 convolutions with fewer multiplications.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR
2016). Each m x m block of outputs of a 3x3 correlation is computed from
the a x a input tile under it, a = m + 2 (one channel, one filter):

    y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise, all a x a)

with the matrices of winograd_tiles.py (F(2x2), a = 4, and F(4x4), a = 6).
Summed over channels, the a*a elementwise products become a*a matrix
products, one per tile position (xi, nu), over all T tiles at once:

    M[xi,nu] (T, F) = V[xi,nu] (T, C) @ U[xi,nu] (C, F)
    V = B^T d B per tile and channel,  U = G g G^T per channel and filter

a*a*T*C*F multiply-adds for the m*m*T outputs, where im2col's GEMM does 9
per output: 2.25x fewer with F(2x2), 4x fewer with F(4x4), whose larger
transform coefficients cost some float32 accuracy (errors of about 1e-5
of the outputs' scale, against 1e-6 for im2col). The transforms are
additions and scalings only, done a few images at a time so they stay in
cache, split over the cores, while the GEMMs use BLAS's own threads.

Backward: the input gradient of a 3x3 stride-1 convolution is itself one
(see im2col.conv_input_grad), so it comes through forward(). The weight
gradient follows from y being linear in U:

    dU[xi,nu] (C, F) = V[xi,nu]^T @ dM[xi,nu],   dM = A dy A^T per m x m block of dout,   dg = G^T dU G

Range: the transforms scale values up (|B^T d B| <= 100 max|d| for F(4x4))
before the channel sums, so a finite input the direct sum handles (1e38 in
float32) can overflow, and one inf or NaN pixel spreads to every output of
each tile it touches (1600 outputs where the direct sum has 576 for a
64-channel layer). Each chunk of images is therefore checked while it is
in cache after padding (its max and min, NaN failing the test): a chunk
beyond the safe range, bounded from the transforms' norms below, goes to
the caller's fallback (im2col), whose non-finite outputs are exactly the
direct sum's. Inside the range every value Winograd computes is finite.

Layouts: images channels-last, (n, H, W, C). Outputs whose size is not a
multiple of m are computed on one more row or column of tiles (over zero
padding) and cropped.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import scratch, tuning
from .choice import chosen, chunk_scale
from .geometry import WindowGeometry
from .layout import CHANNELS_LAST
from .threads import chunk_ranges, map_chunks, per_thread
from .winograd_tiles import F_2X2, F_4X4, TILINGS, Tiling, weight_grad_from, weight_transform

__all__ = [
    "F_2X2",
    "F_4X4",
    "TILINGS",
    "Tiling",
    "applies",
    "forward",
    "forward_growth",
    "input_limit",
    "max_abs",
    "tile_size",
    "weight_grad",
    "weight_grad_from",
    "weight_grad_growth",
    "weight_transform",
    "within",
]


def tile_size(geom: WindowGeometry, groups: int, channels: int, filters: int) -> int:
    """m of the tiling a channels-last convolution goes through, 0 for im2col.

    Winograd needs 3x3, stride 1, no dilation and one group. Under the
    engine choice "auto" (engine.use), F(4x4) then takes layers with
    tuning.WINOGRAD_4X4_MIN_CHANNELS channels in and out and enough output
    pixels, F(2x2) those of WINOGRAD_2X2_MIN_CHANNELS, each only if its
    tiles cover the output without much waste; "winograd2" and "winograd4"
    take every such layer, "im2col" none.
    """
    engine = chosen()
    if not (
        engine not in ("im2col", "direct")
        and geom.kernel == (3, 3)
        and geom.stride == (1, 1)
        and geom.dilation == (1, 1)
        and groups == 1
    ):
        return 0
    if engine != "auto":
        return int(engine[-1])
    OH, OW = geom.out_hw
    narrowest = min(channels, filters)
    candidates = (
        (
            4,
            narrowest >= tuning.WINOGRAD_4X4_MIN_CHANNELS
            and narrowest * OH * OW >= tuning.WINOGRAD_4X4_MIN_CHANNEL_PIXELS,
        ),
        (2, narrowest >= tuning.WINOGRAD_2X2_MIN_CHANNELS),
    )
    for m, enough in candidates:
        th, tw = _tiles(geom, m)
        if enough and m * m * th * tw <= tuning.WINOGRAD_MAX_TILE_WASTE * OH * OW:
            return m
    return 0


def applies(geom: WindowGeometry, groups: int, channels: int, filters: int) -> bool:
    """Whether a channels-last convolution goes through Winograd at all."""
    return tile_size(geom, groups, channels, filters) > 0


# ---------------------------------------------------------------------------
# The safe range
# ---------------------------------------------------------------------------

# Headroom over the norm bounds below, for rounding in the transforms.
RANGE_MARGIN = 4.0


def _norm_inf(matrix: np.ndarray) -> float:
    """max_i sum_j |matrix[i, j]|: how much one application of the matrix can grow a value."""
    return float(np.abs(matrix).sum(axis=1).max())


def forward_growth(tiling: Tiling, channels: int) -> float:
    """g with |every value forward computes| <= g * max|x| * max|w|.

    V = B^T d B grows by ||B^T||^2, U = G g G^T by ||G||^2, the GEMM sums
    `channels` products, and A^T M A grows by ||A^T||^2 (the transforms'
    shared partial sums stay below these bounds).
    """
    return channels * _norm_inf(tiling.B_T) ** 2 * _norm_inf(tiling.G) ** 2 * _norm_inf(tiling.A_T) ** 2


def weight_grad_growth(tiling: Tiling, tiles: int) -> float:
    """g with |every value weight_grad computes| <= g * max|x| * max|dout| over `tiles` tiles.

    V grows by ||B^T||^2, dM = A dy A^T by ||A||^2, dU sums `tiles`
    products and dw = G^T dU G grows by ||G^T||^2.
    """
    return tiles * _norm_inf(tiling.B_T) ** 2 * _norm_inf(tiling.A_T.T) ** 2 * _norm_inf(tiling.G.T) ** 2


def max_abs(a: np.ndarray) -> float:
    """max |a| from a max and a min pass (no temporary); NaN when a holds a NaN."""
    high, low = float(a.max()), float(a.min())
    return float("nan") if high != high or low != low else max(high, -low)


def within(a: np.ndarray, limit: float) -> bool:
    """Whether every value of a lies in [-limit, limit]; False for NaN and inf (limit is finite)."""
    return bool(a.max() <= limit) and bool(a.min() >= -limit)


def input_limit(dtype, growth: float, other_max: float) -> float:
    """The largest max|input| that keeps growth * max|input| * other_max (times the margin)
    below dtype's largest finite value; 0 when other_max is not finite (nothing is safe)."""
    largest = float(np.finfo(dtype).max)
    if not other_max <= largest:  # NaN or inf in the other operand: never safe
        return 0.0
    return min(largest, largest / (RANGE_MARGIN * growth * max(other_max, 1e-300)))


# ---------------------------------------------------------------------------
# The engines
# ---------------------------------------------------------------------------


def _tiles(geom: WindowGeometry, m: int) -> tuple[int, int]:
    OH, OW = geom.out_hw
    return -(-OH // m), -(-OW // m)


def _tile_padded(geom: WindowGeometry, m: int) -> WindowGeometry:
    """The geometry with bottom/right padding grown to cover whole tiles (m*t + 2 rows and columns)."""
    (th, tw), (OH, OW) = _tiles(geom, m), geom.out_hw
    top, bottom, left, right = geom.pad
    return geom._replace(pad=(top, bottom + m * th - OH, left, right + m * tw - OW))


def _chunk(N: int, tiling: Tiling, tiles: tuple[int, int], width: int, itemsize: int) -> int:
    """Images per chunk: about tuning.WINOGRAD_CHUNK_BYTES of transformed data (V or M)."""
    target_bytes = int(tuning.WINOGRAD_CHUNK_BYTES * chunk_scale())  # scaled by choice.scaled_chunks
    return max(1, min(N, target_bytes // (tiling.alpha**2 * tiles[0] * tiles[1] * width * itemsize)))


def _tiling(geom: WindowGeometry, C: int, F: int) -> Tiling:
    m = tile_size(geom, 1, C, F)
    if not m:
        raise ValueError(f"a convolution with geometry {geom} and {C} -> {F} channels does not go through Winograd")
    return TILINGS[m]


def forward(
    x_l: np.ndarray, w: np.ndarray, geom: WindowGeometry, out_l: np.ndarray, fallback: Callable[[int, int], None]
) -> None:
    """Write the correlation of x_l (N, H, W, C) with w (F, C, 3, 3) into out_l (N, OH, OW, F).

    Images start:stop whose values lie beyond the safe range (see the
    module's docstring), or all of them when w does, are left to
    fallback(start, stop), which must write out_l[start:stop].
    """
    N, C, F = x_l.shape[0], x_l.shape[3], w.shape[0]
    tiling = _tiling(geom, C, F)
    limit = input_limit(x_l.dtype, forward_growth(tiling, C), max_abs(w))
    if limit == 0.0:
        fallback(0, N)
        return
    m, aa = tiling.m, tiling.alpha**2
    th, tw = tiles = _tiles(geom, m)
    padded = _tile_padded(geom, m)
    U = weight_transform(w, tiling)
    n_chunk = _chunk(N, tiling, tiles, max(C, F), x_l.dtype.itemsize)
    exact = out_l.shape[1:3] == (m * th, m * tw)
    for start, stop in chunk_ranges(N, n_chunk):
        n = stop - start
        xp = CHANNELS_LAST.padded(x_l[start:stop], padded, CHANNELS_LAST.pad_buffer(n_chunk, C, padded, x_l.dtype))
        if not within(xp, limit):  # checked while the chunk is in cache
            fallback(start, stop)
            continue
        V = scratch.shared_scratch("winograd V", (aa, n_chunk, th, tw, C), x_l.dtype)[:, :n]
        map_chunks(lambda a, b: tiling.input_transform(xp[a:b], tiles, V[:, a:b]), per_thread(0, n))
        M = scratch.shared_scratch("winograd M", (aa, n_chunk * th * tw, F), x_l.dtype)[:, : n * th * tw]
        np.matmul(V.reshape(aa, -1, C), U, out=M)
        M = M.reshape(aa, n, th, tw, F)
        target = out_l[start:stop] if exact else np.empty((n, m * th, m * tw, F), x_l.dtype)
        map_chunks(lambda a, b: tiling.output_transform(M[:, a:b], target[a:b]), per_thread(0, n))
        if not exact:
            out_l[start:stop] = target[:, : out_l.shape[1], : out_l.shape[2]]


def weight_grad(
    x_l: np.ndarray, dout_l: np.ndarray, geom: WindowGeometry, w_shape, fallback: Callable[[int, int], np.ndarray]
) -> np.ndarray:
    """dw (F, C, 3, 3) from x_l (N, H, W, C) and dout_l (N, OH, OW, F).

    The images start:stop of a chunk whose x or dout lies beyond the safe
    range contribute fallback(start, stop), their dw by the direct sum;
    dw is linear in the images, so the parts add up.
    """
    N, C, F = x_l.shape[0], x_l.shape[3], w_shape[0]
    tiling = _tiling(geom, C, F)
    m, aa = tiling.m, tiling.alpha**2
    th, tw = tiles = _tiles(geom, m)
    limit = input_limit(x_l.dtype, weight_grad_growth(tiling, N * th * tw), 1.0)  # on max|x| * max|dout|
    direct = None
    padded = _tile_padded(geom, m)
    (OH, OW), exact = geom.out_hw, geom.out_hw == (m * th, m * tw)
    n_chunk = _chunk(N, tiling, tiles, max(C, F), x_l.dtype.itemsize)
    dU = np.zeros((aa, C, F), x_l.dtype)
    for start, stop in chunk_ranges(N, n_chunk):
        n = stop - start
        xp = CHANNELS_LAST.padded(x_l[start:stop], padded, CHANNELS_LAST.pad_buffer(n_chunk, C, padded, x_l.dtype))
        if not max_abs(xp) * max_abs(dout_l[start:stop]) <= limit:  # False for NaN
            part = fallback(start, stop)
            direct = part if direct is None else direct + part
            continue
        if exact:
            dy = dout_l[start:stop]
        else:  # whole tiles: the outputs past the edge get zero gradient
            dy = scratch.scratch("winograd dy", (n_chunk, m * th, m * tw, F), x_l.dtype, zeroed_key=(OH, OW))[:n]
            dy[:, :OH, :OW] = dout_l[start:stop]
        V = scratch.shared_scratch("winograd V", (aa, n_chunk, th, tw, C), x_l.dtype)[:, :n]
        dM = scratch.shared_scratch("winograd M", (aa, n_chunk, th, tw, F), x_l.dtype)[:, :n]

        def transforms(a, b):
            tiling.input_transform(xp[a:b], tiles, V[:, a:b])
            tiling.output_grad_transform(dy[a:b], dM[:, a:b])

        map_chunks(transforms, per_thread(0, n))
        dU += np.matmul(V.reshape(aa, -1, C).transpose(0, 2, 1), dM.reshape(aa, -1, F))
    dw = weight_grad_from(dU, w_shape, tiling)
    return dw if direct is None else dw + direct
