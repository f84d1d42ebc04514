"""Solver: the CS231n training loop, made safe and reproducible for real runs.

    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-3},
                    lr_decay=0.95, batch_size=100, num_epochs=10, print_every=100)
    solver.train()
    solver.loss_history, solver.train_acc_history, solver.val_acc_history, solver.best_params
    solver.last_learning_rate, solver.last_grads    # the latest update's, for callbacks (TensorBoard)

`model` is anything with `params` (name -> array) and `loss(X, y=None)`;
`data` holds X_train, y_train, X_val, y_val. The assignment's keyword
arguments and defaults are kept; the rest are numcnn's:

    seed            makes a run reproducible (sampling, evaluation subsets, augmentation)
    sampling        'shuffle': epochs are shuffled passes without replacement (default);
                    'replacement': the assignment's np.random.choice batches
    augment         callable (X_batch, rng) -> X_batch applied to each training batch
    schedule        callable (fractional epoch) -> learning-rate multiplier (numcnn.train.schedules)
    grad_clip       clip the global gradient norm to this value
    callbacks       objects with any of callbacks.Callback's methods (on_step_end: after each
                    update, before that step's evaluation; on_epoch_end; ...), or epoch-end
                    callables; setting solver.stop_training = True ends training. A callback with
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
    workers         split every step and evaluation over this many local ranks (numcnn.train.parallel;
                    default 1: the assignment's path, unchanged); they start when train() begins and
                    stop when it ends, however it ends. Results equal one worker's within rounding,
                    and a run with N workers is reproducible bit for bit
    worker_backend  'processes' (fork), 'threads' or 'auto' (processes where fork exists)
    communicator    the root's Communicator of ranks started elsewhere (MPI): instead of workers

A loss that is NaN or infinite stops training with TrainingDiverged, naming
the step and where the first non-finite value came from (the layer, for a
module network; the parameter, for a CS231n-style model: see
nn.explain_nonfinite); the last good checkpoint and best_params are kept.
Every numeric keyword is checked when the Solver is built (a ValueError names it):
solver.options holds the keywords as given (a frozen SolverOptions); the loop reads
the solver's attributes (solver.batch_size, ...), which start as those options.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import math
import time
from pathlib import Path

import numpy as np

from ..nn.diagnose import explain_nonfinite
from . import optim
from .callbacks import (
    HOOKS,
    Callback,
    Checkpointing,
    EarlyStopping,
    EpochFunction,
    MetricsLog,
    ProgressBar,
    TimeBudget,
)
from .interrupts import _DeferredInterrupt
from .parallel import DataParallel, WorkerLost, start_workers, unsplittable_reason
from .progress import QuietBar
from .solver_options import SolverOptions
from .solver_state import CheckpointState

__all__ = ["RUN_FOLDER_FILES", "Callback", "Solver", "TrainingDiverged"]

# The files numcnn writes in a run folder (Solver and `numcnn train`); any of them marks it used
RUN_FOLDER_FILES = (
    "last.npz",
    "best.npz",
    "final.npz",
    "metrics.jsonl",
    "summary.json",
    "curves.png",
    "filters.png",
    "confusion.png",
    "tensorboard",  # a folder: `numcnn train --tensorboard`'s event files
)


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite."""


