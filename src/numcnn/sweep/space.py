"""Search spaces: which `numcnn train` options a sweep varies, and how.

A space is a small TOML file, one table per option, named as the option's
argument (lr, weight_decay, width, hidden, dropout, batch_size, ...):

    [lr]
    type = "float"        # float, int or categorical
    low = 1e-4
    high = 1e-2
    log = true            # sample the exponent uniformly

    [width]
    type = "categorical"
    choices = [16, 32, 48]

Without a file, a sweep searches the learning rate around the optimizer's
default and the model's own options (default_space).
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

TRAIN_OPTIONS = {  # option -> how its value is written on the command line
    "lr": float,
    "weight_decay": float,
    "momentum": float,
    "dropout": float,
    "label_smoothing": float,
    "width": int,
    "batch_size": int,
    "epochs": int,
    "warmup": float,
    "lr_decay": float,
    "hidden": str,
    "optimizer": str,
    "schedule": str,
    "augment": str,
    "norm": str,
}

# Each model's own options; the learning rate's range comes from the optimizer (default_space).
_NETWORK = {
    "weight_decay": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
    "label_smoothing": {"type": "float", "low": 0.0, "high": 0.2},
}
MODEL_SPACES = {
    "smallcnn": {
        "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-3, "log": True},
        "width": {"type": "categorical", "choices": [16, 24, 32]},
    },
    "threelayer": {
        "weight_decay": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
        "width": {"type": "categorical", "choices": [16, 32, 64]},
        "hidden": {"type": "categorical", "choices": ["100", "200", "500"]},
    },
    "fc": {
        "hidden": {"type": "categorical", "choices": ["256,128", "512,256", "1024,512"]},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "norm": {"type": "categorical", "choices": ["batchnorm", "layernorm"]},
    },
    "vgg": {
        "weight_decay": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
        "width": {"type": "categorical", "choices": [16, 24, 32]},
    },
    "twolayer": {
        "hidden": {"type": "categorical", "choices": ["50", "100", "200"]},
        "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
    },
}


def default_space(model: str, optimizer: str = "adam") -> dict:
    """The learning rate log-uniform from a tenth to five times the optimizer's default, and the model's options."""
    from ..train.config import DEFAULT_LR

    lr = DEFAULT_LR.get(optimizer, 1e-3)
    return {"lr": {"type": "float", "low": lr / 10, "high": lr * 5, "log": True}, **MODEL_SPACES.get(model, _NETWORK)}


_KEYS = {
    "float": {"type", "low", "high", "log"},
    "int": {"type", "low", "high", "log"},
    "categorical": {"type", "choices"},
}


def check_space(space: dict, source: str = "space") -> dict:
    """Validate a space's options and distributions, naming the problem."""
    if not space:
        raise ValueError(f"{source}: the search space is empty")
    for name, spec in space.items():
        if name not in TRAIN_OPTIONS:
            raise ValueError(
                f"{source}: [{name}] is not an option a sweep can vary; choose from {', '.join(sorted(TRAIN_OPTIONS))}"
            )
        if not isinstance(spec, dict):  # `lr = 0.1` at the top level, not a table
            raise ValueError(
                f"{source}: {name} must be a table ([{name}] with type = ... on the lines below), got {name} = {spec!r}"
            )
        kind = spec.get("type")
        if kind not in _KEYS:
            raise ValueError(f"{source}: [{name}] type must be 'float', 'int' or 'categorical', got {kind!r}")
        unknown = sorted(set(spec) - _KEYS[kind])
        if unknown:
            raise ValueError(
                f"{source}: [{name}] has {', '.join(unknown)}, not a key of a {kind} range "
                f"(keys: {', '.join(sorted(_KEYS[kind]))})"
            )
        if kind == "categorical":
            _check_choices(name, spec.get("choices"), source)
        else:
            _check_range(name, spec, source)
        for value in spec.get("choices", []) + [spec[k] for k in ("low", "high") if k in spec]:
            _check_value(name, value, source)
    return space


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_range(name: str, spec: dict, source: str) -> None:
    """low < high, both finite numbers; log = true (a boolean) only over positive values."""
    if "low" not in spec or "high" not in spec:
        raise ValueError(f"{source}: [{name}] needs low and high, got {spec}")
    low, high = spec["low"], spec["high"]
    if not (_is_number(low) and _is_number(high) and math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{source}: [{name}] low and high must be finite numbers, got low = {low!r}, high = {high!r}")
    if not low < high:
        raise ValueError(f"{source}: [{name}] needs low < high, got {spec}")
    if not isinstance(spec.get("log", False), bool):
        raise ValueError(f"{source}: [{name}] log must be true or false, got {spec['log']!r}")
    if spec.get("log") and low <= 0:  # log-uniform: the exponent is sampled, and log(0) is -inf
        raise ValueError(f"{source}: [{name}] with log = true needs low > 0, got {low}")


def _check_choices(name: str, choices, source: str) -> None:
    """A non-empty list of plain values (`choices = "abc"` is a string, not three choices)."""
    if not isinstance(choices, list):
        raise ValueError(f"{source}: [{name}] choices must be a list like [16, 32], got {choices!r}")
    if not choices:
        raise ValueError(f"{source}: [{name}] needs a non-empty choices list")
    for value in choices:
        if (
            not isinstance(value, (str, int, float))
            or isinstance(value, bool)
            or (isinstance(value, float) and not math.isfinite(value))
        ):
            raise ValueError(f"{source}: [{name}] choices must be numbers or strings, got {value!r}")


def _check_value(name: str, value, source: str) -> None:
    """A value `numcnn train` would refuse, refused now rather than in every trial."""
    from ..train.config import AUGMENTS, SCHEDULES
    from ..train.optim import UPDATE_RULES

    named = {"optimizer": UPDATE_RULES, "schedule": SCHEDULES, "augment": AUGMENTS, "norm": ("batchnorm", "layernorm")}
    if name in named and value not in named[name]:
        raise ValueError(f"{source}: [{name}] {value!r} is not one of {', '.join(named[name])}")
    if TRAIN_OPTIONS[name] is int and not (isinstance(value, int) and value >= 1):
        raise ValueError(f"{source}: [{name}] values must be positive integers, got {value!r}")
    if TRAIN_OPTIONS[name] is float and not _is_number(value):
        raise ValueError(f"{source}: [{name}] values must be numbers, got {value!r}")
    if name == "hidden":
        try:
            as_train_arguments({"hidden": value})
        except ValueError:
            raise ValueError(f'{source}: [hidden] values are sizes like "512,256", got {value!r}') from None


def load_space(path=None, model: str = "smallcnn", optimizer: str = "adam") -> dict:
    """A space from a TOML file, or the model's default for this optimizer."""
    if path is None:
        return check_space(default_space(model, optimizer), f"the default space of {model}")
    path = Path(path)
    try:
        space = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such space file") from None
    except OSError as error:  # a folder, or unreadable
        raise ValueError(f"{path}: cannot read the space file ({error.strerror})") from None
    except UnicodeDecodeError as error:  # TOML is UTF-8; say which file, not just the codec's complaint
        raise ValueError(
            f"{path}: not a UTF-8 text file (byte {error.object[error.start]:#04x} at "
            f"offset {error.start}); a space file is TOML"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error})") from None
    return check_space(space, str(path))


def suggest(trial, space: dict) -> dict:
    """Draw one value per option from an Optuna trial."""
    values = {}
    for name, spec in space.items():
        if spec["type"] == "float":
            values[name] = trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False))
        elif spec["type"] == "int":
            values[name] = trial.suggest_int(name, spec["low"], spec["high"], log=spec.get("log", False))
        else:
            values[name] = trial.suggest_categorical(name, spec["choices"])
    return values


def as_train_arguments(values: dict) -> dict:
    """Sweep values as `numcnn train` parses them (hidden '512,256' -> (512, 256))."""
    arguments = dict(values)
    if "hidden" in arguments:
        arguments["hidden"] = tuple(int(v) for v in str(arguments["hidden"]).split(","))
    return arguments
