"""A 7x7 RGB stem's three sums timed apart: forward, input gradient, weight gradient (ms, best of 5).

python benchmarks/stem_parts.py [BATCH] [FILTERS]      (default 128 32: ThreeLayerConvNet's stem)

numcnn's direct engine (Numba) and im2col (channels-first) beside PyTorch's
conv2d, conv2d_input and conv2d_weight, all on the same arrays, float32.
"""

import sys
import time

import numpy as np
import torch

from numcnn.ops.engine import direct, geometry, im2col
from numcnn.ops.engine.layout import CHANNELS_FIRST


def best_ms(fn, repeat: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def main(batch: int = 128, filters: int = 32) -> None:
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    w = rng.standard_normal((filters, 3, 7, 7)).astype(np.float32)
    dout = rng.standard_normal((batch, filters, 32, 32)).astype(np.float32)
    geom = geometry.window_geometry((32, 32), (7, 7), 1, 3, 1)
    xc, dc = CHANNELS_FIRST.arranged(x), CHANNELS_FIRST.arranged(dout)
    xt, wt, dt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(dout)
    rows = {
        "forward": (
            lambda: direct.conv_output(x, w, geom),
            lambda: im2col.conv_output(xc, w, geom, 1, CHANNELS_FIRST),
            lambda: torch.nn.functional.conv2d(xt, wt, padding=3),
        ),
        "input gradient": (
            lambda: direct.conv_input_grad(dout, w, geom),
            lambda: im2col.conv_input_grad(dc, w, geom, 1, channels=3, layout=CHANNELS_FIRST),
            lambda: torch.nn.grad.conv2d_input(xt.shape, wt, dt, padding=3),
        ),
        "weight gradient": (
            lambda: direct.conv_weight_grad(x, dout, geom),
            lambda: im2col.conv_weight_grad(xc, dc, geom, 1, w.shape, CHANNELS_FIRST),
            lambda: torch.nn.grad.conv2d_weight(xt, wt.shape, dt, padding=3),
        ),
    }
    print(f"7x7 stem, 3 -> {filters} channels, batch {batch}, ms: direct, im2col channels-first, PyTorch")
    with torch.no_grad():
        for name, fns in rows.items():
            print(f"{name:16s}" + "".join(f"{best_ms(fn):9.1f}" for fn in fns), flush=True)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
