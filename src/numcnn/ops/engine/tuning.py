"""Every speed constant of the engine, one line each, with where it was measured.

Sections named "BENCHMARKS.md: ..." are in the repository's BENCHMARKS.md;
"first build" is its paragraph "Kept from the first build" (a 2 MB-L2 /
36 MB-L3 Xeon), "made faster" its table "What made it faster on this
machine" (2 cores of an AMD EPYC). None of these changes a result: they
choose chunk sizes, threads and algorithms, never values. Tests shrink
some of them (monkeypatching this module) to force many chunks on tiny
arrays; the engine reads them at call time, as `tuning.NAME`.
"""

# -- chunks of images ----------------------------------------------------------
# im2col patch matrix per chunk: larger chunks fall out of cache, smaller ones starve the GEMM (first build).
CHUNK_BYTES = 4 << 20
# Winograd's transformed data (V or M) per chunk: twice im2col's, because the transforms are ~130 cheap
# NumPy passes that need long rows, while the GEMMs they feed are 16-36 per chunk (made faster: Winograd rows).
WINOGRAD_CHUNK_BYTES = 8 << 20
# Below this much patch matrix per thread, handing chunks to threads costs more than it saves (first build).
MIN_PARALLEL_BYTES = 256 << 10
# Passes that stream an activation through memory (pooling, batch norm) split it over the cores above this
# many bytes per thread (made faster: max pooling, batch norm's passes).
PARALLEL_BYTES_PER_THREAD = 1 << 20

# -- layouts and threads -------------------------------------------------------
# Channels per group from which patches are channels-last rows; below, rows of OW pixels copy faster (first build).
CHANNELS_LAST_MIN = 16
# Channels interleaved per pass when an NCHW input is made channels-last (made faster: NCHW inputs interleaved).
TRANSPOSE_BLOCK = 16
# Weights per group below which a layer splits its chunks over threads instead of using BLAS's (made faster:
# chunk threads only for thin layers).
THIN_LAYER_WEIGHTS = 10_000
# Row width (numbers) of the wide view batch norm runs its elementwise passes on (made faster: batch norm's sums).
WIDE_ROW_NUMBERS = 1024

# -- Winograd: which 3x3 stride-1 layers go through which tiling (made faster: Winograd F(2x2), F(4x4)) -----
# F(2x2, 3x3) from this many channels in and out.
WINOGRAD_2X2_MIN_CHANNELS = 128
# F(4x4, 3x3) from this many channels in and out ...
WINOGRAD_4X4_MIN_CHANNELS = 64
# ... and channels x output pixels of at least this (64 at 8x8 and 256 at 4x4 measured slower).
WINOGRAD_4X4_MIN_CHANNEL_PIXELS = 8192
# Whole tiles computed per output at most: 3x3 outputs in F(2x2) (1.78x) lose, 7x7 (1.31x) still pays.
WINOGRAD_MAX_TILE_WASTE = 1.35

# -- scratch buffers -----------------------------------------------------------
# Scratch kept per thread: the distinct layer shapes of numcnn's networks, not a sweep's hoard (first build).
SCRATCH_MAX_BYTES = 256 << 20

# -- the planner (planner.py): engines chosen by measurement ------------------------------------------------
# Layers below this many multiply-adds per forward pass keep the rules above without timing. The default
# `numcnn train` (smallcnn on 8x8 digits, batch 64) peaks at 3.8e7 per layer, CIFAR's 16-channel 3x3 layers at
# batch 128 have 3.0e8: below ~1e8 a fwd+bwd takes a few ms, where timing ~12 candidate runs is a visible part
# of a seconds-long run and the engines' gaps are within a busy machine's noise.
TUNE_MIN_MACS = 100_000_000
# Timed fwd+bwd runs per candidate after one untimed warm-up (which allocates its scratch); the median is kept.
TUNE_REPEATS = 3
# A candidate whose first timed run is this many times the best median so far is not timed again.
TUNE_GIVE_UP = 1.5
# Candidates are first screened on a quarter of the batch when that is at least this many images (batch 128: 32).
TUNE_SCREEN_MIN_IMAGES = 16
# Chunk sizes (times CHUNK_BYTES / WINOGRAD_CHUNK_BYTES) also timed for the winning engine.
TUNE_CHUNK_SCALES = (0.25, 4.0)

# -- the compiled direct convolution (ops/engine/direct.py, with Numba; BENCHMARKS.md: direct convolution) --
# Under "auto", layers of at most this many channels in and out go through it: on one core 0.65-0.72x
# PyTorch's fwd+bwd at 16 and 32 channels, but 1.6-2x at 64 (im2col/Winograd 1.2-1.5x there) ...
DIRECT_MAX_CHANNELS = 32
# ... with these kernel sizes (the 7x7 RGB stem measured 1.0-1.3x im2col's time) ...
DIRECT_KERNELS = ((3, 3),)
# ... and at least this many multiply-adds per forward, so a cold compile (39 s for ResNet-20's) is repaid.
DIRECT_MIN_MACS = 100_000_000

# -- batch norm's compiled row passes (ops/engine/rows_kernels.py, with Numba) --
# Activations of at least this many numbers (ResNet-20's smallest at batch 32: 64 ch x 8 x 8 x 32)
# take them; smaller ones keep NumPy's passes, which need no compile and no 67 MB of LLVM.
COMPILED_ROWS_MIN_NUMBERS = 131_072
