"""Training throughput and peak memory: numcnn against PyTorch on the same networks and weights.

    python benchmarks/bench_train.py [--steps 8] [--batch-size 128] [--models threelayer resnet20 airbench]
    numcnn bench train [--workers 1,2]

A training step is forward, backward and the optimizer update (Adam for
ThreeLayerConvNet, Nesterov SGD for the others), float32, on random CIFAR-
sized images. The PyTorch twin is built from numcnn's state dict, so both
run identical weights; PyTorch runs NCHW (its default) and, for reference,
channels-last. Timings are interleaved, with a pause before each framework
so that the other's idle threads have stopped spinning (see
bench.ops.SETTLE_SECONDS), and the median step kept.

Peak memory is measured in fresh processes, one per framework and network,
with glibc's mmap threshold fixed at 128 KB for both (MALLOC_MMAP_THRESHOLD_:
large blocks go back to the system when freed, so resident memory follows
the arrays alive instead of what the allocator kept), three ways (MB):
    step     peak resident memory of two training steps above the memory
             before them, after a first step has loaded the code a step
             runs and made the planner's choices: the activations, caches,
             gradients and scratch of the batch (for numcnn it matches
             tracemalloc's peak of NumPy's arrays);
    first    the same for that first step: with the one-time costs, Numba's
             LLVM (67 MB of code) and the planner's trials among them;
    process  the process's own peak: everything a training job holds,
             Python, libraries, weights and the steps.

--workers 1,2: numcnn also with the step split over N local worker processes
(numcnn.train.parallel, whole-step data parallelism), as processes and as threads
(--backends), both timed in one interleaved block. While workers run, every
rank has one core (one BLAS thread), so those steps are timed in a block of
their own, interleaved with PyTorch's again: each "wN" figure has a PyTorch
figure from the same minutes beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

from .. import models, nn
from ..train.optim import UPDATE_RULES
from ..train.parallel import DataParallel, start_workers, unsplittable_reason
from .ops import blas_description, settle

RULES = {
    "threelayer": ("adam", {"learning_rate": 1e-3}),
    "resnet20": ("nesterov", {"learning_rate": 0.05}),
    "airbench": ("nesterov", {"learning_rate": 0.05}),
}


def numcnn_model(name: str):
    """The numcnn network a benchmark row trains, seeded (nn.manual_seed(0), np.random.seed(0)).

    "threelayer" is the assignment's ThreeLayerConvNet (weight_scale 1e-2, float32);
    another name is models.build(name) in a Classifier.
    """
    nn.manual_seed(0)
    np.random.seed(0)
    if name == "threelayer":
        return models.ThreeLayerConvNet(weight_scale=1e-2, dtype=np.float32)
    return models.Classifier(models.build(name))


def numcnn_step(model, name, loss=None):
    """One training step of model; loss (default model.loss) computes (loss, grads): a
    DataParallel's loss splits it over workers."""
    rule_name, base = RULES[name]
    rule = UPDATE_RULES[rule_name]
    configs = {k: dict(base) for k in model.params}
    loss = loss or model.loss

    def step(X, y):
        _, grads = loss(X, y)
        for key in list(model.params):
            model.params[key], configs[key] = rule(model.params[key], grads[key], configs[key])

    return step


def torch_twin(name: str, model, torch):
    """The PyTorch network with the layers and weights of `model` (numcnn_model(name))."""
    if name == "threelayer":
        tn = torch.nn
        twin = tn.Sequential(
            tn.Conv2d(3, 32, 7, padding=3),
            tn.ReLU(),
            tn.MaxPool2d(2),
            tn.Flatten(),
            tn.Linear(32 * 16 * 16, 100),
            tn.ReLU(),
            tn.Linear(100, 10),
        )
        p = model.params
        state = {
            "0.weight": p["W1"],
            "0.bias": p["b1"],
            "4.weight": p["W2"].T,
            "4.bias": p["b2"],
            "6.weight": p["W3"].T,
            "6.bias": p["b3"],
        }
        twin.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})
        return twin
    from ..interop.pytorch import to_torch

    return to_torch(model.net)


def torch_step(twin, name, torch, channels_last=False):
    """A PyTorch training step, step(X, y), for twin with the row's update rule (RULES[name]).

    Adam, or SGD with Nesterov momentum 0.9, at numcnn's learning rate; channels_last runs
    the twin and its inputs in the channels-last memory format.
    """
    rule_name, base = RULES[name]
    if rule_name == "adam":
        optimizer = torch.optim.Adam(twin.parameters(), lr=base["learning_rate"])
    else:
        optimizer = torch.optim.SGD(twin.parameters(), lr=base["learning_rate"], momentum=0.9, nesterov=True)
    if channels_last:
        twin = twin.to(memory_format=torch.channels_last)
    twin.train()

    def step(X, y):
        optimizer.zero_grad(set_to_none=True)
        inputs = X.contiguous(memory_format=torch.channels_last) if channels_last else X
        torch.nn.functional.cross_entropy(twin(inputs), y).backward()
        optimizer.step()

    return step


