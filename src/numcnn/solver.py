"""Solver: the CS231n training loop, made safe and reproducible for real runs.

    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-3},
                    lr_decay=0.95, batch_size=100, num_epochs=10, print_every=100)
    solver.train()
    solver.loss_history, solver.train_acc_history, solver.val_acc_history, solver.best_params

`model` is anything with `params` (name -> array) and `loss(X, y=None)`;
`data` holds X_train, y_train, X_val, y_val. The assignment's keyword
arguments and defaults are kept; the rest are numcnn's:

    seed            makes a run reproducible (sampling, evaluation subsets, augmentation)
    sampling        'shuffle': epochs are shuffled passes without replacement (default);
                    'replacement': the assignment's np.random.choice batches
    augment         callable (X_batch, rng) -> X_batch applied to each training batch
    schedule        callable (fractional epoch) -> learning-rate multiplier (numcnn.schedules)
    grad_clip       clip the global gradient norm to this value
    callbacks       objects with on_step_end(solver) (after each update, before that step's
                    evaluation) / on_epoch_end(solver), or epoch-end callables;
                    setting solver.stop_training = True ends training. A callback with
                    state_dict() / load_state_dict(state) has its state checkpointed (Lookahead,
                    EMA); one with swap(model) (EMA) swaps its weights in for every evaluation,
                    so that best_val_acc, best_params and best.npz are those weights'.
    early_stopping  stop after this many epochs without a better validation accuracy
    time_budget     stop after this many seconds of training
    checkpoint_dir  write last.npz every epoch (and where a run stops inside one) and best.npz,
                    atomically; the folder is repaired on resume after any kill (see train)
    resume          continue from checkpoint_dir/last.npz, exactly
    metrics_log     a JSON-lines file, one line per epoch (default checkpoint_dir/metrics.jsonl): loss,
                    accuracies, the learning rate the epoch ended at, seconds of training so far,
                    images per second of step time (evaluation and checkpoints excluded)
    progress        show a progress bar (default: when verbose and on a terminal)
    metadata        a JSON-able dict stored in every checkpoint (e.g. how the data was prepared)
    frozen          glob patterns of parameter names never updated (e.g. "*norm*.weight")
    lr_scale        {glob pattern: factor} multiplying those parameters' learning rate
    restore_best    end with the best parameters seen, as the assignment does (default True)

A loss that is NaN or infinite stops training with TrainingDiverged, naming
the step and where the first non-finite value came from (the layer, for a
module network; the parameter, for a CS231n-style model: see
nn.explain_nonfinite); the last good checkpoint and best_params are kept.
Every numeric keyword is checked when the Solver is built (a ValueError names it).
"""

from __future__ import annotations

import copy
import contextlib
import fnmatch
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from . import optim
from .io import remove_stale_temporaries, write_atomically
from .io import CheckpointError, load_checkpoint, restore_model, save_checkpoint
from .nn.diagnose import explain_nonfinite
from .progress import progress_bar
from .random_state import capture_random_states, restore_random_states

CS231N_OPTIONS = dict(update_rule="sgd", optim_config=None, lr_decay=1.0, batch_size=100, num_epochs=10,
                      num_train_samples=1000, num_val_samples=None, checkpoint_name=None, print_every=10,
                      verbose=True)
NUMCNN_OPTIONS = dict(seed=None, sampling="shuffle", augment=None, schedule=None, grad_clip=None, callbacks=(),
                      early_stopping=None, time_budget=None, checkpoint_dir=None, resume=False,
                      metrics_log=None, progress=None, restore_best=True, metadata=None, frozen=(),
                      lr_scale=None)
# The files numcnn writes in a run folder (Solver and `numcnn train`); any of them marks it used
RUN_FOLDER_FILES = ("last.npz", "best.npz", "final.npz", "metrics.jsonl", "summary.json", "curves.png",
                    "filters.png", "confusion.png")
