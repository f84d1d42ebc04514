"""Speed of numcnn's ops: fast vs naive, and numcnn vs torch.nn.functional.

    python benchmarks/bench_ops.py [--repeat 7] [--no-naive] [--threads 2]
    numcnn bench ops [--tuned]

Every figure is measured in this one run, on this machine: for each shape
the fast op, its loop twin and PyTorch's op (when installed) are timed on
the same float32 NCHW arrays, interleaved and repeated (with a pause
before each framework's turn, see SETTLE_SECONDS), and the best time of
each is kept (the least disturbed by other load). Ratios are numcnn time /
PyTorch time: below 1 numcnn is faster. The loop versions are linear in the
batch size, so they are timed on a few images and scaled up (marked ~).

--tuned prints the planner's table instead (bench/tuned.py): each
convolution engine's fwd+bwd, the rules' pick, the planner's choice on this
machine, and PyTorch's, on bench_ops' convolutions and the thin layers.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import ops
from ..blas_env import thread_timeout_description


@dataclass
class Case:
    """One row of the ops benchmark: an op (convolution or max pooling) at one input shape.

    Attributes:
        name: The row's name, e.g. "cs231n conv".
        x_shape: The input's shape (N, C, H, W).
        kind: "conv" or "maxpool".
        w_shape: The weight's shape (F, C, KH, KW) of a convolution.
        params: The op's keyword arguments (stride and pad; kernel_size for pooling).
    """

    name: str
    x_shape: tuple
    kind: str  # "conv" or "maxpool"
    w_shape: tuple = ()
    params: dict = None

    def flops(self, out_shape) -> float:
        """Multiply-adds x 2 of one forward pass (convolutions only)."""
        if self.kind != "conv":
            return 0.0
        return 2.0 * np.prod(out_shape) * np.prod(self.w_shape[1:])


CASES = [
    Case("cs231n conv", (100, 3, 31, 31), "conv", (25, 3, 3, 3), dict(stride=2, pad=1)),
    Case("cs231n pool", (100, 3, 32, 32), "maxpool", params=dict(kernel_size=2, stride=2)),
    Case("7x7 stem", (64, 3, 32, 32), "conv", (32, 3, 7, 7), dict(stride=1, pad=3)),
    Case("cifar 3x3 64", (128, 64, 32, 32), "conv", (64, 64, 3, 3), dict(stride=1, pad=1)),
    Case("cifar 3x3 128", (128, 128, 16, 16), "conv", (128, 128, 3, 3), dict(stride=1, pad=1)),
    Case("cifar 3x3 256", (128, 256, 8, 8), "conv", (256, 256, 3, 3), dict(stride=1, pad=1)),
]
# The thin layers most of ResNet-20 is made of, and an RGB stem at batch 128 (--tuned's table).
THIN_CASES = [
    Case("3x3 16 32x32", (128, 16, 32, 32), "conv", (16, 16, 3, 3), dict(stride=1, pad=1)),
    Case("3x3 32 16x16", (128, 32, 16, 16), "conv", (32, 32, 3, 3), dict(stride=1, pad=1)),
    Case("7x7 stem 128", (128, 3, 32, 32), "conv", (32, 3, 7, 7), dict(stride=1, pad=3)),
]


def blas_description() -> str:
    """Which BLAS NumPy calls, its kernel and thread count (needs threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl to report it)"
    for pool in threadpool_info():
        if pool.get("user_api") == "blas" and "numpy" in pool.get("filepath", ""):
            described = (
                f"{pool.get('internal_api')} {pool.get('version')}, kernel "
                f"{pool.get('architecture')}, {pool.get('num_threads')} threads"
            )
            if pool.get("internal_api") == "openblas":
                described += f", {thread_timeout_description()}"
            return described
    return "not found"


# Seconds to wait before timing the other framework. Idle OpenBLAS and
# PyTorch threads spin for about 0.1 s after a call, on the cores the next
# contender needs: timed back to back, PyTorch's ThreeLayerConvNet step ran
# at 803 images/s right after numcnn's (2-core EPYC), at 1448 with this pause.
SETTLE_SECONDS = 0.3


