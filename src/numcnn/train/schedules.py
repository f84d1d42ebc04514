"""Learning-rate schedules: small callables from training progress to a multiplier.

A schedule is called with the fractional epoch e (epoch + step/steps_per_epoch)
and returns the factor the base learning rate is multiplied by:

    step_decay(0.95)                 0.95 ** floor(e)         (CS231n's lr_decay, per epoch)
    cosine(total)                    final + (1 - final) * (1 + cos(pi * e / total)) / 2
    warmup(warm, total, 'linear')    0 -> 1 over `warm` epochs, then linear (or cosine) to `final`
    one_cycle(total, peak=0.25)      start -> 1 at peak*total, then down to `final` (Smith's 1cycle)

They are plain frozen dataclasses: compared by value and printed with their
settings. Checkpoints do not store them: a resumed Solver is given its
schedule again, as it is given its model and data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class StepDecay:
    """decay ** floor(epoch / every): the CS231n Solver's lr_decay applied after every epoch."""

    decay: float = 0.95
    every: float = 1.0

    def __call__(self, epoch: float) -> float:
        return self.decay ** math.floor(epoch / self.every + 1e-9)


@dataclass(frozen=True)
class Cosine:
    """Cosine annealing from 1 to `final` over `total` epochs (SGDR without restarts)."""

    total: float
    final: float = 0.0

    def __call__(self, epoch: float) -> float:
        progress = min(max(epoch / self.total, 0.0), 1.0)
        return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class Warmup:
    """Linear warm-up from 0 to 1 over `warm` epochs, then decay to `final` at `total`."""

    warm: float
    total: float
    decay: str = "linear"  # or "cosine"
    final: float = 0.0

    def __call__(self, epoch: float) -> float:
        if epoch < self.warm:
            return epoch / self.warm
        progress = min(max((epoch - self.warm) / max(self.total - self.warm, 1e-12), 0.0), 1.0)
        if self.decay == "cosine":
            return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 + (self.final - 1.0) * progress


@dataclass(frozen=True)
class OneCycle:
    """Up from `start` to 1 at peak*total epochs, then down to `final` at total (linear pieces)."""

    total: float
    peak: float = 0.25
    start: float = 0.1
    final: float = 0.0

    def __call__(self, epoch: float) -> float:
        top = self.peak * self.total
        if epoch < top:
            return self.start + (1.0 - self.start) * epoch / top
        progress = min((epoch - top) / max(self.total - top, 1e-12), 1.0)
        return 1.0 + (self.final - 1.0) * progress


def step_decay(decay: float = 0.95, every: float = 1.0) -> StepDecay:
    """A StepDecay: the multiplier `decay ** floor(e / every)` at fractional epoch e.

    With every=1 it is CS231n's lr_decay, applied after every epoch.
    """
    return StepDecay(decay, every)


def cosine(total: float, final: float = 0.0) -> Cosine:
    """A Cosine schedule: from 1 down to `final` over `total` epochs, then `final`.

    multiplier(e) = final + (1 - final) * (1 + cos(pi * e / total)) / 2
    """
    return Cosine(total, final)


def warmup(warm: float, total: float, decay: str = "linear", final: float = 0.0) -> Warmup:
    """A Warmup schedule: linear from 0 to 1 over `warm` epochs, then down to `final` at `total`.

    decay, the shape of the way down, is "linear" or "cosine"; raises ValueError for
    anything else.
    """
    if decay not in ("linear", "cosine"):
        raise ValueError(f"decay must be 'linear' or 'cosine', got {decay!r}")
    return Warmup(warm, total, decay, final)


def one_cycle(total: float, peak: float = 0.25, start: float = 0.1, final: float = 0.0) -> OneCycle:
    """A OneCycle schedule (Smith's 1cycle): linear from `start` up to 1, then down to `final`.

    The peak is at `peak * total` epochs and the end at `total`.
    """
    return OneCycle(total, peak, start, final)
