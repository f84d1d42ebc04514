"""TrainConfig: what a training run is, one typed field per `numcnn train` option.

    config = TrainConfig(model="fc", hidden=(512, 256), optimizer="nesterov", epochs=3)
    run = prepare_run(config)          # numcnn.train.run: data, model and Solver
    run.solver.train()

The CLI builds one from its parsed arguments, a sweep from its fixed options and
a trial's values, a Python user directly. Every check is made when it is built
and raises UserError with the line `numcnn train` prints (the option named as it
is typed: --lr, --momentum, ...): numbers out of range, and options the chosen
update rule, schedule, dataset or model would ignore. --freeze, --freeze-bn-weight
and --whiten are checked on the built model (run.make_solver).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

from .. import models

DATASETS = ("digits", "mnist", "fashion", "cifar10", "folder")
ASSIGNMENT_MODELS = ("threelayer", "fc", "twolayer")
FC_MODELS = ("fc", "twolayer")  # sized by --hidden, not --width
DEFAULT_LR = {
    "sgd": 0.05,
    "sgd_momentum": 0.05,
    "nesterov": 0.05,
    "rmsprop": 1e-3,
    "adagrad": 1e-2,
    "adam": 2e-3,
    "adamw": 2e-3,
}
MOMENTUM_RULES = ("sgd_momentum", "nesterov")
SGD_RULES = ("sgd",) + MOMENTUM_RULES
SCHEDULES = ("none", "step", "cosine", "warmup", "onecycle")
AUGMENTS = ("none", "crop", "flip", "standard", "cutout")
TTA = ("none", "flip", "flip-translate")
# Options a resumed run may change (recorded in its checkpoints); every other one defines the run
# (the number of workers changes only rounding: a resume with another says so, see solver_state)
CHANGEABLE_ON_RESUME = ("epochs", "time_budget", "quiet", "tta", "data_dir", "download", "workers", "tensorboard")


class UserError(ValueError):
    """A mistake in what was asked for; the CLI prints it without a traceback."""


def model_names() -> list[str]:
    """Every name `numcnn train --model` accepts: the registered networks and the assignment's models."""
    return sorted(set(models.available()) | set(ASSIGNMENT_MODELS))


@dataclass(frozen=True)
class TrainConfig:
    """Every `numcnn train` option (the run folder, --out, is given to prepare_run apart).

    None means "left out": the option's default then depends on others (lr on the optimizer,
    momentum 0.9, lr_decay 0.95, warmup 1 epoch, hidden on the model, width on the network).
    val_size is a fraction in (0, 1) or a whole number of images (stored as an int).
    """

    model: str = "smallcnn"
    dataset: str = "digits"
    path: Path | None = None  # --dataset folder PATH
    data_dir: Path | None = None
    download: bool = False
    image_size: int | None = None
    epochs: int = 8
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float = 0.0
    schedule: str = "none"
    lr_decay: float | None = None
    warmup: float | None = None
    augment: str = "none"
    label_smoothing: float = 0.0
    tta: str = "none"
    decoupled: bool = False
    lookahead: int | None = None
    ema: float | None = None
    freeze: tuple[str, ...] = ()
    freeze_bn_weight: bool = False
    whiten: bool = False
    grad_clip: float | None = None
    hidden: tuple[int, ...] | None = None
    norm: str | None = None
    dropout: float = 0.0
    width: int | None = None
    val_size: float = 0.1
    seed: int = 0
    resume: bool = False
    time_budget: float | None = None
    quiet: bool = False
    tensorboard: bool = False  # event files in the run folder's tensorboard/ (needs one: prepare_run's out)
    workers: int | str = "auto"  # a number of ranks, or "auto" (see parallel.auto; train() measures)

    def __post_init__(self):
        # Sequences from argparse or a sweep arrive as lists: keep them hashable and immutable
        object.__setattr__(self, "freeze", tuple(self.freeze))
        if self.hidden is not None:
            object.__setattr__(self, "hidden", tuple(self.hidden))
        check_numbers(self)
        check_workers(self.workers)
        if self.val_size >= 1:
            object.__setattr__(self, "val_size", int(self.val_size))
        refuse_ignored_options(self)

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in dataclasses.fields(cls))

    def options(self) -> dict:
        """The options that define a run, as JSON values (a resumed run must repeat each of them).

        Stored as checkpoint metadata "options"; the keys and values are those numcnn has always
        written (every option but --out, --resume and CHANGEABLE_ON_RESUME), so old run folders resume.
        """
        chosen = {
            name: getattr(self, name)
            for name in sorted(self.option_names())
            if name not in CHANGEABLE_ON_RESUME + ("resume",)
        }
        return json.loads(json.dumps(chosen, default=str))


