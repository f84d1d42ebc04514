"""A Solver's training state: what a checkpoint holds, and how a run continues from one.

    state = solver.state_dict()     # epoch, step, histories, optimizer configs, random states, ...
    solver.save("last.npz")         # the model and that state, atomically
    solver.load("last.npz")         # continue exactly; another model's or run's checkpoint is refused

CheckpointState is the part of Solver that reads and writes this state; it
uses the Solver's attributes (epoch, step, rng, model, callbacks, ...).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..io import CheckpointError, load_checkpoint, restore_model, save_checkpoint
from ..nn.random_state import capture_random_states, restore_random_states

# What a resumed run must share with the run it continues
RUN_IDENTITY = ("update_rule_name", "batch_size", "sampling")


class CheckpointState:
    """Solver's checkpoint methods: state_dict, load_state_dict, save, load and resume."""

    def state_dict(self) -> dict:
        """Everything needed to continue this run exactly (arrays and JSON-able values)."""
        return {
            "run": {key: getattr(self, key) for key in RUN_IDENTITY},
            "epoch": self.epoch,
            "step": self.step,
            "step_in_epoch": self.step_in_epoch,
            "permutation": self._permutation,
            "elapsed": self.elapsed,
            "step_seconds": self.step_seconds,
            "best_val_acc": self.best_val_acc,
            "best_params": self.best_params,
            "best_buffers": self.best_buffers,
            "loss_history": np.asarray(self.loss_history, dtype=np.float64),
            "train_acc_history": list(map(float, self.train_acc_history)),
            "val_acc_history": list(map(float, self.val_acc_history)),
            "optim_configs": self.optim_configs,
            "epochs_without_improvement": self.epochs_without_improvement,
            "best_step": self.best_step,
            "metrics_records": self.metrics_records,
            "rng": self.rng.bit_generator.state,
            "random_states": capture_random_states(self.model),
            "metadata": self.metadata or {},
            "workers": self.workers,
            "callbacks": [{"type": type(c).__name__, "state": c.state_dict()} for c in self._stateful_callbacks()],
        }

    def _stateful_callbacks(self) -> list:
        return [c for c in self.callbacks if hasattr(c, "state_dict") and hasattr(c, "load_state_dict")]

    def _load_callback_states(self, saved: list) -> None:
        """Give each stateful callback its saved state; refuse if the run's callbacks differ."""
        own = self._stateful_callbacks()
        if [entry["type"] for entry in saved] != [type(c).__name__ for c in own]:
            raise CheckpointError(
                "the checkpoint's stateful callbacks ("
                + (", ".join(entry["type"] for entry in saved) or "none")
                + ") differ from this run's ("
                + (", ".join(type(c).__name__ for c in own) or "none")
                + ")"
            )
        for callback, entry in zip(own, saved):
            callback.load_state_dict(entry["state"])

    def _check_same_run(self, state: dict) -> None:
        saved_run = state.get("run", {})
        clashes = {
            k: (saved_run[k], getattr(self, k))
            for k in RUN_IDENTITY
            if k in saved_run and saved_run[k] != getattr(self, k)
        }
        if clashes:
            raise CheckpointError(
                "the checkpoint is of a different run: "
                + ", ".join(f"{k} {old!r} there, {new!r} here" for k, (old, new) in clashes.items())
            )

    def load_state_dict(self, state: dict) -> None:
        self._check_same_run(state)
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.step_in_epoch = int(state["step_in_epoch"])
        self._permutation = state["permutation"]
        self.elapsed = float(state["elapsed"])
        self.step_seconds = float(state.get("step_seconds", 0.0))
        self.best_val_acc = float(state["best_val_acc"])
        self.best_params, self.best_buffers = dict(state["best_params"]), dict(state["best_buffers"])
        self.loss_history = list(np.asarray(state["loss_history"]).tolist())
        self.train_acc_history = list(state["train_acc_history"])
        self.val_acc_history = list(state["val_acc_history"])
        self.optim_configs = {k: dict(v) for k, v in state["optim_configs"].items()}
        self.epochs_without_improvement = int(state["epochs_without_improvement"])
        self.best_step = state.get("best_step")
        records = state.get("metrics_records")  # absent from checkpoints of earlier numcnn versions
        self.metrics_records = list(records) if records is not None else None
        self.resumed = True  # train() makes the run folder agree with this state
        saved_workers = int(state.get("workers", 1))  # checkpoints from before workers trained on one
        if saved_workers != self.workers:
            print(
                f"(the checkpoint was trained with {saved_workers} worker{'s' * (saved_workers > 1)}, this run "
                f"continues with {self.workers}: results equal an uninterrupted run within rounding, not bit for bit)",
                file=sys.stderr,
                flush=True,
            )
        self.rng.bit_generator.state = state["rng"]
        restore_random_states(self.model, state["random_states"])
        if "callbacks" in state:  # checkpoints from before callbacks had state have none
            self._load_callback_states(state["callbacks"])

    def save(self, path) -> Path:
        """Write the model and this solver's state to `path` (atomically)."""
        return save_checkpoint(path, self.model, self.state_dict())

    def load(self, path) -> None:
        """Continue from a checkpoint written by save(): model weights and training state.

        A checkpoint of another model or another run is refused before anything changes.
        """
        checkpoint = load_checkpoint(path)
        self._check_same_run(checkpoint.state)
        restore_model(checkpoint, self.model)
        self.load_state_dict(checkpoint.state)

    def _resume(self) -> None:
        if self.checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir")
        last = self.checkpoint_dir / "last.npz"
        if not last.exists():
            return  # nothing to resume: a fresh run
        self.load(last)
        if self.verbose:
            print(f"(Resumed from {last} at epoch {self.epoch}, step {self.step})", flush=True)