class Solver(CheckpointState):
    """The CS231n training loop, for any model with `params` and `loss(X, y=None)`.

        solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-3})
        solver.train()

    data holds X_train, y_train, X_val and y_val. The keyword arguments are the
    assignment's (update_rule, optim_config, lr_decay, batch_size, num_epochs,
    num_train_samples, num_val_samples, checkpoint_name, print_every, verbose) and
    numcnn's, which the module's docstring above lists; they are checked once into
    solver.options (a SolverOptions). train() runs the loop and fills loss_history,
    train_acc_history, val_acc_history and best_params.

    Raises ValueError for data missing a split, X and y of different lengths, a keyword
    that is unknown or out of range, or workers > 1 with a model that cannot be split.
    """

    def __init__(self, model, data, **kwargs):
        missing = [k for k in ("X_train", "y_train", "X_val", "y_val") if k not in data]
        if missing:
            raise ValueError(f"data is missing {missing}; it needs X_train, y_train, X_val and y_val")
        self.model = model
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]
        if len(self.X_train) != len(self.y_train) or len(self.X_val) != len(self.y_val):
            raise ValueError(
                f"X and y must have the same length: X_train {len(self.X_train)}, "
                f"y_train {len(self.y_train)}, X_val {len(self.X_val)}, y_val {len(self.y_val)}"
            )
        self._take_options(SolverOptions.from_keywords(kwargs))
        reason = unsplittable_reason(model) if self.workers > 1 else None
        if reason:
            raise ValueError(f"workers={self.workers}: the model cannot be split over workers: {reason}")
        # The assignment samples from the global np.random; numcnn from its own generator,
        # seeded from np.random when no seed is given so that np.random.seed still works.
        self.assignment_sampling = self.sampling == "replacement" and self.seed is None
        if self.assignment_sampling:  # leave np.random's stream exactly as the assignment does
            self.rng = np.random.default_rng()
        else:
            self.rng = np.random.default_rng(self.seed if self.seed is not None else np.random.randint(2**31))
        self._reset()
        if self.resume:
            self._resume()

    def _take_options(self, options: SolverOptions) -> None:
        """The options as the assignment's attributes (the loop reads them when train() runs)."""
        self.options = options
        self.update_rule_name, self.update_rule = options.rule()
        self.optim_config = dict(options.optim_config or {})
        self.lr_decay, self.batch_size, self.num_epochs = options.lr_decay, options.batch_size, options.num_epochs
        self.num_train_samples, self.num_val_samples = options.num_train_samples, options.num_val_samples
        self.checkpoint_name, self.print_every, self.verbose = (
            options.checkpoint_name,
            options.print_every,
            options.verbose,
        )
        self.seed, self.sampling, self.augment = options.seed, options.sampling, options.augment
        self.schedule, self.grad_clip, self.early_stopping = options.schedule, options.grad_clip, options.early_stopping
        self.time_budget, self.resume, self.progress = options.time_budget, options.resume, options.progress
        self.restore_best, self.metadata = options.restore_best, options.metadata
        self.frozen, self.lr_scale = options.frozen, options.lr_scale
        self.communicator = options.communicator
        self.workers = options.communicator.size if options.communicator is not None else options.workers
        self.checkpoint_dir = Path(options.checkpoint_dir) if options.checkpoint_dir else None
        self.metrics_log = options.metrics_log
        if self.metrics_log is None and self.checkpoint_dir is not None:
            self.metrics_log = self.checkpoint_dir / "metrics.jsonl"
        self.callbacks = [c if any(hasattr(c, hook) for hook in HOOKS) else EpochFunction(c) for c in options.callbacks]
        default = optim.DEFAULTS.get(self.update_rule_name, {}).get("learning_rate")
        self._base_learning_rate = self.optim_config.get("learning_rate", default)
        if self._base_learning_rate is None and (self.schedule is not None or self.lr_scale):
            raise ValueError(
                f"optim_config needs a learning_rate for update rule {self.update_rule_name} with a "
                f"schedule or lr_scale (numcnn knows the defaults of its own rules: "
                f"{', '.join(optim.DEFAULTS)})"
            )

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
        self.stopped_inside_epoch = False  # the last train() stopped inside an epoch (a partial one was logged)
        self.bar = QuietBar()  # where the loop prints: a progress bar while one is open
        self.last_step_seconds = 0.0
        self.elapsed = 0.0
        self.step_seconds = 0.0  # time inside training steps only (no evaluation, checkpoints, logs)
        self.last_learning_rate = None
        self.last_grads = {}  # name -> the gradient of the latest update, as applied (after clipping)
        self.step_in_epoch = 0
        self._permutation = None
        self.epochs_without_improvement = 0
        self.interrupted = False
        self.best_step = None  # the step whose parameters best_params holds
        self.best_saved_step = None  # ... and the one best.npz holds, when this solver wrote it
        self.metrics_records = []  # the metrics log's lines; None: a checkpoint that did not keep them
        self.resumed = False
        self.parallel = None  # a DataParallel while train() runs with workers > 1

    def freeze(self, pattern: str) -> list[str]:
        """Stop updating the parameters whose names match the glob pattern, from the next step on
        (a callback's way to freeze a layer mid-run); returns their names."""
        names = [p for p in self.model.params if fnmatch.fnmatch(p, pattern)]
        if not names:
            raise ValueError(f"freeze: {pattern!r} matches no parameter; they are {', '.join(self.model.params)}")
        self._frozen.update(names)
        return names

    # -- training ---------------------------------------------------------------------
    @property
    def batches_per_epoch(self) -> int:
        return max(len(self.X_train) // self.batch_size, 1)

    def _next_batch(self):
        N = len(self.X_train)
        if self.sampling == "replacement":
            sampler = np.random if self.assignment_sampling else self.rng
            mask = sampler.choice(N, self.batch_size)
        else:
            start = self.step_in_epoch * self.batch_size
            mask = self._permutation[start : start + self.batch_size]
        X_batch, y_batch = self.X_train[mask], self.y_train[mask]
        if self.augment is not None:
            X_batch = self.augment(X_batch, rng=self.rng)
        return X_batch, y_batch

    def _learning_rate(self, name) -> float:
        """A parameter's scheduled learning rate at the current step."""
        progress = self.epoch + self.step_in_epoch / self.batches_per_epoch
        return self._base_learning_rate * self.schedule(progress) * self._lr_scales.get(name, 1.0)

    def _step(self) -> None:
        """One update on one minibatch."""
        X_batch, y_batch = self._next_batch()
        self.last_grads = {}  # the previous step's need not stay alive while this step's are made
        loss, grads = self._loss(X_batch, y_batch)
        if not math.isfinite(loss):
            origin = explain_nonfinite(self.model, X_batch)  # one more forward, only now
            raise TrainingDiverged(
                f"the loss is {loss} at step {self.step + 1} (epoch {self.epoch + 1}): "
                f"{origin}; training stopped, best_params are kept{self._checkpoint_kept()}"
            )
        self.loss_history.append(float(loss))
        if self.grad_clip:
            grads, _ = optim.clip_grad_norm(grads, self.grad_clip)
        self.last_grads = grads
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
        self.step_in_epoch += 1

    def _loss(self, X_batch, y_batch):
        """model.loss on one batch: on this process, or split over the workers while they run."""
        if self.parallel is None:
            return self.model.loss(X_batch, y_batch)
        try:
            return self.parallel.loss(X_batch, y_batch, during=f"step {self.step + 1}")
        except WorkerLost as error:
            raise WorkerLost(f"{error}: training stopped{self._checkpoint_kept()}") from None

    def _checkpoint_kept(self) -> str:
        """'; the last good checkpoint ... is kept' for a message about a failed step ('' without a folder)."""
        return f"; the last good checkpoint {self.checkpoint_dir / 'last.npz'} is kept" if self.checkpoint_dir else ""

    def _scores(self, X):
        return self.model.loss(X) if self.parallel is None else self.parallel.loss(X, during="an evaluation")

    @contextlib.contextmanager
    def _ranks(self):
        """Within: self.parallel splits steps and evaluations over the workers (none if workers is 1).

        Local workers are started here and stopped on the way out, however train() ends
        (exceptions, Ctrl-C, TrainingDiverged); a given communicator's ranks are told to stop
        serving, and the communicator stays open.
        """
        if self.workers == 1:
            yield
            return
        reason = unsplittable_reason(self.model)  # solver.workers may have been set since __init__
        if reason:
            raise ValueError(f"workers={self.workers}: the model cannot be split over workers: {reason}")
        comm = self.communicator or start_workers(self.model, self.workers, self.options.worker_backend)
        self.parallel = DataParallel(self.model, comm)
        try:
            yield
        finally:
            self.parallel = None
            if self.communicator is None:
                comm.close()
            else:
                with contextlib.suppress(WorkerLost):
                    DataParallel(self.model, comm).stop()

    def check_accuracy(self, X, y, num_samples=None, batch_size=100) -> float:
        """Accuracy of the model on (X, y), on a random subset of num_samples if given."""
        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            sampler = np.random if self.assignment_sampling else self.rng
            mask = sampler.choice(N, num_samples)
            N, X, y = num_samples, X[mask], y[mask]
        predictions = [np.argmax(self._scores(X[i : i + batch_size]), axis=1) for i in range(0, N, batch_size)]
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
            self.epochs_without_improvement = 0
            self.best_step = self.step
        else:
            self.epochs_without_improvement += 1

    def _current_learning_rate(self) -> float:
        """The learning rate of the latest update, read from a parameter that is trained at the
        base rate (a frozen one, such as airbench's whitening filters, keeps its initial rate)."""
        trained = [n for n in self.optim_configs if n not in self._frozen]
        plain = [n for n in trained if n not in self._lr_scales] or trained
        config = self.optim_configs[plain[0]] if plain else {}
        return float(config.get("learning_rate", self._base_learning_rate or 0.0))

    def train(self) -> None:
        """Run the optimization, printing, checkpointing and logging as configured (see callbacks.py).

        On train begin the run folder is made to agree with the state training starts from: a
        fresh run starts a fresh log and drops a best.npz it did not write; a resumed one rewrites
        the log from the checkpoint's lines and best.npz from its best parameters (a kill may have
        struck between any two writes); temporary files that kills left behind are removed.
        Any stop at a step boundary inside an epoch (the time budget, Ctrl-C, a callback setting
        stop_training) first saves last.npz, the exact state to resume from, then evaluates what
        was trained as a partial epoch: a metrics line with "partial": true, and best.npz.
        With workers > 1 the workers run while the loop runs (see _ranks).
        """
        with self._ranks():
            self._train_loop()
        if self.restore_best and self.best_params:
            self._put(self.best_params, self.best_buffers)

    def _train_loop(self) -> None:
        per_epoch, callbacks = self.batches_per_epoch, self._loop_callbacks()
        total = self.num_epochs * per_epoch
        clock = time.perf_counter() - self.elapsed  # earlier sessions' training time counts

        def notify(hook: str) -> None:
            for callback in callbacks:
                if hasattr(callback, hook):
                    getattr(callback, hook)(self)

        self.stopped_inside_epoch, epoch_open = False, False
        notify("on_train_begin")
        with _DeferredInterrupt(self):
            while self.step < total and not self.stop_training:
                # -- an epoch begins (or this session resumes inside one): shuffle, open its bar
                if self.step_in_epoch == 0 and self.sampling == "shuffle":
                    self._permutation = self.rng.permutation(len(self.X_train))
                if self.step_in_epoch == 0 or not epoch_open:
                    notify("on_epoch_begin")
                    epoch_open = True
                # -- one update on one minibatch
                started = time.perf_counter()
                self._step()
                self.last_step_seconds = time.perf_counter() - started
                self.step_seconds += self.last_step_seconds
                self.last_learning_rate = self._current_learning_rate()  # before lr_decay moves it
                t = self.step - 1
                if self.verbose and t % self.print_every == 0:
                    self.bar.write(f"(Iteration {t + 1} / {total}) loss: {self.loss_history[-1]:f}")
                # -- the epoch's last step: decay the learning rate, as the assignment does
                epoch_end = self.step_in_epoch == per_epoch
                if epoch_end:
                    self.epoch, self.step_in_epoch = self.epoch + 1, 0
                    for config in self.optim_configs.values():
                        config["learning_rate"] = config.get("learning_rate", self._base_learning_rate) * self.lr_decay
                self.elapsed = time.perf_counter() - clock
                notify("on_step_end")  # before evaluating: an average (EMA) includes this step
                # -- evaluate after the first step, at each epoch's end and after the last step
                evaluated = t == 0 or self.step == total or epoch_end
                if evaluated:
                    self._evaluate()
                    if self.verbose:
                        self.bar.write(
                            f"(Epoch {self.epoch} / {self.num_epochs}) train acc: "
                            f"{self.train_acc_history[-1]:f}; val_acc: {self.val_acc_history[-1]:f}"
                        )
                    notify("on_evaluate")
                # -- the epoch's end (metrics line, last.npz, best.npz), or a stop inside it
                interrupted = self.interrupted  # read once: a Ctrl-C from now on is the next step's
                if epoch_end:
                    notify("on_epoch_end")
                    epoch_open = False
                elif interrupted or self.stop_training:
                    self._stop_inside_epoch(evaluated, notify)
                if interrupted:
                    break
            notify("on_train_end")  # a partial epoch's line and best.npz; the time budget's note
            if self.interrupted:
                raise KeyboardInterrupt(
                    f"training interrupted at step {self.step}"
                    + (f"; state saved to {self.checkpoint_dir / 'last.npz'}" if self.checkpoint_dir else "")
                )

    def _loop_callbacks(self) -> list:
        """numcnn's own callbacks around the user's, in the order the loop runs them (callbacks.py)."""
        shown = self.progress if self.progress is not None else (None if self.verbose else False)
        own = [ProgressBar(shown)] + ([EarlyStopping(self.early_stopping)] if self.early_stopping is not None else [])
        own += [MetricsLog(self.metrics_log), Checkpointing(self.checkpoint_dir, self.checkpoint_name)]
        return own + self.callbacks + ([TimeBudget(self.time_budget, self.verbose)] if self.time_budget else [])

    def _stop_inside_epoch(self, evaluated: bool, notify) -> None:
        """Save the state to resume from (on_stop: last.npz), then evaluate the partial epoch.

        last.npz is written first, so a resumed run never sees the extra evaluation (it may draw
        from the generator): it continues exactly as if never stopped.
        """
        notify("on_stop")
        if not evaluated:
            self._evaluate()
            notify("on_evaluate")
        epoch = round(self.epoch + self.step_in_epoch / self.batches_per_epoch, 4)
        if self.verbose:
            print(
                f"(Stopped at step {self.step}, epoch {epoch} / {self.num_epochs}) train acc: "
                f"{self.train_acc_history[-1]:f}; val_acc: {self.val_acc_history[-1]:f}",
                flush=True,
            )
        self.stopped_inside_epoch = True

    def _put(self, params: dict, buffers: dict) -> None:
        """Set these parameters and buffers (name -> array) on the model."""
        for key, value in params.items():
            self.model.params[key] = value
        for key, value in buffers.items():
            self.model.buffers[key] = value

    @contextlib.contextmanager
    def holding(self, params: dict, buffers: dict):
        """Within: the model holds these parameters and buffers (best.npz is saved so); its own after."""
        model_buffers = getattr(self.model, "buffers", None) or {}
        current = {k: self.model.params[k] for k in params}
        current_buffers = {k: model_buffers[k] for k in buffers}
        self._put(params, buffers)
        try:
            yield
        finally:
            self._put(current, current_buffers)
