"""numcnn.ops.engine: how the fast ops run, beneath the op families of numcnn.ops.

An op file (conv.py, pool.py, ...) states the maths and makes one call in
here; what makes it fast lives here:

    geometry.py   window geometry: output sizes, padding, which pixels each output and each tap reads
    layout.py     channels-last / channels-first memory: padded chunks, im2col patches, weight and
                  dout matrices, col2im (a Layout object owns each)
    im2col.py     the convolution engines: output, input gradient, weight gradient, bias gradient
    winograd.py   F(2x2, 3x3) and F(4x4, 3x3) for 3x3 stride-1 layers: which layers, the safe
                  range, the engines
    winograd_tiles.py  the tiles' matrices and unrolled transforms, with their matrix twins
    direct.py     compiled direct convolutions for thin layers (Numba, optional; direct_kernels.py
                  holds the kernels)
    choice.py     which engine runs, in a scope: `with engine.use("im2col"): ...`
    candidates.py the ways a convolution can run (each engine held to one layout or tiling), for the planner
    planner.py    which candidate a large layer runs: measured on first use (NUMCNN_TUNE=0: the rules)
    wisdom.py     the planner's measurements, kept per machine in a JSON file in numcnn's data folder
    threads.py    chunks of images over the cores, chunk sizes, the ordered reduction
    scratch.py    per-thread scratch buffers reused across calls
    tuning.py     every speed constant, one line each, pointing at BENCHMARKS.md

None of it changes a result beyond rounding: engines, chunk sizes and
thread counts choose how, never what.

Imports: numpy, threadpoolctl and numba (optional), the validators (numcnn.checks)
and each other; wisdom.py also numcnn.io (atomic writes) and numcnn.data's
data_dir (where the file lives); never an op family (numcnn.ops.conv,
.pool, ...) nor anything above numcnn.ops.
"""

from .choice import ENGINES, chosen, scaled_chunks, use
from .threads import num_threads, set_num_threads

__all__ = ["ENGINES", "chosen", "scaled_chunks", "use", "num_threads", "set_num_threads"]