def settle() -> None:
    """Let the last framework's worker threads go idle before timing the next."""
    time.sleep(SETTLE_SECONDS)


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """The shortest of `repeat` timings of fn(), in seconds: the one least disturbed by other load."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def numcnn_pair(case: Case, fast: bool = True):
    """(forward, backward) functions of the case, fast or naive."""
    suffix = "" if fast else "_naive"
    if case.kind == "conv":
        return getattr(ops, "conv2d_forward" + suffix), getattr(ops, "conv2d_backward" + suffix)
    return getattr(ops, "max_pool2d_forward" + suffix), getattr(ops, "max_pool2d_backward" + suffix)


def run_case(case: Case, repeat: int, naive_images: int | None, torch) -> dict:
    """Time one case: the fast op, PyTorch's (torch: the module, or None) and the loop versions.

    Returns seconds by name: fwd, fb (forward and backward) and bwd; torch_fwd and torch_fb
    (None without PyTorch); gflops_fb for a convolution. With naive_images, also
    naive_fwd and naive_bwd, timed on that many images and scaled to the batch
    (naive_extrapolated: whether they were scaled).
    """
    rng = np.random.default_rng(0)
    x = rng.standard_normal(case.x_shape, dtype=np.float32)
    args = (x,)
    if case.kind == "conv":
        w = rng.standard_normal(case.w_shape, dtype=np.float32)
        b = rng.standard_normal(case.w_shape[0], dtype=np.float32)
        args = (x, w, b)
    forward, backward = numcnn_pair(case)
    out, cache = forward(*args, **case.params)
    dout = rng.standard_normal(out.shape, dtype=np.float32)

    timings = {"fwd": [], "fb": [], "torch_fwd": [], "torch_fb": []}
    torch_fwd = torch_fb = None
    if torch is not None:
        torch_fwd, torch_fb = torch_functions(case, args, dout, torch)
    for _ in range(repeat):  # interleaved, so slow spells hit both sides alike
        timings["fwd"].append(best_time(lambda: forward(*args, **case.params), 1))
        timings["fb"].append(best_time(lambda: backward(dout, forward(*args, **case.params)[1]), 1))
        if torch is not None:
            settle()
            timings["torch_fwd"].append(best_time(torch_fwd, 1))
            timings["torch_fb"].append(best_time(torch_fb, 1))
            settle()
    result = {k: min(v) if v else None for k, v in timings.items()}
    result["gflops_fb"] = 3 * case.flops(out.shape) / result["fb"] / 1e9 if case.kind == "conv" else None
    result["bwd"] = result["fb"] - result["fwd"]

    if naive_images is not None:
        n = min(case.x_shape[0], naive_images)
        naive_forward, naive_backward = numcnn_pair(case, fast=False)
        small = (args[0][:n],) + args[1:]
        start = time.perf_counter()
        _, naive_cache = naive_forward(*small, **case.params)
        naive_fwd = time.perf_counter() - start
        start = time.perf_counter()
        naive_backward(dout[:n], naive_cache)
        naive_bwd = time.perf_counter() - start
        scale = case.x_shape[0] / n
        result.update(naive_fwd=naive_fwd * scale, naive_bwd=naive_bwd * scale, naive_extrapolated=n < case.x_shape[0])
    return result


def torch_functions(case: Case, args, dout, torch):
    """PyTorch's twin of a case: (forward, forward_backward) closures over tensor copies of args.

    forward runs without autograd; forward_backward backpropagates dout. One
    forward_backward runs here as a warm-up (oneDNN picks its kernels on the first call).
    """
    F = torch.nn.functional
    tensors = [torch.from_numpy(a.copy()).requires_grad_(True) for a in args]
    grad = torch.from_numpy(dout)
    if case.kind == "conv":
        apply = lambda: F.conv2d(*tensors, stride=case.params["stride"], padding=case.params["pad"])
    else:
        apply = lambda: F.max_pool2d(tensors[0], case.params["kernel_size"], case.params["stride"])

    def forward():
        with torch.no_grad():
            return apply()

    def forward_backward():
        for t in tensors:
            t.grad = None
        apply().backward(grad)

    forward_backward()  # warm-up: oneDNN picks its kernels on the first call
    return forward, forward_backward


def main(argv=None) -> int:
    """`numcnn bench ops` (and benchmarks/bench_ops.py): print the speed table; returns 0."""
    parser = argparse.ArgumentParser(prog="numcnn bench ops", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed repetitions per measurement")
    parser.add_argument("--no-naive", action="store_true", help="skip the loop versions")
    parser.add_argument(
        "--naive-images",
        type=int,
        default=2,
        help="images the loop versions run on (scaled to the batch); CS231n's shapes run in full",
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch's thread count")
    parser.add_argument(
        "--cases",
        nargs="+",
        metavar="NAME",
        choices=[c.name for c in CASES + THIN_CASES],
        help="only these rows (quote names with spaces), e.g. 'cs231n pool'",
    )
    parser.add_argument(
        "--tuned", action="store_true", help="each conv engine's fwd+bwd, the planner's choice and PyTorch's"
    )
    args = parser.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    if args.tuned:
        from .tuned import tuned_table

        return tuned_table(args.cases, args.repeat, torch)

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"numpy {np.__version__}, BLAS: {blas_description()}"
    )
    print(f"pytorch: {torch.__version__ + f', {torch.get_num_threads()} threads' if torch else 'not installed'}")
    print("float32, NCHW inputs; times in ms, best of", args.repeat)
    header = (
        f"{'op':<14} {'x':<18} {'fwd':>7} {'torch':>7} {'ratio':>6} | {'fwd+bwd':>8} {'torch':>7} "
        f"{'ratio':>6} {'GF/s':>5} | {'naive fwd':>10} {'naive bwd':>10} {'bwd speed-up':>12}"
    )
    print(header)
    print("-" * len(header))
    for case in [c for c in CASES if args.cases is None or c.name in args.cases] + [
        c for c in THIN_CASES if args.cases is not None and c.name in args.cases
    ]:
        naive_images = None
        if not args.no_naive:
            naive_images = case.x_shape[0] if case.name.startswith("cs231n") else args.naive_images
        r = run_case(case, args.repeat, naive_images, torch)
        ms = lambda s: f"{s * 1e3:7.1f}" if s is not None else "      -"
        ratio = lambda a, b: f"{a / b:6.2f}" if b else "     -"
        naive = ""
        if "naive_fwd" in r:
            mark = "~" if r["naive_extrapolated"] else ""
            naive_fwd, naive_bwd = f"{mark}{r['naive_fwd'] * 1e3:.0f}", f"{mark}{r['naive_bwd'] * 1e3:.0f}"
            naive = f" | {naive_fwd:>10} {naive_bwd:>10} {r['naive_bwd'] / r['bwd']:11.0f}x"
        gflops = f"{r['gflops_fb']:5.0f}" if r["gflops_fb"] else "    -"
        print(
            f"{case.name:<14} {str(case.x_shape):<18} {ms(r['fwd'])} {ms(r['torch_fwd'])} "
            f"{ratio(r['fwd'], r['torch_fwd'])} | {ms(r['fb']):>8} {ms(r['torch_fb'])} "
            f"{ratio(r['fb'], r['torch_fb'])} {gflops}{naive}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