def batch(batch_size, seed=0):
    """A random CIFAR-sized batch: float32 images (batch_size, 3, 32, 32) and labels in [0, 10)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch_size, 3, 32, 32), dtype=np.float32), rng.integers(0, 10, batch_size)


def _timed(contenders: dict, steps: int, batch_size: int) -> dict:
    """Images/s of each contender: the median of `steps` interleaved steps after one warm-up."""
    times = {key: [] for key in contenders}
    for step, args in contenders.values():  # warm-up: kernels chosen, buffers allocated
        step(*args)
    for _ in range(steps):
        for key, (step, args) in contenders.items():
            if len(contenders) > 1:
                settle()
            start = time.perf_counter()
            step(*args)
            times[key].append(time.perf_counter() - start)
    return {key: batch_size / float(np.median(t)) for key, t in times.items()}


def throughput(names, steps, batch_size, torch, workers=(1,), backends=("processes",)) -> dict:
    """{network: {contender: images/s}}: numcnn, torch, torch_cl; with workers N > 1 also
    numcnn_wN (processes), numcnn_wN_threads (with "threads" in backends), numcnn_1core_wN (one
    process on one core) and torch_wN (PyTorch), timed in the same block as the N workers."""
    X, y = batch(batch_size)
    results = {}
    for name in names:
        model = numcnn_model(name)
        torch_contenders = {}
        if torch is not None:
            Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
            twin = torch_twin(name, model, torch)
            torch_contenders["torch"] = (torch_step(twin, name, torch), (Xt, yt))
            torch_contenders["torch_cl"] = (torch_step(torch_twin(name, model, torch), name, torch, True), (Xt, yt))
        contenders = {"numcnn": (numcnn_step(model, name), (X, y)), **torch_contenders}
        results[name] = _timed(contenders, steps, batch_size)
        for n in (w for w in workers if w > 1):
            if unsplittable_reason(model):
                continue
            with contextlib.ExitStack() as running:
                block = {}
                for backend in backends:  # both kinds of workers wait idle while the other is timed
                    comm = running.enter_context(start_workers(model, n, backend))
                    key = f"numcnn_w{n}" + ("" if backend == "processes" else f"_{backend}")
                    block[key] = (numcnn_step(model, name, DataParallel(model, comm).loss), (X, y))
                # while workers run, this process has one BLAS thread and serial ops: one core's step
                block[f"numcnn_1core_w{n}"] = (numcnn_step(model, name), (X, y))
                if "torch" in torch_contenders:
                    block[f"torch_w{n}"] = torch_contenders["torch"]
                results[name].update(_timed(block, steps, batch_size))
    return results


def parse_backends(text: str) -> list[str]:
    """--backends' argparse type: "processes", "threads" or both, comma-separated; else ArgumentTypeError."""
    backends = text.split(",")
    if not backends or any(b not in ("processes", "threads") for b in backends):
        raise argparse.ArgumentTypeError(
            f"--backends takes processes and/or threads, like processes,threads, got {text!r}"
        )
    return backends


def parse_workers(text: str) -> list[int]:
    """--workers' argparse type: worker counts of at least 1, comma-separated ("1,2"); else ArgumentTypeError."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"--workers takes worker counts like 1,2, got {text!r}")
    return counts


def print_workers(names, speed, workers) -> None:
    """The data-parallel table: numcnn with N workers against one, and against PyTorch timed beside it."""
    counts = [n for n in workers if n > 1]
    if not counts:
        return
    print(
        "\nwhole-step data parallelism (numcnn.train.parallel), images/s; w1: one process, ops split over "
        "threads; wN: N worker processes; one core: one process, one thread, timed beside them"
    )
    for name in names:
        s = speed[name]
        cells = [f"{name:<12} w1 {s['numcnn']:7.0f}"]
        for n in counts:
            if f"numcnn_w{n}" not in s:
                cells.append(f"w{n}: the model cannot be split over workers")
                continue
            split = s[f"numcnn_w{n}"]
            threads = s.get(f"numcnn_w{n}_threads")
            threads_part = f"; threads {threads:.0f} ({threads / s['numcnn']:.2f}x w1)" if threads else ""
            torch_part = (
                f", torch beside it {s[f'torch_w{n}']:.0f} ({split / s[f'torch_w{n}']:.2f}x)"
                if f"torch_w{n}" in s
                else ""
            )
            one = s.get(f"numcnn_1core_w{n}")
            one_part = f"; {split / one:.2f}x one core's {one:.0f}" if one else ""
            cells.append(f"w{n} {split:7.0f} ({split / s['numcnn']:.2f}x w1{one_part}{threads_part}{torch_part})")
        print("  ".join(cells), flush=True)


def _peak_rss_mb() -> float:
    """This process image's peak resident memory. (Not getrusage's ru_maxrss: Linux carries
    that over exec from the forking parent, so a probe would report its parent's peak.)"""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _reset_peak_rss() -> bool:
    """Reset this process's peak resident memory (VmHWM) to its current one; False where Linux can't."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def memory_probe(framework: str, name: str, batch_size: int) -> dict:
    """This process's memory over training steps (MB): {"first": the first step's peak above the memory
    before it; "step": two later steps' peak above the memory before them (None where the peak cannot
    be reset); "process": the process's peak}."""
    X, y = batch(batch_size)
    model = numcnn_model(name)
    if framework == "numcnn":
        step, args = numcnn_step(model, name), (X, y)
    else:
        import torch

        torch.set_num_threads(2)
        step = torch_step(torch_twin(name, model, torch), name, torch)
        args = (torch.from_numpy(X), torch.from_numpy(y))
    before = _rss_mb()
    step(*args)
    first, process = _peak_rss_mb() - before, _peak_rss_mb()
    before = _rss_mb()
    if not _reset_peak_rss():
        return {"first": first, "step": None, "process": process}
    step(*args)
    step(*args)
    return {"first": first, "step": _peak_rss_mb() - before, "process": max(process, _peak_rss_mb())}


