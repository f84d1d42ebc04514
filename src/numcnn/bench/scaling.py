"""How far data parallelism scales: an alpha-beta model of a training step, fed with measurements.

A step of synchronous data parallelism over p workers, each on b = B/p rows
of a global batch of B images, costs (no overlap of compute and messages):

    T(p) = b * t_img(b)                          compute on one core, measured per image at batch b
         + gradients(p, G)                       combining G bytes of gradients, sending back weights
         + L * [allgather(p, 8(2C+1)) + allgather(p, 16C)]   sync batch norm (float64: count, means and
                                                 squared deviations in one; the backward's two sums)
         + (p - 1) * b * image_bytes / beta      the root sends each worker its rows

with a message of n bytes costing alpha + n / beta (latency alpha, bandwidth
beta). Two ways to combine gradients:

    star  (what numcnn runs: every rank sends its gradients to the root, which sums them in rank
          order and sends the new weights back): 2 * (p - 1) * (alpha + G / beta) on the root's link
    ring  (reduce-scatter + allgather, as NCCL/MPI use for big messages):
          2 * (p - 1) * alpha + 2 * (p - 1) / p * G / beta

and a small allgather of n bytes by recursive doubling: ceil(log2 p) * alpha + (p - 1) * n / beta.
images/s = B / T(p). Scaling stops where a term that grows with p (the star's
gradient traffic, the batch-norm latency L * log2 p * alpha) or a shrinking
per-worker batch (t_img grows as b falls: GEMMs too thin to run at speed)
outweighs the compute it divides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["LINKS", "Link", "StepCosts", "images_per_second", "scaling_stop", "step_seconds"]


@dataclass(frozen=True)
class Link:
    """A network: latency alpha (s) and bandwidth beta (bytes/s)."""

    name: str
    alpha: float
    beta: float


# Typical figures (assumptions, not measurements): TCP over 1 and 10 Gb/s Ethernet, RDMA over 100 Gb/s.
LINKS = (
    Link("1 Gb/s", 50e-6, 1e9 / 8),
    Link("10 Gb/s", 20e-6, 10e9 / 8),
    Link("100 Gb/s", 2e-6, 100e9 / 8),
)


@dataclass(frozen=True)
class StepCosts:
    """What a network needs per step.

    seconds_per_image: {per-worker batch b: seconds per image of a training step on one core}
    gradient_bytes: G, the parameters' bytes; batchnorm_channels: C of each batch-norm layer;
    image_bytes: one input image's bytes.
    """

    seconds_per_image: dict[int, float]
    gradient_bytes: int
    batchnorm_channels: tuple[int, ...]
    image_bytes: int

    def compute_seconds(self, rows: float) -> float:
        """rows * t_img(rows), t_img interpolated in log-log between measured batches (clamped at the ends)."""
        sizes = sorted(self.seconds_per_image)
        if rows <= sizes[0]:
            return rows * self.seconds_per_image[sizes[0]]
        if rows >= sizes[-1]:
            return rows * self.seconds_per_image[sizes[-1]]
        hi = next(s for s in sizes if s >= rows)
        lo = sizes[sizes.index(hi) - 1]
        t_lo, t_hi = self.seconds_per_image[lo], self.seconds_per_image[hi]
        w = math.log(rows / lo) / math.log(hi / lo)
        return rows * math.exp((1 - w) * math.log(t_lo) + w * math.log(t_hi))


def allgather_seconds(p: int, nbytes: float, link: Link) -> float:
    """Recursive doubling: ceil(log2 p) rounds of latency, (p - 1) contributions received."""
    return 0.0 if p == 1 else math.ceil(math.log2(p)) * link.alpha + (p - 1) * nbytes / link.beta


def gradient_seconds(p: int, nbytes: float, link: Link, topology: str) -> float:
    """Combining gradients of nbytes over p workers and handing every worker the result."""
    if p == 1:
        return 0.0
    if topology == "star":
        return 2 * (p - 1) * (link.alpha + nbytes / link.beta)
    if topology == "ring":
        return 2 * (p - 1) * link.alpha + 2 * (p - 1) / p * nbytes / link.beta
    raise ValueError(f"topology must be 'star' or 'ring', got {topology!r}")


def step_seconds(costs: StepCosts, p: int, batch: int, link: Link, topology: str = "star") -> dict[str, float]:
    """The terms of one step's time over p workers on a global batch of `batch` images (seconds)."""
    rows = batch / p
    batchnorm = sum(  # float64: count, C means and C squared deviations in one exchange; backward 2C sums
        allgather_seconds(p, 8 * (2 * c + 1), link) + allgather_seconds(p, 16 * c, link)
        for c in costs.batchnorm_channels
    )
    terms = {
        "compute": costs.compute_seconds(rows),
        "gradients": gradient_seconds(p, costs.gradient_bytes, link, topology),
        "batchnorm": batchnorm,
        "batch": (p - 1) * rows * costs.image_bytes / link.beta if p > 1 else 0.0,
    }
    terms["total"] = sum(terms.values())
    return terms


def images_per_second(costs: StepCosts, p: int, batch: int, link: Link, topology: str = "star") -> float:
    """Projected training throughput over p workers: `batch / step_seconds(...)["total"]`."""
    return batch / step_seconds(costs, p, batch, link, topology)["total"]


def scaling_stop(costs: StepCosts, batch: int, link: Link, topology: str = "star", most: int = 1024) -> tuple[int, str]:
    """The worker count (a power of two up to `most`) of the highest throughput, and the term that
    grows fastest from there to twice as many workers: why adding workers stops paying."""
    counts = [2**k for k in range(int(math.log2(most)) + 1) if 2**k <= batch]
    best = max(counts, key=lambda p: images_per_second(costs, p, batch, link, topology))
    if best == counts[-1]:
        return best, "the batch: one image per worker" if best == batch else f"still rising at {best} workers"
    now, then = step_seconds(costs, best, batch, link, topology), step_seconds(costs, 2 * best, batch, link, topology)
    growth = {k: then[k] - now[k] for k in ("gradients", "batchnorm", "batch")}
    growth["per-worker batch"] = then["compute"] - now["compute"]  # negative unless t_img worsens
    return best, max(growth, key=growth.get)