# -- numbers --------------------------------------------------------------------------
# option: (field, test, what it must be); fields left out (None) are not tested.
# argparse's float() takes "nan" and "inf": every range check is written so that NaN fails it.
_RANGES = {
    "--epochs": ("epochs", lambda v: v > 0, "positive"),
    "--batch-size": ("batch_size", lambda v: v > 0, "positive"),
    "--width": ("width", lambda v: v > 0, "positive"),
    "--image-size": ("image_size", lambda v: v > 0, "positive"),
    "--lookahead": ("lookahead", lambda v: v > 0, "a positive whole number of steps"),
    "--seed": ("seed", lambda v: 0 <= v < 2**32, "a whole number from 0 to 2**32 - 1"),
    "--lr": ("lr", lambda v: 0 < v < math.inf, "a finite number above 0"),
    "--lr-decay": ("lr_decay", lambda v: 0 < v < math.inf, "a finite number above 0 (a factor per epoch)"),
    "--time-budget": ("time_budget", lambda v: 0 < v < math.inf, "a finite number of seconds above 0"),
    "--grad-clip": ("grad_clip", lambda v: 0 < v < math.inf, "a finite number above 0"),
    "--warmup": ("warmup", lambda v: 0 <= v < math.inf, "a finite number of epochs, at least 0"),
    "--weight-decay": ("weight_decay", lambda v: 0 <= v < math.inf, "a finite number, at least 0"),
    "--momentum": ("momentum", lambda v: 0 <= v < 1, "in [0, 1)"),
    "--dropout": ("dropout", lambda v: 0 <= v < 1, "in [0, 1)"),
    "--label-smoothing": ("label_smoothing", lambda v: 0 <= v < 1, "in [0, 1)"),
    "--ema": ("ema", lambda v: 0 < v < 1, "a decay in (0, 1), such as 0.999"),
}
_WHOLE = ("epochs", "batch_size", "width", "image_size", "lookahead", "seed")


def _is_number(value, whole: bool) -> bool:
    kinds = (int,) if whole else (int, float)
    return isinstance(value, kinds) and not isinstance(value, bool)


def check_numbers(config: TrainConfig) -> None:
    """Refuse numeric options no run can use, naming the first one (UserError)."""
    checks = {option: (getattr(config, field), test, expected) for option, (field, test, expected) in _RANGES.items()}
    for option, (field, _, _) in _RANGES.items():
        value = getattr(config, field)
        if value is not None and not _is_number(value, field in _WHOLE):
            kind = "a whole number" if field in _WHOLE else "a number"
            raise UserError(f"{option} must be {kind}, got {value!r}")
    check_ranges(checks, config.val_size)


def check_ranges(checks: dict, val_size: float) -> None:
    """Raise UserError for the first option whose value fails its test, and for a bad --val-size.

    checks: option -> (value, test, what it must be); a value of None is an option left out.
    """
    for option, (value, test, expected) in checks.items():
        if value is not None and not test(value):
            raise UserError(f"{option} must be {expected}, got {value}")
    if not _is_number(val_size, whole=False) or not (
        0 < val_size < 1 or (val_size >= 1 and float(val_size).is_integer())
    ):
        raise UserError(f"--val-size is a fraction in (0, 1) or a whole number of images, got {val_size}")


def check_workers(workers) -> None:
    """--workers is a positive whole number or 'auto' (UserError naming it otherwise)."""
    if workers == "auto":
        return
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise UserError(f"--workers must be a positive whole number or 'auto', got {workers!r}")


# -- options that would be ignored ----------------------------------------------------------
def refuse_ignored_options(config: TrainConfig) -> None:
    """One line (UserError) for an option the run would not act on, decided from the options alone."""
    refuse_ignored_training_options(config)
    refuse_model_options(config.model, config.hidden, config.norm, config.dropout, config.width)


def refuse_ignored_training_options(config: TrainConfig) -> None:
    """One line for an option that the chosen update rule, schedule or dataset would ignore."""
    c = config
    if c.decoupled and c.optimizer not in SGD_RULES:
        raise UserError(
            f"--decoupled applies to {', '.join(SGD_RULES)}; {c.optimizer} "
            + ("always decouples its weight decay" if c.optimizer == "adamw" else "takes --weight-decay as L2")
        )
    if c.momentum is not None and c.optimizer not in MOMENTUM_RULES:
        raise UserError(f"--momentum applies to {' and '.join(MOMENTUM_RULES)}; {c.optimizer} has no momentum term")
    if c.lr_decay is not None and c.schedule != "step":
        raise UserError(f"--lr-decay applies to --schedule step; the {c.schedule!r} schedule does not use it")
    if c.warmup is not None and c.schedule != "warmup":
        raise UserError(f"--warmup applies to --schedule warmup; the {c.schedule!r} schedule has no warm-up")
    if c.data_dir is not None and c.dataset in ("digits", "folder"):
        raise UserError(
            f"--data-dir applies to mnist, fashion and cifar10; {c.dataset} "
            + ("is bundled" if c.dataset == "digits" else "reads the PATH after its name")
        )
    if c.download and c.dataset in ("digits", "folder"):
        raise UserError(f"--download applies to mnist, fashion and cifar10; {c.dataset} has nothing to fetch")
    if c.image_size is not None and c.dataset != "folder":
        raise UserError(f"--image-size applies to --dataset folder PATH (your own images), not {c.dataset}")


def refuse_model_options(name: str, hidden, norm, dropout, width) -> None:
    """One line (UserError) for a model option this model would not act on.

    Parameters
    ----------
    name : the model (model_names()).
    hidden : hidden sizes (fc: any number of layers; twolayer, threelayer: one), or None.
    norm : fc's normalization, or None.
    dropout : fc's drop probability (0: none).
    width : a convolutional model's first-layer channels, or None.
    """
    if hidden is not None and name not in ASSIGNMENT_MODELS:
        raise UserError(f"--hidden applies to {', '.join(ASSIGNMENT_MODELS)}; {name} has no hidden layers to size")
    if hidden is not None and name != "fc" and len(hidden) != 1:
        raise UserError(f"--hidden: {name} has one hidden layer; give one size, got {','.join(map(str, hidden))}")
    if norm is not None and name != "fc":
        raise UserError(f"--norm applies to fc only; {name} has no normalization to choose")
    if dropout and name != "fc":
        raise UserError(f"--dropout applies to fc only; {name} has no dropout layers")
    if width is not None and name in FC_MODELS:
        raise UserError(f"--width applies to convolutional models; {name}'s layers are sized by --hidden")
