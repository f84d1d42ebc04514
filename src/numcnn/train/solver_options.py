"""SolverOptions: the Solver's keyword arguments, with their defaults, checked once.

The assignment's keywords (update_rule ... verbose) keep its defaults; the rest are
numcnn's (see Solver). Every numeric keyword is checked here: a ValueError names it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import optim


@dataclass(frozen=True)
class SolverOptions:
    """The Solver's keyword arguments with their defaults, checked once when built.

    `Solver(model, data, **kwargs)` builds one with from_keywords and keeps it as
    solver.options; each field is the keyword of its name (numcnn.train.solver's docstring
    lists them). Raises ValueError naming the keyword for one that is unknown, a number
    out of its range, an unknown update rule or sampling, inconsistent workers, or
    lr_decay given together with a schedule.
    """

    # the assignment's
    update_rule: str | Callable = "sgd"
    optim_config: dict | None = None
    lr_decay: float = 1.0
    batch_size: int = 100
    num_epochs: int = 10
    num_train_samples: int | None = 1000
    num_val_samples: int | None = None
    checkpoint_name: str | None = None
    print_every: int = 10
    verbose: bool = True
    # numcnn's
    seed: int | None = None
    sampling: str = "shuffle"
    augment: Callable | None = None
    schedule: Callable | None = None
    grad_clip: float | None = None
    callbacks: Any = ()
    early_stopping: int | None = None
    time_budget: float | None = None
    checkpoint_dir: Any = None
    resume: bool = False
    metrics_log: Any = None
    progress: bool | None = None
    restore_best: bool = True
    metadata: dict | None = None
    frozen: Any = ()
    lr_scale: dict | None = None
    workers: int = 1
    worker_backend: str = "auto"
    communicator: Any = None

    @classmethod
    def from_keywords(cls, kwargs: dict) -> SolverOptions:
        """The options of Solver(model, data, **kwargs); an unknown keyword is a ValueError listing them all."""
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise ValueError(f"Unrecognized arguments {unknown}; Solver takes {', '.join(sorted(names))}")
        return cls(**kwargs)

    def __post_init__(self):
        _check_numbers(self, self.optim_config or {})
        if not callable(self.update_rule) and self.update_rule not in optim.UPDATE_RULES:
            raise ValueError(f'Invalid update_rule "{self.update_rule}"; choose from {", ".join(optim.UPDATE_RULES)}')
        if self.sampling not in ("shuffle", "replacement"):
            raise ValueError(f"sampling must be 'shuffle' or 'replacement', got {self.sampling!r}")
        _check_workers(self)
        if self.schedule is not None and self.lr_decay != 1.0:
            raise ValueError(
                f"lr_decay={self.lr_decay} and schedule both set the learning rate; give one "
                f"(schedules.step_decay is lr_decay as a schedule)"
            )

    def rule(self) -> tuple[str, Callable]:
        """(name, function) of the update rule."""
        if callable(self.update_rule):
            return self.update_rule.__name__, self.update_rule
        return self.update_rule, optim.UPDATE_RULES[self.update_rule]


# -- numeric keywords ---------------------------------------------------------------
# Each is refused with one line naming it: a negative lr_decay turns descent into ascent,
# a NaN or infinite one poisons every later step without an error.
_WHOLE = {
    "batch_size": (1, False),
    "num_epochs": (0, False),
    "print_every": (1, False),
    "num_train_samples": (1, True),
    "num_val_samples": (1, True),
    "early_stopping": (1, True),
    "seed": (0, True),
    "workers": (1, False),
}
_POSITIVE = {"lr_decay": False, "time_budget": True, "grad_clip": True}
_FRACTIONS = ("momentum", "beta1", "beta2", "decay_rate")  # optimizer settings in [0, 1)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _check_numbers(options: SolverOptions, optim_config: dict) -> None:
    """Refuse numeric Solver keywords no run can use; the ValueError names the keyword."""
    for name, (minimum, optional) in _WHOLE.items():
        value = getattr(options, name)
        if value is None and optional:
            continue
        if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)) or value < minimum:
            kind = "a positive int" if minimum == 1 else "an int of at least 0"
            raise ValueError(f"{name} must be {kind}{' or None' if optional else ''}, got {value!r}")
    for name, optional in _POSITIVE.items():
        value = getattr(options, name)
        if value is None and optional:
            continue
        if not _is_number(value) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number above 0{' or None' if optional else ''}, got {value!r}")
    for key, value in optim_config.items():
        _check_optim_setting(key, value)
    for pattern, factor in (options.lr_scale or {}).items():
        if not _is_number(factor) or not math.isfinite(factor) or factor < 0:
            raise ValueError(f"lr_scale[{pattern!r}] must be a finite number of at least 0, got {factor!r}")


def _check_optim_setting(key: str, value) -> None:
    if not _is_number(value):
        return
    name = f"optim_config[{key!r}]"
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if key == "learning_rate" and value <= 0:
        raise ValueError(f"{name} must be above 0, got {value!r}")
    if key in ("weight_decay", "decoupled_weight_decay", "epsilon") and value < 0:
        raise ValueError(f"{name} must be at least 0, got {value!r}")
    if key in _FRACTIONS and not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


def _check_workers(options: SolverOptions) -> None:
    """workers, worker_backend and communicator: one way to name the ranks, and enough rows for them."""
    from .parallel import BACKENDS, Communicator

    if options.worker_backend not in BACKENDS:
        raise ValueError(f"worker_backend must be one of {', '.join(BACKENDS)}, got {options.worker_backend!r}")
    comm = options.communicator
    if comm is not None:
        if not isinstance(comm, Communicator) or not comm.is_root:
            raise ValueError(f"communicator must be the root's (rank 0) numcnn Communicator, got {comm!r}")
        if options.workers != 1:
            raise ValueError("give workers or communicator, not both: the communicator's size is the workers")
    ranks = comm.size if comm is not None else options.workers
    if options.batch_size < ranks:
        raise ValueError(f"batch_size {options.batch_size} cannot be split over {ranks} workers")
