"""What the Solver's loop does besides training, one callback each.

Every callback sees the solver and may override any of these (each does nothing by default):

    on_train_begin   train() starts (a fresh run, or a resumed one)
    on_epoch_begin   an epoch starts, or this session resumes inside one
    on_step_end      after each update, before that step's evaluation
    on_evaluate      after an evaluation (train and validation accuracy appended)
    on_epoch_end     after the last step of an epoch and its evaluation
    on_stop          training stops inside an epoch (time budget, Ctrl-C, stop_training),
                     before anything else is done about it
    on_train_end     the loop is over (after a stop inside an epoch: its partial evaluation)

Setting solver.stop_training = True ends training. The Solver runs its own callbacks in
this order, then the user's, then the time budget (so that a user's clock moves first):

    ProgressBar     one bar per epoch: loss, validation accuracy, learning rate, images/s
    EarlyStopping   stop after `patience` epochs without a better validation accuracy
    MetricsLog      one JSON line per epoch, appended and fsynced (and a partial one on a stop)
    Checkpointing   last.npz and best.npz at each epoch end, written after the metrics line;
                    the run folder repaired on train begin (see Solver.train)
    TimeBudget      stop after `seconds` of training in this session

TensorBoard (tensorboard.py: event files beside metrics.jsonl) is one of the user's, which
`numcnn train --tensorboard` adds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..io import remove_stale_temporaries, write_atomically
from .progress import QuietBar, progress_bar

HOOKS = ("on_train_begin", "on_epoch_begin", "on_step_end", "on_evaluate", "on_epoch_end", "on_stop", "on_train_end")


class Callback:
    """Base class for callbacks; override any method."""

    def on_train_begin(self, solver) -> None:
        pass

    def on_epoch_begin(self, solver) -> None:
        pass

    def on_step_end(self, solver) -> None:
        pass

    def on_evaluate(self, solver) -> None:
        pass

    def on_epoch_end(self, solver) -> None:
        pass

    def on_stop(self, solver) -> None:
        pass

    def on_train_end(self, solver) -> None:
        pass


class EpochFunction(Callback):
    """A plain function f(solver), called at each epoch end (the Solver's callbacks= accepts them)."""

    def __init__(self, function):
        self.function = function

    def on_epoch_end(self, solver) -> None:
        self.function(solver)


class ProgressBar(Callback):
    """One bar per epoch; enabled=None shows it on a terminal only. The solver prints through solver.bar."""

    def __init__(self, enabled: bool | None):
        self.enabled = enabled

    def on_epoch_begin(self, solver) -> None:
        solver.bar = progress_bar(
            solver.batches_per_epoch,
            f"epoch {solver.epoch + 1}/{solver.num_epochs}",
            self.enabled,
            initial=solver.step_in_epoch,
        )

    def on_step_end(self, solver) -> None:
        solver.bar.update()
        self._show(solver)

    def on_evaluate(self, solver) -> None:
        self._show(solver)

    def _show(self, solver) -> None:
        solver.bar.set_postfix(
            loss=f"{np.mean(solver.loss_history[-20:]):.4f}",
            val_acc=f"{solver.val_acc_history[-1]:.3f}" if solver.val_acc_history else "-",
            lr=f"{solver.last_learning_rate:.2e}",
            img_s=f"{solver.batch_size / max(solver.last_step_seconds, 1e-9):.0f}",
        )

    def on_epoch_end(self, solver) -> None:
        self._close(solver)

    def on_stop(self, solver) -> None:
        self._close(solver)

    def _close(self, solver) -> None:
        solver.bar.close()
        solver.bar = QuietBar()


class EarlyStopping(Callback):
    """Stop after `patience` epochs in a row without a better validation accuracy."""

    def __init__(self, patience: int):
        self.patience = patience

    def on_epoch_end(self, solver) -> None:
        if solver.epochs_without_improvement >= self.patience:
            solver.stop_training = True


class MetricsLog(Callback):
    """One record per epoch: kept in solver.metrics_records (so in last.npz), and appended to a
    JSON-lines file if `path` is given (None: records only).

    loss is the mean over the epoch's updates (those before a resume included: loss_history is
    in the checkpoint); lr the rate of the latest update (before lr_decay); seconds the run's
    training time so far; images_per_sec this session's steps over their step time only.
    """

    def __init__(self, path: Path | None):
        self.path = Path(path) if path else None
        self.steps, self.step_seconds = 0, 0.0  # this session's steps of the current epoch

    def on_train_begin(self, solver) -> None:
        """A fresh run starts a fresh log; a resumed one rewrites it as its checkpoint has it."""
        if solver.step == 0:
            if self.path is not None and self.path.exists():
                self.path.unlink()
            return
        if self.path is not None:
            self._reconcile(solver)
        if solver.metrics_records is None:  # an earlier checkpoint, and no log to take the lines from
            solver.metrics_records = []

    def on_epoch_begin(self, solver) -> None:
        self.steps, self.step_seconds = 0, 0.0

    def on_step_end(self, solver) -> None:
        self.steps += 1
        self.step_seconds += solver.last_step_seconds

    def on_epoch_end(self, solver) -> None:
        record = self.record(solver, solver.epoch, solver.batches_per_epoch)
        solver.metrics_records.append(record)
        self._append(record)

    def on_train_end(self, solver) -> None:
        if solver.stopped_inside_epoch:  # the partial epoch: in the file only, never in the checkpoint
            epoch = round(solver.epoch + solver.step_in_epoch / solver.batches_per_epoch, 4)
            self._append({**self.record(solver, epoch, solver.step_in_epoch), "partial": True})

    def record(self, solver, epoch, steps: int) -> dict:
        """One metrics line; the mean loss over the `steps` latest updates."""
        losses = solver.loss_history[len(solver.loss_history) - steps :] if steps else []
        return {
            "epoch": epoch,
            "step": solver.step,
            "loss": float(np.mean(losses)) if losses else None,
            "train_acc": solver.train_acc_history[-1],
            "val_acc": solver.val_acc_history[-1],
            "best_val_acc": solver.best_val_acc,
            "lr": solver.last_learning_rate,
            "seconds": round(solver.elapsed, 3),
            "images_per_sec": round(self.steps * solver.batch_size / max(self.step_seconds, 1e-9), 1),
        }

    def _append(self, record: dict) -> None:
        """Append one line and flush it to disk before the checkpoint that includes it is written."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _reconcile(self, solver) -> None:
        """Rewrite the log as the checkpoint has it, saying what was repaired.

        A torn line (a kill or a full disk mid-write) is dropped; lines of epochs the checkpoint
        does not include are dropped (they are trained again); lines the checkpoint has but the
        log lost are restored. A checkpoint written before numcnn kept the lines keeps the log's
        own lines up to its epoch.
        """
        path = self.path
        parsed, torn = [], 0
        for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if isinstance(record, dict):
                parsed.append(record)
            else:
                torn += 1
        if solver.metrics_records is None:
            solver.metrics_records = [r for r in parsed if not r.get("partial") and r.get("epoch", 0) <= solver.epoch]
        wanted = solver.metrics_records
        if wanted == parsed and not torn:
            return
        write_atomically(path, lambda f: f.write("".join(json.dumps(r) + "\n" for r in wanted).encode()))
        restored = [r.get("epoch") for r in wanted if r not in parsed]
        notes = ([f"dropped {torn} torn line(s) (a write cut short by a kill or a full disk)"] if torn else []) + (
            [f"restored epoch(s) {restored} from the checkpoint"] if restored else []
        )
        if notes:
            print(f"(repaired {path}: {'; '.join(notes)})", file=sys.stderr, flush=True)


class Checkpointing(Callback):
    """last.npz (the state to resume from) and best.npz (the best evaluated weights) in `folder`,
    atomically; checkpoint_name: also the assignment's NAME_epoch_E files."""

    def __init__(self, folder: Path | None, checkpoint_name: str | None = None):
        self.folder = Path(folder) if folder is not None else None
        self.checkpoint_name = checkpoint_name

    def on_train_begin(self, solver) -> None:
        """Make the run folder agree with the state training starts from.

        A fresh run (step 0) drops a best.npz it did not write; a resumed one rewrites best.npz
        from its best parameters (a kill may have struck between any two writes). Either removes
        the temporary files that kills during writes left behind.
        """
        if self.folder is not None:
            remove_stale_temporaries(self.folder)
        if solver.step == 0:
            if self.folder is not None and (self.folder / "best.npz").exists():
                (self.folder / "best.npz").unlink()
            return
        self.save_best(solver, force=solver.resumed)
        solver.resumed = False

    def on_epoch_end(self, solver) -> None:
        """After the metrics line: last.npz (which holds the log's lines), then best.npz."""
        self.save_last(solver)
        self.save_best(solver)
        if self.checkpoint_name:
            solver.save(f"{self.checkpoint_name}_epoch_{solver.epoch}.npz")

    def on_stop(self, solver) -> None:
        """First of all: a resumed run must never see the partial epoch's extra evaluation."""
        self.save_last(solver)

    def on_train_end(self, solver) -> None:
        self.save_best(solver)  # a partial epoch's, or a first evaluation that no later one beat

    def save_last(self, solver) -> None:
        if self.folder is not None:
            solver.save(self.folder / "last.npz")

    def save_best(self, solver, force: bool = False) -> None:
        """Write best.npz with the best parameters, unless it already holds them."""
        if self.folder is None or not solver.best_params:
            return
        if solver.best_saved_step == solver.best_step and not force:
            return
        with solver.holding(solver.best_params, solver.best_buffers):
            solver.save(self.folder / "best.npz")
        solver.best_saved_step = solver.best_step


class TimeBudget(Callback):
    """Stop once this session has trained for `seconds` (checked after every step, evaluation
    and epoch end, so the stop comes after all the work of the step that crossed it)."""

    def __init__(self, seconds: float, verbose: bool = True):
        self.seconds, self.verbose = seconds, verbose
        self.started, self.reached = None, False

    def on_train_begin(self, solver) -> None:
        self.started, self.reached = time.perf_counter(), False

    def _check(self, solver) -> None:
        if time.perf_counter() - self.started > self.seconds:
            self.reached = solver.stop_training = True

    on_step_end = on_evaluate = on_epoch_end = _check

    def on_train_end(self, solver) -> None:
        if self.reached and self.verbose and not solver.interrupted:  # Ctrl-C says so itself
            print(f"(Time budget of {self.seconds}s reached at step {solver.step})", flush=True)
