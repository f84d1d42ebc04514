"""`numcnn bench scaling`: measure what the alpha-beta model needs, then project images/s for 1-64 workers.

    numcnn bench scaling [--models threelayer resnet20 airbench] [--batch-size 128] [--json F]

Measured on this machine: each network's training-step time per image on ONE
core (one BLAS thread, numcnn's threads 1) at per-worker batches 4..128, its
gradient bytes and batch-norm widths. Assumed: the links of bench.scaling.LINKS,
and a "this machine" link whose alpha and beta are given (--alpha-us, --gbytes-per-s)
from a measured exchange between local workers. The projection (bench/scaling.py)
is printed per network and link for the star that numcnn runs and for a ring.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from .. import nn
from .scaling import LINKS, Link, StepCosts, images_per_second, scaling_stop, step_seconds
from .train import RULES, batch, numcnn_model, numcnn_step

WORKERS = (1, 2, 4, 8, 16, 32, 64)


def one_core():
    """A context in which BLAS and numcnn's ops run on one thread: what each worker gets."""
    from threadpoolctl import threadpool_limits

    from ..ops.engine import threads

    class _OneCore:
        def __enter__(self):
            self.threads = threads.num_threads()
            threads.set_num_threads(1)
            self.limits = threadpool_limits(1)
            return self

        def __exit__(self, *exc):
            self.limits.restore_original_limits()
            threads.set_num_threads(self.threads)

    return _OneCore()


def batchnorm_widths(model) -> tuple[int, ...]:
    """num_features of every batch-norm layer of a module network (none in a dict model)."""
    net = getattr(model, "net", None)
    if net is None:
        return ()
    return tuple(m.num_features for m in net.modules() if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d))


def measure_costs(name: str, batches=(4, 8, 16, 32, 64, 128), repeats: int = 3) -> StepCosts:
    """StepCosts of a bench network: seconds per image of a step on one core, at each per-worker batch."""
    model = numcnn_model(name)
    step = numcnn_step(model, name)
    per_image = {}
    with one_core():
        for b in batches:
            X, y = batch(b)
            step(X, y)  # warm-up: buffers, kernels
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                step(X, y)
                times.append(time.perf_counter() - start)
            per_image[b] = float(np.median(times)) / b
    gradient_bytes = sum(np.asarray(v).nbytes for v in model.params.values())
    return StepCosts(per_image, int(gradient_bytes), batchnorm_widths(model), 3 * 32 * 32 * 4)


def projection_table(name: str, costs: StepCosts, batch_size: int, links) -> list[str]:
    """Lines: images/s for 1-64 workers per link and topology, and where scaling stops and why."""
    lines = [
        f"{name}: gradients {costs.gradient_bytes / 1e6:.2f} MB, {len(costs.batchnorm_channels)} batch norms, "
        f"one core {1 / costs.seconds_per_image[max(costs.seconds_per_image)]:.0f} images/s at batch "
        f"{max(costs.seconds_per_image)}",
        f"  {'link':<22}" + "".join(f"{p:>8}" for p in WORKERS) + "   best  (why it stops)",
    ]
    for link in links:
        for topology in ("star", "ring"):
            speeds = [images_per_second(costs, p, batch_size, link, topology) for p in WORKERS if p <= batch_size]
            best, why = scaling_stop(costs, batch_size, link, topology, most=max(WORKERS))
            label = f"{link.name} {topology}"
            lines.append(f"  {label:<22}" + "".join(f"{s:8.0f}" for s in speeds) + f"   {best:>4}  ({why})")
    return lines


def main(argv=None) -> int:
    """`numcnn bench scaling`: measure each model's step costs and print projected images/s; returns 0."""
    parser = argparse.ArgumentParser(prog="numcnn bench scaling", description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(RULES), choices=list(RULES))
    parser.add_argument("--batch-size", type=int, default=128, help="the global batch, split over the workers")
    parser.add_argument("--alpha-us", type=float, help="this machine's measured message latency (us)")
    parser.add_argument("--gbytes-per-s", type=float, help="this machine's measured bandwidth between workers")
    parser.add_argument("--json", help="also write the measured costs and projections to this file")
    args = parser.parse_args(argv)
    links = list(LINKS)
    if args.alpha_us is not None and args.gbytes_per_s is not None:
        links.insert(0, Link("this machine", args.alpha_us * 1e-6, args.gbytes_per_s * 1e9))
    print(f"global batch {args.batch_size} split over p workers; images/s projected (bench/scaling.py)")
    report = {}
    for name in args.models:
        costs = measure_costs(name)
        print("\n".join(projection_table(name, costs, args.batch_size, links)), flush=True)
        report[name] = {
            "seconds_per_image": costs.seconds_per_image,
            "gradient_bytes": costs.gradient_bytes,
            "batchnorm_channels": costs.batchnorm_channels,
            "projection": {
                f"{link.name} {t}": {p: step_seconds(costs, p, args.batch_size, link, t) for p in WORKERS}
                for link in links
                for t in ("star", "ring")
            },
        }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0