# What a resumed run must share with the run it continues
RUN_IDENTITY = ("update_rule_name", "batch_size", "sampling")


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite."""


class Callback:
    """Base class for callbacks; override either method."""

    def on_step_end(self, solver: "Solver") -> None:
        pass

    def on_epoch_end(self, solver: "Solver") -> None:
        pass


class Solver:
    def __init__(self, model, data, **kwargs):
        unknown = sorted(set(kwargs) - set(CS231N_OPTIONS) - set(NUMCNN_OPTIONS))
        if unknown:
            raise ValueError(f"Unrecognized arguments {unknown}; Solver takes "
                             f"{', '.join(sorted({**CS231N_OPTIONS, **NUMCNN_OPTIONS}))}")
        missing = [k for k in ("X_train", "y_train", "X_val", "y_val") if k not in data]
        if missing:
            raise ValueError(f"data is missing {missing}; it needs X_train, y_train, X_val and y_val")
        options = {**CS231N_OPTIONS, **NUMCNN_OPTIONS, **kwargs}
        self.model = model
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]
        if len(self.X_train) != len(self.y_train) or len(self.X_val) != len(self.y_val):
            raise ValueError(f"X and y must have the same length: X_train {len(self.X_train)}, "
                             f"y_train {len(self.y_train)}, X_val {len(self.X_val)}, y_val {len(self.y_val)}")
        for key, value in options.items():
            setattr(self, key, value)
        self.optim_config = dict(self.optim_config or {})
        _check_numbers(options, self.optim_config)
        if callable(self.update_rule):
            self.update_rule_name = self.update_rule.__name__
        elif self.update_rule in optim.UPDATE_RULES:
            self.update_rule_name, self.update_rule = self.update_rule, optim.UPDATE_RULES[self.update_rule]
        else:
            raise ValueError(f'Invalid update_rule "{self.update_rule}"; choose from {", ".join(optim.UPDATE_RULES)}')
        if self.sampling not in ("shuffle", "replacement"):
            raise ValueError(f"sampling must be 'shuffle' or 'replacement', got {self.sampling!r}")
        if self.schedule is not None and self.lr_decay != 1.0:
            raise ValueError(f"lr_decay={self.lr_decay} and schedule both set the learning rate; give one "
                             f"(schedules.step_decay is lr_decay as a schedule)")
        # The assignment samples from the global np.random; numcnn from its own generator,
        # seeded from np.random when no seed is given so that np.random.seed still works.
        self.assignment_sampling = self.sampling == "replacement" and self.seed is None
        if self.assignment_sampling:  # leave np.random's stream exactly as the assignment does
            self.rng = np.random.default_rng()
        else:
            self.rng = np.random.default_rng(self.seed if self.seed is not None else np.random.randint(2 ** 31))
        self.checkpoint_dir = Path(self.checkpoint_dir) if self.checkpoint_dir else None
        if self.metrics_log is None and self.checkpoint_dir is not None:
            self.metrics_log = self.checkpoint_dir / "metrics.jsonl"
        self.callbacks = [c if hasattr(c, "on_epoch_end") or hasattr(c, "on_step_end") else _EpochCallable(c)
                          for c in self.callbacks]
        self._base_learning_rate = self.optim_config.get(
            "learning_rate", self.update_rule(np.zeros(1), np.zeros(1), {})[1].get("learning_rate"))
        self._reset()
        if self.resume:
            self._resume()

    # -- state ----------------------------------------------------------------------
    def _reset(self) -> None:
        self.epoch = 0
        self.step = 0
        self.best_val_acc = 0.0
        self.best_params = {}
        self.best_buffers = {}
        self.loss_history = []
        self.train_acc_history = []
        self.val_acc_history = []
        self.optim_configs = {p: copy.deepcopy(self.optim_config) for p in self.model.params}
        self._frozen = {p for p in self.model.params if any(fnmatch.fnmatch(p, f) for f in self.frozen)}
        self._lr_scales = {}
        for pattern, factor in (self.lr_scale or {}).items():
            for p in self.model.params:
                if fnmatch.fnmatch(p, pattern):
                    self._lr_scales[p] = factor
        for p, factor in self._lr_scales.items():
            config = self.optim_configs[p]
            config["learning_rate"] = config.get("learning_rate", self._base_learning_rate) * factor
        self.stop_training = False
        self.elapsed = 0.0
        self.step_seconds = 0.0  # time inside training steps only (no evaluation, checkpoints, logs)
        self._last_learning_rate = None
        self._step_in_epoch = 0
        self._permutation = None
        self._epochs_without_improvement = 0
        self._interrupted = False
        self._best_step = None  # the step whose parameters best_params holds
        self._best_saved_step = None  # ... and the one best.npz holds, when this solver wrote it
        self._metrics_records = []  # the metrics log's lines; None: a checkpoint that did not keep them
        self._resumed = False

    def state_dict(self) -> dict:
        """Everything needed to continue this run exactly (arrays and JSON-able values)."""
        return {
            "run": {key: getattr(self, key) for key in RUN_IDENTITY},
            "epoch": self.epoch, "step": self.step, "step_in_epoch": self._step_in_epoch,
            "permutation": self._permutation, "elapsed": self.elapsed, "step_seconds": self.step_seconds,
            "best_val_acc": self.best_val_acc, "best_params": self.best_params, "best_buffers": self.best_buffers,
            "loss_history": np.asarray(self.loss_history, dtype=np.float64),
            "train_acc_history": list(map(float, self.train_acc_history)),
            "val_acc_history": list(map(float, self.val_acc_history)),
            "optim_configs": self.optim_configs,
            "epochs_without_improvement": self._epochs_without_improvement,
            "best_step": self._best_step, "metrics_records": self._metrics_records,
            "rng": self.rng.bit_generator.state,
            "random_states": capture_random_states(self.model),
            "metadata": self.metadata or {},
            "callbacks": [{"type": type(c).__name__, "state": c.state_dict()} for c in self._stateful_callbacks()],
        }

    def _stateful_callbacks(self) -> list:
        return [c for c in self.callbacks if hasattr(c, "state_dict") and hasattr(c, "load_state_dict")]

    def _load_callback_states(self, saved: list) -> None:
        """Give each stateful callback its saved state; refuse if the run's callbacks differ."""
        own = self._stateful_callbacks()
        if [entry["type"] for entry in saved] != [type(c).__name__ for c in own]:
            raise CheckpointError("the checkpoint's stateful callbacks ("
                                  + (", ".join(entry["type"] for entry in saved) or "none") + ") differ from this run's ("
                                  + (", ".join(type(c).__name__ for c in own) or "none") + ")")
        for callback, entry in zip(own, saved):
            callback.load_state_dict(entry["state"])

    def _check_same_run(self, state: dict) -> None:
        saved_run = state.get("run", {})
        clashes = {k: (saved_run[k], getattr(self, k)) for k in RUN_IDENTITY
                   if k in saved_run and saved_run[k] != getattr(self, k)}
        if clashes:
            raise CheckpointError("the checkpoint is of a different run: "
                                  + ", ".join(f"{k} {old!r} there, {new!r} here" for k, (old, new) in clashes.items()))

    def load_state_dict(self, state: dict) -> None:
        self._check_same_run(state)
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self._step_in_epoch = int(state["step_in_epoch"])
        self._permutation = state["permutation"]
        self.elapsed = float(state["elapsed"])
        self.step_seconds = float(state.get("step_seconds", 0.0))
        self.best_val_acc = float(state["best_val_acc"])
        self.best_params, self.best_buffers = dict(state["best_params"]), dict(state["best_buffers"])
        self.loss_history = list(np.asarray(state["loss_history"]).tolist())
        self.train_acc_history = list(state["train_acc_history"])
        self.val_acc_history = list(state["val_acc_history"])
        self.optim_configs = {k: dict(v) for k, v in state["optim_configs"].items()}
        self._epochs_without_improvement = int(state["epochs_without_improvement"])
        self._best_step = state.get("best_step")
        records = state.get("metrics_records")  # absent from checkpoints of earlier numcnn versions
        self._metrics_records = list(records) if records is not None else None
        self._resumed = True  # train() makes the run folder agree with this state
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

    # -- training ---------------------------------------------------------------------
    def _batches_per_epoch(self) -> int:
        return max(len(self.X_train) // self.batch_size, 1)

    def _next_batch(self):
        N = len(self.X_train)
        if self.sampling == "replacement":
            sampler = np.random if self.assignment_sampling else self.rng
            mask = sampler.choice(N, self.batch_size)
        else:
            start = self._step_in_epoch * self.batch_size
            mask = self._permutation[start:start + self.batch_size]
        X_batch, y_batch = self.X_train[mask], self.y_train[mask]
        if self.augment is not None:
            X_batch = self.augment(X_batch, rng=self.rng)
        return X_batch, y_batch

    def _learning_rate(self, name) -> float:
        """A parameter's scheduled learning rate at the current step."""
        progress = self.epoch + self._step_in_epoch / self._batches_per_epoch()
        return self._base_learning_rate * self.schedule(progress) * self._lr_scales.get(name, 1.0)

    def _step(self) -> None:
        """One update on one minibatch."""
        X_batch, y_batch = self._next_batch()
        loss, grads = self.model.loss(X_batch, y_batch)
        if not math.isfinite(loss):
            where = f"; the last good checkpoint {self.checkpoint_dir / 'last.npz'} is kept" if self.checkpoint_dir else ""
            origin = explain_nonfinite(self.model, X_batch)  # one more forward, only now
            raise TrainingDiverged(f"the loss is {loss} at step {self.step + 1} (epoch {self.epoch + 1}): "
                                   f"{origin}; training stopped, best_params are kept{where}")
        self.loss_history.append(float(loss))
        if self.grad_clip:
            grads, _ = optim.clip_grad_norm(grads, self.grad_clip)
        updates = {}
        for name, w in self.model.params.items():
            if name in self._frozen:
                continue
            config = self.optim_configs[name]
            if self.schedule is not None:
                config["learning_rate"] = self._learning_rate(name)
            updates[name] = self.update_rule(w, grads[name], config)
        for name, (next_w, next_config) in updates.items():
            self.model.params[name] = next_w
            self.optim_configs[name] = next_config
        self.step += 1
        self._step_in_epoch += 1

    def check_accuracy(self, X, y, num_samples=None, batch_size=100) -> float:
        """Accuracy of the model on (X, y), on a random subset of num_samples if given."""
        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            sampler = np.random if self.assignment_sampling else self.rng
            mask = sampler.choice(N, num_samples)
            N, X, y = num_samples, X[mask], y[mask]
        predictions = [np.argmax(self.model.loss(X[i:i + batch_size]), axis=1) for i in range(0, N, batch_size)]
        return float(np.mean(np.concatenate(predictions) == y)) if N else 0.0

    @contextlib.contextmanager
    def evaluation_weights(self):
        """The weights that are evaluated and kept as best: an averaging callback's (EMA) swapped in, if any."""
        swappers = [c for c in self.callbacks if hasattr(c, "swap")]
        for callback in swappers:
            callback.swap(self.model)
        try:
            yield
        finally:
            for callback in reversed(swappers):
                callback.swap(self.model)

    def _evaluate(self) -> None:
        with self.evaluation_weights():
            self._evaluate_weights()

    def _evaluate_weights(self) -> None:
        """Record train and validation accuracy; remember the best parameters."""
        train_acc = self.check_accuracy(self.X_train, self.y_train, num_samples=self.num_train_samples)
        val_acc = self.check_accuracy(self.X_val, self.y_val, num_samples=self.num_val_samples)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        if val_acc > self.best_val_acc:
            self.best_val_acc = val_acc
            self.best_params = {k: np.array(v, copy=True) for k, v in self.model.params.items()}
            buffers = getattr(self.model, "buffers", None)
            self.best_buffers = {k: np.array(v, copy=True) for k, v in buffers.items()} if buffers is not None else {}
            self._epochs_without_improvement = 0
            self._best_step = self.step
        else:
            self._epochs_without_improvement += 1

    def train(self) -> None:
        """Run the optimization, printing, checkpointing and logging as configured.

        Any stop at a step boundary inside an epoch (the time budget, Ctrl-C, a callback setting
        stop_training) first saves last.npz, the exact state to resume from, then evaluates what
        was trained as a partial epoch: a metrics line with "partial": true, and best.npz.
        """
        per_epoch = self._batches_per_epoch()
        total = self.num_epochs * per_epoch
        started = time.perf_counter() - self.elapsed
        run_started = time.perf_counter()
        session_steps, epoch_step_seconds, bar = 0, 0.0, None
        self._prepare_run_folder()
        with _DeferredInterrupt(self):
            while self.step < total and not self.stop_training:
                if self._step_in_epoch == 0:
                    if self.sampling == "shuffle":
                        self._permutation = self.rng.permutation(len(self.X_train))
                    session_steps, epoch_step_seconds = 0, 0.0
                if bar is None:
                    bar = progress_bar(per_epoch, f"epoch {self.epoch + 1}/{self.num_epochs}",
                                       self.progress if self.progress is not None else (None if self.verbose else False),
                                       initial=self._step_in_epoch)
                step_started = time.perf_counter()
                self._step()
                step_time = time.perf_counter() - step_started
                self.step_seconds += step_time
                epoch_step_seconds += step_time
                session_steps += 1
                self._last_learning_rate = self._current_learning_rate()  # before lr_decay moves it
                bar.update()
                t = self.step - 1
                if self.verbose and t % self.print_every == 0:
                    bar.write(f"(Iteration {t + 1} / {total}) loss: {self.loss_history[-1]:f}")
                epoch_end = self._step_in_epoch == per_epoch
                if epoch_end:
                    self.epoch += 1
                    self._step_in_epoch = 0
                    for config in self.optim_configs.values():
                        config["learning_rate"] = config.get("learning_rate", self._base_learning_rate) * self.lr_decay
                self.elapsed = time.perf_counter() - started
                for callback in self.callbacks:  # before evaluating: an average includes this step
                    if hasattr(callback, "on_step_end"):
                        callback.on_step_end(self)
                evaluated = t == 0 or self.step == total or epoch_end
                if evaluated:
                    self._evaluate()
                    if self.verbose:
                        bar.write(f"(Epoch {self.epoch} / {self.num_epochs}) train acc: {self.train_acc_history[-1]:f}; "
                                  f"val_acc: {self.val_acc_history[-1]:f}")
                bar.set_postfix(loss=f"{np.mean(self.loss_history[-20:]):.4f}",
                                val_acc=f"{self.val_acc_history[-1]:.3f}" if self.val_acc_history else "-",
                                lr=f"{self._last_learning_rate:.2e}", img_s=f"{self.batch_size / max(step_time, 1e-9):.0f}")
                if epoch_end:
                    bar.close()
                    bar = None
                    self._end_epoch(session_steps, epoch_step_seconds)
                out_of_time = self.time_budget is not None and time.perf_counter() - run_started > self.time_budget
                if (self._interrupted or out_of_time or self.stop_training) and not epoch_end:
                    if bar is not None:
                        bar.close()
                        bar = None
                    self._stop_mid_epoch(evaluated, session_steps, epoch_step_seconds)
                if self._interrupted:
                    raise KeyboardInterrupt(f"training interrupted at step {self.step}"
                                            + (f"; state saved to {self.checkpoint_dir / 'last.npz'}"
                                               if self.checkpoint_dir else ""))
                if out_of_time:
                    if self.verbose:
                        bar_or_print(bar, f"(Time budget of {self.time_budget}s reached at step {self.step})")
                    break
            if bar is not None:
                bar.close()
        self._save_best()  # e.g. a first evaluation that no later one beat
        if self.restore_best and self.best_params:
            self._put(self.best_params, self.best_buffers)

    def _current_learning_rate(self) -> float:
        """The learning rate of the latest update, read from a parameter that is trained at the
        base rate (a frozen one, such as airbench's whitening filters, keeps its initial rate)."""
        trained = [n for n in self.optim_configs if n not in self._frozen]
        plain = [n for n in trained if n not in self._lr_scales] or trained
        config = self.optim_configs[plain[0]] if plain else {}
        return float(config.get("learning_rate", self._base_learning_rate or 0.0))

    def _epoch_record(self, epoch, steps: int, session_steps: int, step_seconds: float) -> dict:
        """One metrics line: the mean loss over the epoch's `steps` latest updates (all of them,
        including those before a resume: loss_history is in the checkpoint); lr is the rate of the
        latest update (before lr_decay), seconds the run's training time so far, images_per_sec this
        session's steps over their step time only (evaluation and checkpoints excluded)."""
        losses = self.loss_history[len(self.loss_history) - steps:] if steps else []
        return {"epoch": epoch, "step": self.step,
                "loss": float(np.mean(losses)) if losses else None,
                "train_acc": self.train_acc_history[-1], "val_acc": self.val_acc_history[-1],
                "best_val_acc": self.best_val_acc, "lr": self._last_learning_rate,
                "seconds": round(self.elapsed, 3),
                "images_per_sec": round(session_steps * self.batch_size / max(step_seconds, 1e-9), 1)}

    def _end_epoch(self, session_steps: int, step_seconds: float) -> None:
        """Log the epoch, then publish last.npz (which holds the log's lines), then best.npz.

        A kill between any two of these writes is repaired on resume: the log is rewritten from
        the checkpoint's lines and best.npz from its best parameters.
        """
        if self.early_stopping is not None and self._epochs_without_improvement >= self.early_stopping:
            self.stop_training = True
        record = self._epoch_record(self.epoch, self._batches_per_epoch(), session_steps, step_seconds)
        self._metrics_records.append(record)
        if self.metrics_log:
            self._log_metrics(record)
        self._save_progress()
        self._save_best()
        if self.checkpoint_name:
            self.save(f"{self.checkpoint_name}_epoch_{self.epoch}.npz")
        for callback in self.callbacks:
            if hasattr(callback, "on_epoch_end"):
                callback.on_epoch_end(self)

    def _stop_mid_epoch(self, evaluated: bool, session_steps: int, step_seconds: float) -> None:
        """Save the state to resume from, then evaluate and log the partial epoch trained so far.

        last.npz is written first, so a resumed run never sees the extra evaluation (it may draw
        from the generator): it continues exactly as if never stopped.
        """
        self._save_progress()
        if not evaluated:
            self._evaluate()
        epoch = round(self.epoch + self._step_in_epoch / self._batches_per_epoch(), 4)
        if self.verbose:
            print(f"(Stopped at step {self.step}, epoch {epoch} / {self.num_epochs}) train acc: "
                  f"{self.train_acc_history[-1]:f}; val_acc: {self.val_acc_history[-1]:f}", flush=True)
        if self.metrics_log:
            self._log_metrics({**self._epoch_record(epoch, self._step_in_epoch, session_steps, step_seconds),
                               "partial": True})
        self._save_best()

    def _put(self, params: dict, buffers: dict) -> None:
        """Set these parameters and buffers (name -> array) on the model."""
        for key, value in params.items():
            self.model.params[key] = value
        for key, value in buffers.items():
            self.model.buffers[key] = value

    def _save_progress(self) -> None:
        if self.checkpoint_dir is not None:
            self.save(self.checkpoint_dir / "last.npz")

    def _save_best(self, force: bool = False) -> None:
        """Write best.npz with the best parameters, unless it already holds them."""
        if self.checkpoint_dir is None or not self.best_params or (self._best_saved_step == self._best_step
                                                                  and not force):
            return
        buffers = getattr(self.model, "buffers", None) or {}
        current = {k: self.model.params[k] for k in self.best_params}
        current_buffers = {k: buffers[k] for k in self.best_buffers}
        self._put(self.best_params, self.best_buffers)  # the model holds the best arrays while it is saved
        try:
            self.save(self.checkpoint_dir / "best.npz")
        finally:
            self._put(current, current_buffers)
        self._best_saved_step = self._best_step

    def _log_metrics(self, record: dict) -> None:
        """Append one line and flush it to disk before the checkpoint that includes it is written."""
        path = Path(self.metrics_log)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _prepare_run_folder(self) -> None:
        """Make the run folder agree with the state training starts from.

        A fresh run (step 0) starts a fresh log and drops a best.npz it did not write; a resumed
        one rewrites the log from the checkpoint's lines and best.npz from its best parameters
        (a kill may have struck between any two writes). Either removes the temporary files that
        kills during writes left behind.
        """
        if self.checkpoint_dir is not None:
            remove_stale_temporaries(self.checkpoint_dir)
        if self.step == 0:
            if self.metrics_log and Path(self.metrics_log).exists():
                Path(self.metrics_log).unlink()
            if self.checkpoint_dir is not None and (self.checkpoint_dir / "best.npz").exists():
                (self.checkpoint_dir / "best.npz").unlink()
            return
        if self.metrics_log:
            self._reconcile_metrics_log()
        if self._metrics_records is None:  # an earlier checkpoint, and no log to take the lines from
            self._metrics_records = []
        self._save_best(force=self._resumed)
        self._resumed = False

    def _reconcile_metrics_log(self) -> None:
        """Rewrite the log as the checkpoint has it, saying what was repaired.

        A torn line (a kill or a full disk mid-write) is dropped; lines of epochs the checkpoint
        does not include are dropped (they are trained again); lines the checkpoint has but the
        log lost are restored. A checkpoint written before numcnn kept the lines keeps the log's
        own lines up to its epoch.
        """
        path = Path(self.metrics_log)
        parsed, torn = [], 0
        for line in (path.read_text(errors="replace").splitlines() if path.exists() else []):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if isinstance(record, dict):
                parsed.append(record)
            else:
                torn += 1
        if self._metrics_records is None:
            self._metrics_records = [r for r in parsed if not r.get("partial") and r.get("epoch", 0) <= self.epoch]
        wanted = self._metrics_records
        if wanted == parsed and not torn:
            return
        write_atomically(path, lambda f: f.write("".join(json.dumps(r) + "\n" for r in wanted).encode()))
        restored = [r.get("epoch") for r in wanted if r not in parsed]
        notes = ([f"dropped {torn} torn line(s) (a write cut short by a kill or a full disk)"] if torn else []) + \
                ([f"restored epoch(s) {restored} from the checkpoint"] if restored else [])
        if notes:
            print(f"(repaired {path}: {'; '.join(notes)})", file=sys.stderr, flush=True)


# -- numeric keywords ---------------------------------------------------------------
# Each is refused with one line naming it: a negative lr_decay turns descent into ascent,
# a NaN or infinite one poisons every later step without an error.
_WHOLE = {"batch_size": (1, False), "num_epochs": (0, False), "print_every": (1, False),
          "num_train_samples": (1, True), "num_val_samples": (1, True), "early_stopping": (1, True),
          "seed": (0, True)}
_POSITIVE = {"lr_decay": False, "time_budget": True, "grad_clip": True}
_FRACTIONS = ("momentum", "beta1", "beta2", "decay_rate")  # optimizer settings in [0, 1)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _check_numbers(options: dict, optim_config: dict) -> None:
    """Refuse numeric Solver keywords no run can use; the ValueError names the keyword."""
    for name, (minimum, optional) in _WHOLE.items():
        value = options[name]
        if value is None and optional:
            continue
        if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)) or value < minimum:
            kind = "a positive int" if minimum == 1 else "an int of at least 0"
            raise ValueError(f"{name} must be {kind}{' or None' if optional else ''}, got {value!r}")
    for name, optional in _POSITIVE.items():
        value = options[name]
        if value is None and optional:
            continue
        if not _is_number(value) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number above 0{' or None' if optional else ''}, got {value!r}")
    for key, value in optim_config.items():
        if not _is_number(value):
            continue
        name = f"optim_config[{key!r}]"
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        if key == "learning_rate" and value <= 0:
            raise ValueError(f"{name} must be above 0, got {value!r}")
        if (key in ("weight_decay", "decoupled_weight_decay") or key == "epsilon") and value < 0:
            raise ValueError(f"{name} must be at least 0, got {value!r}")
        if key in _FRACTIONS and not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    for pattern, factor in (options["lr_scale"] or {}).items():
        if not _is_number(factor) or not math.isfinite(factor) or factor < 0:
            raise ValueError(f"lr_scale[{pattern!r}] must be a finite number of at least 0, got {factor!r}")




def bar_or_print(bar, message: str) -> None:
    if bar is not None:
        bar.write(message)
    else:
        print(message, flush=True)


class _EpochCallable:
    def __init__(self, function):
        self.function = function

    def on_epoch_end(self, solver):
        self.function(solver)


class _DeferredInterrupt:
    """Turn Ctrl-C into a flag the loop checks between steps, so the state saved is consistent.

    A second Ctrl-C interrupts at once. Only installed in the main thread.
    """

    def __init__(self, solver: Solver):
        self.solver = solver
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.solver._interrupted:
            raise KeyboardInterrupt
        self.solver._interrupted = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False
