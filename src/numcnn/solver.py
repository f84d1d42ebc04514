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
    checkpoint_dir  write last.npz every epoch (and on Ctrl-C) and best.npz, atomically
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
the step; the last good checkpoint and best_params are kept.
"""

from __future__ import annotations

import copy
import contextlib
import fnmatch
import json
import math
import signal
import threading
import time
from pathlib import Path

import numpy as np

from . import optim
from .atomic import write_atomically
from .checkpoint import CheckpointError, load_checkpoint, restore_model, save_checkpoint
from .progress import progress_bar
from .random_state import capture_random_states, restore_random_states

CS231N_OPTIONS = dict(update_rule="sgd", optim_config=None, lr_decay=1.0, batch_size=100, num_epochs=10,
                      num_train_samples=1000, num_val_samples=None, checkpoint_name=None, print_every=10,
                      verbose=True)
NUMCNN_OPTIONS = dict(seed=None, sampling="shuffle", augment=None, schedule=None, grad_clip=None, callbacks=(),
                      early_stopping=None, time_budget=None, checkpoint_dir=None, resume=False,
                      metrics_log=None, progress=None, restore_best=True, metadata=None, frozen=(),
                      lr_scale=None)
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
        if callable(self.update_rule):
            self.update_rule_name = self.update_rule.__name__
        elif self.update_rule in optim.UPDATE_RULES:
            self.update_rule_name, self.update_rule = self.update_rule, optim.UPDATE_RULES[self.update_rule]
        else:
            raise ValueError(f'Invalid update_rule "{self.update_rule}"; choose from {", ".join(optim.UPDATE_RULES)}')
        if self.sampling not in ("shuffle", "replacement"):
            raise ValueError(f"sampling must be 'shuffle' or 'replacement', got {self.sampling!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")
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
        self._best_unsaved = False
        self._step_in_epoch = 0
        self._permutation = None
        self._epochs_without_improvement = 0
        self._interrupted = False

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
            raise TrainingDiverged(f"the loss is {loss} at step {self.step + 1} (epoch {self.epoch + 1}): "
                                   f"training stopped, best_params are kept{where}")
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
            self._best_unsaved = True
            self._epochs_without_improvement = 0
        else:
            self._epochs_without_improvement += 1

    def train(self) -> None:
        """Run the optimization, printing, checkpointing and logging as configured."""
        per_epoch = self._batches_per_epoch()
        total = self.num_epochs * per_epoch
        started = time.perf_counter() - self.elapsed
        run_started = time.perf_counter()
        epoch_losses, epoch_step_seconds, bar = [], 0.0, None
        self._truncate_metrics_log()  # a fresh run (epoch 0) starts a fresh log
        with _DeferredInterrupt(self):
            while self.step < total and not self.stop_training:
                if self._step_in_epoch == 0:
                    if self.sampling == "shuffle":
                        self._permutation = self.rng.permutation(len(self.X_train))
                    epoch_losses, epoch_step_seconds = [], 0.0
                if bar is None:
                    bar = progress_bar(per_epoch, f"epoch {self.epoch + 1}/{self.num_epochs}",
                                       self.progress if self.progress is not None else (None if self.verbose else False),
                                       initial=self._step_in_epoch)
                step_started = time.perf_counter()
                self._step()
                step_time = time.perf_counter() - step_started
                self.step_seconds += step_time
                epoch_step_seconds += step_time
                self._last_learning_rate = self._current_learning_rate()  # before lr_decay moves it
                epoch_losses.append(self.loss_history[-1])
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
                if t == 0 or self.step == total or epoch_end:
                    self._evaluate()
                    if self.verbose:
                        bar.write(f"(Epoch {self.epoch} / {self.num_epochs}) train acc: {self.train_acc_history[-1]:f}; "
                                  f"val_acc: {self.val_acc_history[-1]:f}")
                bar.set_postfix(loss=f"{np.mean(epoch_losses[-20:]):.4f}",
                                val_acc=f"{self.val_acc_history[-1]:.3f}" if self.val_acc_history else "-",
                                lr=f"{self._last_learning_rate:.2e}", img_s=f"{self.batch_size / max(step_time, 1e-9):.0f}")
                if epoch_end:
                    bar.close()
                    bar = None
                    self._end_epoch(epoch_losses, epoch_step_seconds)
                out_of_time = self.time_budget is not None and time.perf_counter() - run_started > self.time_budget
                if self._interrupted or (out_of_time and not epoch_end):
                    self._save_progress()
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
        if self.restore_best and self.best_params:
            self._put(self.best_params, self.best_buffers)

    def _current_learning_rate(self) -> float:
        """The learning rate of the latest update, read from a parameter that is trained at the
        base rate (a frozen one, such as airbench's whitening filters, keeps its initial rate)."""
        trained = [n for n in self.optim_configs if n not in self._frozen]
        plain = [n for n in trained if n not in self._lr_scales] or trained
        config = self.optim_configs[plain[0]] if plain else {}
        return float(config.get("learning_rate", self._base_learning_rate or 0.0))

    def _end_epoch(self, epoch_losses, step_seconds) -> None:
        """Checkpoints, then the metrics line: lr is the rate of the epoch's last update (before
        lr_decay), seconds the run's training time so far, images_per_sec over step time only."""
        if self.early_stopping is not None and self._epochs_without_improvement >= self.early_stopping:
            self.stop_training = True
        self._save_progress()
        if self.checkpoint_dir is not None and self._best_unsaved:  # also a best found before this epoch's end
            self._save_best(self.checkpoint_dir / "best.npz")
        if self.checkpoint_name:
            self.save(f"{self.checkpoint_name}_epoch_{self.epoch}.npz")
        if self.metrics_log:
            self._log_metrics({
                "epoch": self.epoch, "step": self.step,
                "loss": float(np.mean(epoch_losses)) if epoch_losses else None,
                "train_acc": self.train_acc_history[-1], "val_acc": self.val_acc_history[-1],
                "best_val_acc": self.best_val_acc, "lr": self._last_learning_rate,
                "seconds": round(self.elapsed, 3),
                "images_per_sec": round(len(epoch_losses) * self.batch_size / max(step_seconds, 1e-9), 1),
            })
        for callback in self.callbacks:
            if hasattr(callback, "on_epoch_end"):
                callback.on_epoch_end(self)

    def _save_best(self, path) -> None:
        """best_params and best_buffers (an EMA's average, if one is evaluated), with the training state as it is."""
        state = self.state_dict()
        live = {k: np.array(v, copy=True) for k, v in self.model.params.items()}
        live_buffers = {k: np.array(self.model.buffers[k], copy=True) for k in self.best_buffers}
        self._put(self.best_params, self.best_buffers)
        try:
            save_checkpoint(path, self.model, state)
        finally:
            self._put(live, live_buffers)
        self._best_unsaved = False

    def _put(self, params: dict, buffers: dict) -> None:
        for key, value in params.items():
            self.model.params[key] = value
        for key, value in buffers.items():
            self.model.buffers[key] = value

    def _save_progress(self) -> None:
        if self.checkpoint_dir is not None:
            self.save(self.checkpoint_dir / "last.npz")

    def _log_metrics(self, record: dict) -> None:
        path = Path(self.metrics_log)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def _truncate_metrics_log(self) -> None:
        """Drop log lines of epochs the checkpoint does not include (a run killed between the two)."""
        if not self.metrics_log or not Path(self.metrics_log).exists():
            return
        lines = Path(self.metrics_log).read_text().splitlines()
        kept = [line for line in lines if line.strip() and json.loads(line).get("epoch", 0) <= self.epoch]
        if len(kept) != len(lines):
            write_atomically(Path(self.metrics_log), lambda f: f.write("".join(l + "\n" for l in kept).encode()))


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
