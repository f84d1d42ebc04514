"""The run folder of `numcnn train`: refuse one that cannot hold this run, before anything is written."""

from __future__ import annotations

import os
from pathlib import Path

from ..io import load_checkpoint
from .config import CHANGEABLE_ON_RESUME, TrainConfig, UserError
from .solver import RUN_FOLDER_FILES


def _option_name(key: str) -> str:
    return "--dataset folder PATH" if key == "path" else "--" + key.replace("_", "-")


def _shown(value) -> str:
    """An option's value as it is typed: 64, 512,256, none; (default) for one left out."""
    if value is None:
        return "(default)"
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def check_resume_options(out: Path, config: TrainConfig) -> None:
    """Refuse to resume the run in `out` with options that define another run, naming each one.

    Another --seed or --val-size changes the split (validation images would leak into training);
    another --lr or schedule would be ignored by the restored optimizer state. Checked before
    anything is written. Checkpoints from before the options were recorded are compared on what
    their metadata holds (dataset, model, seed, validation split).
    """
    last = out / "last.npz"
    if not last.exists():
        return
    meta = load_checkpoint(last).state.get("metadata") or {}
    saved = meta.get("options") or {k: meta[k] for k in ("dataset", "model", "seed", "val_size") if k in meta}
    current = config.options()
    differences = [
        f"{_option_name(k)} {_shown(saved[k])} there, {_shown(current[k])} here"
        for k in saved
        if k in current and saved[k] != current[k]
    ]
    if differences:
        raise UserError(
            f"{out} is a run with other options ({'; '.join(differences)}): resume it with its own "
            f"options (only {', '.join(_option_name(k) for k in CHANGEABLE_ON_RESUME)} may change), "
            f"or start a new run with another --out"
        )


def check_run_folder(out: Path, resume: bool) -> None:
    """Refuse an --out that is a file, lies under one, cannot be written, or holds another run."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder: choose a folder for the run")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise UserError(f"--out {out}: {parent} is a file, not a folder: choose a folder for the run")
    existing = out if out.exists() else next((p for p in out.parents if p.exists()), Path("."))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(
            f"--out {out}: cannot write in {existing} (permission denied): choose a folder you can write to"
        )
    used = run_files_in(out)
    if used and not resume:
        raise UserError(f"{out} already holds a run ({used[0]}): pass --resume to continue it, or choose another --out")


def run_files_in(out: Path) -> list[str]:
    """The files numcnn writes that `out` holds (temporary ones of interrupted writes included)."""
    if not out.is_dir():
        return []
    found = [name for name in RUN_FOLDER_FILES if (out / name).exists()]
    return found + sorted(p.name for name in RUN_FOLDER_FILES for p in out.glob(f".{name}.*.tmp"))