def peak_memory(names, batch_size, frameworks) -> dict:
    """{name: {framework: {"step", "first", "process"}}} in MB (see the module's docstring)."""
    results = {}
    for name in names:
        for framework in frameworks:
            output = subprocess.run(
                [sys.executable, "-m", "numcnn.bench.train", "--memory-probe", framework, name]
                + ["--batch-size", str(batch_size)],
                capture_output=True,
                text=True,
                timeout=900,
                env={**os.environ, "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)},
            )
            if output.returncode != 0:
                raise RuntimeError(output.stderr)
            results.setdefault(name, {})[framework] = json.loads(output.stdout.strip().splitlines()[-1])
    return results


MEMORY_KINDS = ("step", "first", "process")
MMAP_THRESHOLD = 128 * 1024


def _memory_cells(m: dict) -> str:
    """' | step | first | process' for numcnn and PyTorch, with numcnn / PyTorch ratios."""
    cells = []
    for kind in MEMORY_KINDS:
        ours, theirs = m["numcnn"][kind], m.get("torch", {}).get(kind)
        if ours is None:
            cells.append(f"{'-':>26}")
        elif theirs:
            cells.append(f"{ours:10.0f} {theirs:8.0f} {ours / theirs:6.2f}")
        else:
            cells.append(f"{ours:10.0f} {'-':>8} {'-':>6}")
    return " | " + " | ".join(cells)


def main(argv=None) -> int:
    """`numcnn bench train` (and benchmarks/bench_train.py): print throughput and peak memory; returns 0."""
    parser = argparse.ArgumentParser(prog="numcnn bench train", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--models", nargs="+", default=["threelayer", "resnet20", "airbench"], choices=list(RULES))
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument(
        "--workers",
        type=parse_workers,
        default=[1, 2],
        help="numcnn also with each step split over these numbers of worker processes (default 1,2)",
    )
    parser.add_argument(
        "--backends",
        type=parse_backends,
        default=["processes", "threads"],
        help="kinds of workers to time for --workers, interleaved (default processes,threads)",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--memory-probe", nargs=2, metavar=("FRAMEWORK", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe:
        print(json.dumps(memory_probe(*args.memory_probe, args.batch_size)))
        return 0
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}, BLAS: {blas_description()}")
    print(f"pytorch: {torch.__version__ + f', {torch.get_num_threads()} threads' if torch else 'not installed'}")
    print(
        f"training steps (forward, backward, update), float32, batch {args.batch_size}; "
        f"images/s, median of {args.steps}"
    )
    speed = throughput(args.models, args.steps, args.batch_size, torch, args.workers, args.backends)
    memory = (
        {} if args.no_memory else peak_memory(args.models, args.batch_size, ["numcnn"] + (["torch"] if torch else []))
    )
    header = f"{'network':<12} {'numcnn':>8} {'torch':>8} {'ratio':>6} {'torch CL':>9}"
    if memory:
        header += " | " + " | ".join(f"{kind + ' MB':>10} {'torch':>8} {'x':>6}" for kind in MEMORY_KINDS)
    print(header)
    print("-" * len(header))
    for name in args.models:
        s = speed[name]
        ratio = f"{s['numcnn'] / s['torch']:6.2f}" if "torch" in s else "     -"
        mem = _memory_cells(memory[name]) if name in memory else ""
        print(
            f"{name:<12} {s['numcnn']:8.0f} {s.get('torch', float('nan')):8.0f} {ratio} "
            f"{s.get('torch_cl', float('nan')):9.0f}{mem}",
            flush=True,
        )
    print_workers(args.models, speed, args.workers)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"images_per_sec": speed, "peak_memory_mb": memory}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
