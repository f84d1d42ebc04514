"""Direct convolutions compiled with Numba: thin layers without im2col, when Numba is installed.

Layers of 16-32 channels give im2col's GEMMs only 16-32 columns, and their
patch matrices are 9x the activations they copy; here each sum of conv.py
is computed straight from the (padded) images, channels-last:

    out[n, i, j, :]   = sum_{kh, kw, c} xp[n, i*sh + kh*dh, j*sw + kw*dw, c] * w[kh, kw, c, :]
    dw[kh, kw, c, :]  = sum_{n, i, j}   xp[n, i*sh + kh*dh, j*sw + kw*dw, c] * dout[n, i, j, :]
    dxp[n, i*sh + kh*dh, j*sw + kw*dw, :] += sum_f dout[n, i, j, f] * w[kh, kw, :, f]

with weights held as (KH, KW, C, F): the innermost loop runs over output
channels (F, or C for dx), a compile-time constant, so LLVM unrolls it into
whole vector registers (16 float32 channels: two AVX2 registers of 8 lanes,
one AVX-512 register). Each kernel keeps a block of JB output pixels (or CB
input channels for dw) x F accumulators in registers across the whole
(kh, kw, c) sum, loading each weight vector once per block: the
register-tiled micro-kernel of a GEMM, without the patch matrix. A stride-1
input gradient is the forward kernel run on dout with the flipped kernel
(geometry.flipped_geometry), as in im2col.py; other strides scatter.

Images are split over numcnn's threads (threads.map_chunks), one
consecutive range each, run by a serial kernel that releases the GIL. Not
numba.prange: its OpenMP pool kills any process forked after it ran
("fork() called from a process already using GNU OpenMP"), and data-parallel
training forks its workers (numcnn.train.parallel). The weight gradient sums
one partial per 8 images, always in the same order, so results are the same
bits for any thread count. Each
kernel is compiled for
its constants (F, block) on first use and cached on disk (cache=True, in
__pycache__ or NUMBA_CACHE_DIR): 5-25 s a layer cold on a 2-core EPYC (39 s
for ResNet-20's thin layers), 1.7 s from the cache (0.5 s of it importing
Numba, which only the first direct convolution does).

Numba is optional (`pip install numcnn[numba]`): without it `available()`
is False, `direct_conv_applies` is False, and conv.py keeps to im2col,
which stays the reference this engine is tested against.
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading

import numpy as np

from . import im2col, threads, tuning
from .choice import chosen
from .geometry import WindowGeometry, flipped_geometry
from .layout import CHANNELS_FIRST


def _numba_installed() -> bool:
    """Whether `import numba` would find it, without importing it (half a second that every numcnn
    import would pay, and the default small layers never use it)."""
    try:
        return importlib.util.find_spec("numba") is not None
    except (ImportError, ValueError):  # a None or spec-less entry in sys.modules
        return False


_installed = _numba_installed()

# Output channels a kernel is compiled for: multiples of one AVX2 register (8 float32), 16 to 64
# (narrower layers are cheap either way, and each width is one more kernel to compile).
CHANNEL_STEP = 8
MIN_FILTERS = 16
MAX_CHANNELS = 64
# Accumulators a kernel's register block holds: 8 of the 16 vector registers of AVX2, 8 lanes each,
# leaving room for the weight (or dout) vectors and a broadcast. Measured on one core (N=32): 32 channels
# with 12 (3 pixels) spilled, 35 GF/s forward against 77 with 8; 16 channels 57 GF/s with 8 or 12.
BLOCK_NUMBERS = 8 * 8

# The lane-sum kernel's accumulators (pixels x outputs x lanes): 12 of AVX2's 16 registers, as each
# step loads only one dout vector a pixel and one weight vector an output.
LANE_BLOCK_NUMBERS = 12 * 8

# Images (or weight-gradient parts) a thread takes at a time: small enough to even out cores of unequal
# speed, large enough that a kernel call's dispatch (microseconds) stays negligible.
BLOCK = 2
# Images per partial sum of the weight gradient: a fixed split, so the sum's order, and its bits, do not
# depend on the thread count.
WEIGHT_GRAD_IMAGES_PER_PART = 8

_lock = threading.Lock()
_kernels: dict = {}


def available() -> bool:
    """True when Numba can be imported (the engine exists)."""
    return _installed


def direct_conv_applies(geom: WindowGeometry, groups: int, channels: int, filters: int, dtype=np.float32) -> bool:
    """True when the direct engine can run this convolution (whether it pays is choice's business).

    Needs Numba, one group, float32 or float64, MIN_FILTERS to MAX_CHANNELS
    output channels in steps of CHANNEL_STEP, and at most MAX_CHANNELS input
    channels (any number: an RGB stem's input gradient runs the lane-sum kernel
    at stride 1, its weight gradient im2col's GEMM).
    """
    if not _installed or groups != 1 or np.dtype(dtype) not in (np.float32, np.float64):
        return False
    return filters % CHANNEL_STEP == 0 and MIN_FILTERS <= filters <= MAX_CHANNELS and channels <= MAX_CHANNELS


def pixel_block(channels: int) -> int:
    """Output pixels per register block of a kernel over `channels` output channels (at least 1)."""
    return max(1, BLOCK_NUMBERS // max(channels, 1))


def filter_block(filters: int) -> int:
    """Output channels per register block of the forward kernel: 32 (four AVX2 registers a pixel, two
    pixels a block) when they divide `filters`, else 16 or 8. 64 channels one pixel at a time ran
    slower than im2col (one weight load per multiply-add)."""
    return next(b for b in (32, 16, 8) if filters % b == 0)


def channel_block(channels: int, filters: int) -> int:
    """Input channels per register block of the weight gradient: the largest divisor of `channels`
    whose block of filters-wide accumulators fits (a divisor, so no block is a partial one)."""
    most = pixel_block(filters)
    return max(b for b in range(1, most + 1) if channels % b == 0)


@contextlib.contextmanager
def _slp_vectorized():
    """Numba compiles with LLVM's SLP vectorizer while the block runs.

    Numba turns it off by default (numba.config.SLP_VECTORIZE); the unrolled
    register blocks are exactly what it packs into vector instructions:
    measured on the 16-channel layer, 4 GF/s without it, 95 GF/s with it.
    Compilation happens once per kernel and process (or never, from the
    disk cache); the flag changes instructions, not arithmetic.
    """
    import numba

    before = numba.config.SLP_VECTORIZE
    numba.config.SLP_VECTORIZE = 1
    try:
        yield
    finally:
        numba.config.SLP_VECTORIZE = before


def _compiled(kernel, *args):
    """The kernel, compiled first (SLP on) for these arguments' types if it has not seen them.

    Numba's dispatcher would compile new types itself, without the SLP
    vectorizer, so the types are looked up here, once per call of an op
    (numba.typeof costs microseconds an argument: not once per block).
    """
    import numba

    signature = tuple(numba.typeof(a) for a in args)
    if signature not in kernel.overloads:
        with _lock, _slp_vectorized():
            if signature not in kernel.overloads:
                kernel.compile(signature)
    return kernel


def _over_threads(call, count: int) -> None:
    """call(start, stop) for blocks of BLOCK items of range(count), taken by numcnn's threads as each frees up.

    Taken, not dealt: a thread whose core is slower (shared, or busy with
    another process) takes fewer blocks. Each item's result depends on that
    item alone, so which thread takes it changes no bit.
    """
    blocks = iter(range(0, count, BLOCK))  # next() on it is one step under the GIL: threads share it safely

    def drain(_start: int, _stop: int) -> None:
        for start in blocks:
            call(start, min(start + BLOCK, count))

    threads.map_chunks(drain, [(0, count)] * threads.num_threads())


def _kernel(kind: str, *constants):
    with _lock:
        key = (kind,) + constants
        if key not in _kernels:
            from . import direct_kernels

            _kernels[key] = getattr(direct_kernels, kind)(*constants)
        return _kernels[key]


# ---------------------------------------------------------------------------
# The three sums, on channels-last arrays.
# ---------------------------------------------------------------------------


def weights_hwcf(w: np.ndarray) -> np.ndarray:
    """w (F, C, KH, KW) -> contiguous (KH, KW, C, F): each tap's weights as rows of F."""
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def _nhwc(a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> a contiguous (N, H, W, C) array (a view when its memory is channels-last)."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def _geometry_args(geom: WindowGeometry) -> tuple[int, ...]:
    (sh, sw), (dh, dw) = geom.stride, geom.dilation
    top, bottom, left, right = geom.pad
    return (sh, sw, dh, dw, top, bottom, left, right)


def conv_output(x: np.ndarray, w: np.ndarray, geom: WindowGeometry) -> np.ndarray:
    """out = x (*) w, no bias: x (N, C, H, W), w (F, C, KH, KW) -> (N, F, OH, OW), memory channels-last."""
    return _forward_hwcf(_nhwc(x), weights_hwcf(w), geom)


def _forward_hwcf(x_nhwc: np.ndarray, w_hwcf: np.ndarray, geom: WindowGeometry) -> np.ndarray:
    N = x_nhwc.shape[0]
    F = w_hwcf.shape[3]
    OH, OW = geom.out_hw
    out = np.empty((N, OH, OW, F), x_nhwc.dtype)
    kernel = _kernel("forward", F, filter_block(F), pixel_block(filter_block(F)))
    w_hwcf, geometry = w_hwcf.astype(x_nhwc.dtype, copy=False), _geometry_args(geom)
    kernel = _compiled(kernel, x_nhwc, w_hwcf, out, *geometry)
    _over_threads(lambda a, b: kernel(x_nhwc[a:b], w_hwcf, out[a:b], *geometry), N)
    return out.transpose(0, 3, 1, 2)


def _forward_lanes(x_nhwc: np.ndarray, w_hwoc: np.ndarray, geom: WindowGeometry) -> np.ndarray:
    """The forward for few outputs: x (N, H, W, C), w (KH, KW, OC, C) -> (N, OC, OH, OW), channels-last memory.

    C must be a multiple of CHANNEL_STEP: the lanes the sum over C runs in.
    """
    N, outputs = x_nhwc.shape[0], w_hwoc.shape[2]
    OH, OW = geom.out_hw
    out = np.empty((N, OH, OW, outputs), x_nhwc.dtype)
    kernel = _kernel("forward_lanes", outputs, CHANNEL_STEP, max(1, LANE_BLOCK_NUMBERS // (outputs * CHANNEL_STEP)))
    w_hwoc, geometry = w_hwoc.astype(x_nhwc.dtype, copy=False), _geometry_args(geom)
    kernel = _compiled(kernel, x_nhwc, w_hwoc, out, *geometry)
    _over_threads(lambda a, b: kernel(x_nhwc[a:b], w_hwoc, out[a:b], *geometry), N)
    return out.transpose(0, 3, 1, 2)


def conv_input_grad(dout: np.ndarray, w: np.ndarray, geom: WindowGeometry) -> np.ndarray:
    """dx (N, C, H, W) from dout (N, F, OH, OW) and w (F, C, KH, KW); memory channels-last from the kernels.

    Stride 1: the forward kernel on dout with the kernel flipped in space and
    its channels swapped (weights (KH, KW, F, C) reversed in kh, kw); for
    fewer than CHANNEL_STEP input channels (an RGB stem), whose 3 outputs
    would fill 3 of a register's 8 lanes, the lane-sum kernel, which
    vectorizes over the F channels summed instead. Other strides: each dout
    pixel scatters onto the taps it came from, vectorized over C, so a thin
    C goes through im2col's col2im there.
    """
    F, C = w.shape[:2]
    full = flipped_geometry(geom)
    d = _nhwc(dout)
    if full is not None and C % CHANNEL_STEP:
        flipped = np.ascontiguousarray(w.transpose(2, 3, 1, 0)[::-1, ::-1])  # (KH, KW, C, F)
        return _forward_lanes(d, flipped, full)
    if C % CHANNEL_STEP:
        return im2col.conv_input_grad(dout, w, geom, 1, channels=C)
    if full is not None:
        flipped = np.ascontiguousarray(w.transpose(2, 3, 0, 1)[::-1, ::-1])  # (KH, KW, F, C)
        return _forward_hwcf(d, flipped, full)
    N = d.shape[0]
    H, W = geom.in_hw
    dx = np.empty((N, H, W, C), d.dtype)
    w_hwfc = np.ascontiguousarray(w.transpose(2, 3, 0, 1))  # (KH, KW, F, C)
    geometry = _geometry_args(geom)
    kernel = _compiled(_kernel("input_grad", C), d, w_hwfc, dx, *geometry)
    _over_threads(lambda a, b: kernel(d[a:b], w_hwfc, dx[a:b], *geometry), N)
    return dx.transpose(0, 3, 1, 2)


def conv_weight_grad(x: np.ndarray, dout: np.ndarray, geom: WindowGeometry) -> np.ndarray:
    """dw (F, C, KH, KW), contiguous, from x (N, C, H, W) and dout (N, F, OH, OW).

    One partial sum per WEIGHT_GRAD_IMAGES_PER_PART consecutive images, the
    parts shared out over the threads, then added in order: the same bits
    whatever the thread count. Fewer than CHANNEL_STEP input channels (an
    RGB stem) leave the kernel's blocks of channels mostly idle: those go
    through im2col's GEMM, channels-first, which measured 2x faster there
    (7x7, 3->32, batch 128: 16 against 36 ms; blocks of (kw, c) taps
    instead of channels ran 46 ms).
    """
    if x.shape[1] % CHANNEL_STEP:
        layout = CHANNELS_FIRST
        return im2col.conv_weight_grad(
            layout.arranged(x), layout.arranged(dout), geom, 1, _weight_shape(x, dout, geom), layout
        )
    x_nhwc, d = _nhwc(x), _nhwc(dout)
    N, _, _, C = x_nhwc.shape
    F = d.shape[3]
    KH, KW = geom.kernel
    bounds = np.array(sorted({*range(0, N, WEIGHT_GRAD_IMAGES_PER_PART), N}), np.int64)
    parts = np.zeros((len(bounds) - 1, KH, KW, C, F), x_nhwc.dtype)
    geometry = _geometry_args(geom)
    kernel = _compiled(_kernel("weight_grad", F, channel_block(C, F)), x_nhwc, d, parts, bounds, *geometry)
    _over_threads(lambda a, b: kernel(x_nhwc, d, parts[a:b], bounds[a : b + 1], *geometry), len(parts))
    dw_hwcf = parts[0]
    for part in parts[1:]:
        dw_hwcf = dw_hwcf + part
    return np.ascontiguousarray(dw_hwcf.transpose(3, 2, 0, 1))


def _weight_shape(x: np.ndarray, dout: np.ndarray, geom: WindowGeometry) -> tuple[int, int, int, int]:
    """(F, C, KH, KW) of the convolution that maps x to dout."""
    return (dout.shape[1], x.shape[1], *geom.kernel)


def runs(geom: WindowGeometry, groups: int, x_shape, filters: int, dtype) -> bool:
    """Whether conv2d runs this layer here: under engine.use("direct") wherever it applies; under "auto"
    the thin layers it was measured to win on (tuning.DIRECT_*), big enough to repay a cold compile."""
    engine = chosen()
    if engine not in ("auto", "direct") or not direct_conv_applies(geom, groups, x_shape[1], filters, dtype):
        return False
    if engine == "direct":
        return True
    N, C = x_shape[:2]
    OH, OW = geom.out_hw
    thin = max(C, filters) <= tuning.DIRECT_MAX_CHANNELS and geom.kernel in tuning.DIRECT_KERNELS
    return thin and N * OH * OW * filters * C * geom.kernel[0] * geom.kernel[1] >= tuning.DIRECT_MIN_MACS


def prepare(geom: WindowGeometry, channels: int, filters: int, dtype=np.float32, input_grad: bool = True) -> float:
    """Compile (or load from the disk cache) the kernels a layer will run; returns the seconds it took.

    For a planner that times candidates: call it before the warm-up, so that
    a cold compile (seconds per kernel) is not charged to the engine's speed.
    Runs the layer's three sums once on one image of zeros.
    """
    import time

    start = time.perf_counter()
    x = np.zeros((1, channels, *geom.in_hw), dtype)
    w = np.zeros((filters, channels, *geom.kernel), dtype)
    dout = np.zeros((1, filters, *geom.out_hw), dtype)
    conv_output(x, w, geom)
    conv_weight_grad(x, dout, geom)
    if input_grad:
        conv_input_grad(dout, w, geom)
    return time.perf_counter() - start
