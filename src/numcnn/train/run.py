"""A training run from start to finish: what `numcnn train` and `numcnn evaluate` do.

    load the dataset -> split off validation -> normalize (training statistics)
    -> build the model -> Solver -> test accuracy -> pictures and a summary

    run = prepare_run(TrainConfig(model="fc", epochs=3))   # seeded, data loaded, Solver built
    run.solver.train()
    train(config, out)                                     # the whole of `numcnn train`

Everything a later evaluation needs (dataset and its absolute path,
normalization, split, test-time augmentation) is stored in the checkpoint's
metadata, so a checkpoint alone can be evaluated, from any folder.
"""

from __future__ import annotations

import fnmatch
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import models, nn, viz
from ..io import load_checkpoint
from . import schedules
from .build import _batchnorm_weights, build_model, first_layer_weights, whiten_first_conv
from .config import (  # noqa: F401
    ASSIGNMENT_MODELS,
    AUGMENTS,
    CHANGEABLE_ON_RESUME,
    DATASETS,
    DEFAULT_LR,
    FC_MODELS,
    MOMENTUM_RULES,
    SCHEDULES,
    TTA,
    TrainConfig,
    UserError,
    model_names,
    refuse_model_options,
)
from .dataprep import Prepared, load_raw, make_augment, prepare
from .optim import UPDATE_RULES
from .parallel import available_cores, choose_workers, unsplittable_reason
from .solver import Solver
from .tensorboard import TensorBoard
from .tricks import EMA, Lookahead, tta_scores

TENSORBOARD_FOLDER = "tensorboard"  # --tensorboard's event files, in the run folder


def make_schedule(name: str, epochs: int, warmup: float = 1.0):
    """The Solver schedule of `numcnn train --schedule NAME` over `epochs` epochs, or None.

    "none" and "step" give None ("step" is the Solver's lr_decay); "cosine" anneals to 0
    over the run; "warmup" rises linearly for `warmup` epochs (at most half the run), then
    anneals; "onecycle" is schedules.one_cycle(epochs). Raises UserError for another name.
    """
    if name == "none" or name == "step":
        return None  # step decay is the Solver's lr_decay
    if name == "cosine":
        return schedules.cosine(epochs)
    if name == "warmup":
        return schedules.warmup(min(warmup, epochs / 2), epochs, "cosine")
    if name == "onecycle":
        return schedules.one_cycle(epochs)
    raise UserError(f"unknown schedule {name!r}; choose from {', '.join(SCHEDULES)}")


def predict(model, X, tta="none") -> np.ndarray:
    """Class scores in evaluation mode, averaged over test-time views (see tricks.tta_scores)."""
    return tta_scores(model, X, tta)


def _or(value, default):
    return default if value is None else value


def _resolved(path) -> str | None:
    """An absolute path, so that a checkpoint's data is found from any working folder."""
    return str(Path(path).expanduser().resolve()) if path else None


def make_solver(config: TrainConfig, prepared: Prepared, out: Path | None = None, callbacks=(), communicator=None):
    """The model and its Solver as the config says, on prepared data; returns (solver, ema or None).

    Parameters
    ----------
    config : the run's options (checked when it was built).
    prepared : the normalized splits, X_*: (N, C, H, W).
    out : the run folder for checkpoints, metrics.jsonl and --tensorboard's tensorboard/; None trains
        without them (a sweep's trials; --tensorboard is then refused).
    callbacks : Solver callbacks run before the Lookahead, EMA and TensorBoard ones the config asks for.
    communicator : the root's Communicator of ranks started elsewhere (MPI, numcnn.cli.mpi_entry):
        steps and evaluations are split over them.
    """
    writers = tensorboard_callbacks(config, out)  # a missing tensorboardX is said before the model is built
    optimizer = config.optimizer
    if optimizer not in UPDATE_RULES:
        raise UserError(f"unknown optimizer {optimizer!r}; choose from {', '.join(UPDATE_RULES)}")
    lr = config.lr if config.lr is not None else DEFAULT_LR[optimizer]
    optim_config = {"learning_rate": lr}
    reg = config.weight_decay
    if optimizer == "adamw":
        optim_config["weight_decay"], reg = config.weight_decay, 0.0
    if optimizer in MOMENTUM_RULES:
        optim_config["momentum"] = 0.9 if config.momentum is None else config.momentum
    if config.decoupled:
        optim_config["decoupled_weight_decay"], reg = config.weight_decay, 0.0
    try:
        model = build_model(
            config.model,
            prepared.input_shape,
            len(prepared.classes),
            reg,
            config.label_smoothing,
            config.hidden,
            config.norm,
            config.dropout,
            config.width,
        )
        model.loss(prepared.X_train[:2])
    except UserError:
        raise
    except MemoryError as error:
        raise UserError(
            f"model {config.model} does not fit in memory ({error}): choose a smaller --width or --hidden"
        ) from None
    except ValueError as error:
        raise UserError(
            f"model {config.model} cannot take the {config.dataset} images, {prepared.input_shape} "
            f"({error}); choose a model for images of this size"
        ) from None
    frozen = list(config.freeze)
    for pattern in frozen:
        if not any(fnmatch.fnmatch(name, pattern) for name in model.params):
            raise UserError(
                f"--freeze {pattern!r} matches no parameter of {config.model}; its parameters are "
                f"{', '.join(list(model.params)[:6])}, ..."
            )
    if config.whiten:
        frozen.append(whiten_first_conv(model, prepared.X_train))
    if config.freeze_bn_weight:
        scales = _batchnorm_weights(model)
        if not scales:
            raise UserError(
                f"--freeze-bn-weight: {config.model} has no batch norm"
                + (" (fc has it with --norm batchnorm)" if config.model == "fc" else "")
            )
        frozen += scales
    if frozen and hasattr(model, "regularized"):
        # L2 on weights that never move is a constant in the loss (whitening filters: about 2.3)
        model.regularized = [n for n in model.regularized if not any(fnmatch.fnmatch(n, f) for f in frozen)]
    workers = _workers_to_start(config, model, out) if communicator is None else _mpi_ranks(config, model, communicator)
    callbacks = list(callbacks) + ([Lookahead(config.lookahead)] if config.lookahead else [])
    ema = EMA(config.ema) if config.ema else None
    callbacks += ([ema] if ema else []) + writers
    steps_per_epoch = max(len(prepared.X_train) // config.batch_size, 1)
    metadata = {
        "dataset": config.dataset,
        "path": _resolved(config.path),
        "data_dir": _resolved(config.data_dir),
        "val_size": config.val_size,
        "tta": config.tta,
        "seed": config.seed,
        "mean": prepared.mean.tolist(),
        "std": prepared.std.tolist(),
        "classes": prepared.classes,
        "model": config.model,
        "image_size": config.image_size,
        "options": config.options(),
        "epochs": config.epochs,
        "time_budget": config.time_budget,
    }
    solver = Solver(
        model,
        {"X_train": prepared.X_train, "y_train": prepared.y_train, "X_val": prepared.X_val, "y_val": prepared.y_val},
        update_rule=optimizer,
        optim_config=optim_config,
        batch_size=config.batch_size,
        num_epochs=config.epochs,
        lr_decay=_or(config.lr_decay, 0.95) if config.schedule == "step" else 1.0,
        schedule=make_schedule(config.schedule, config.epochs, _or(config.warmup, 1.0)),
        augment=make_augment(config.augment, config.dataset, prepared.input_shape),
        num_train_samples=1000,
        num_val_samples=None,
        print_every=steps_per_epoch,
        seed=config.seed,
        checkpoint_dir=out,
        resume=config.resume,
        time_budget=config.time_budget,
        grad_clip=config.grad_clip,
        verbose=not config.quiet,
        metadata=metadata,
        frozen=frozen,
        callbacks=callbacks,
        workers=workers,
        communicator=communicator,
    )
    return solver, ema


def tensorboard_callbacks(config: TrainConfig, out: Path | None) -> list:
    """[TensorBoard] writing out/tensorboard with the options that define the run (TrainConfig.options:
    those a resume must repeat) as its hyper-parameters, for --tensorboard; else []."""
    if not config.tensorboard:
        return []
    if out is None:
        raise UserError("--tensorboard writes into the run folder: give the run one (prepare_run's out)")
    return [TensorBoard(out / TENSORBOARD_FOLDER, hparams=config.options())]


def _workers_to_start(config: TrainConfig, model, out: Path | None) -> int:
    """The workers a Solver is built with: --workers N (refused for a model that cannot be split),
    or for auto the number a resumed run recorded (so that it continues bit for bit), else 1
    (train() then measures: choose_run_workers)."""
    if config.workers == "auto":
        last = out / "last.npz" if out is not None and config.resume else None
        return int(load_checkpoint(last).state.get("workers", 1)) if last is not None and last.exists() else 1
    if config.workers > 1:
        reason = unsplittable_reason(model)
        if reason:
            raise UserError(f"--workers {config.workers}: {config.model} cannot be split over workers: {reason}")
        if config.batch_size < config.workers:
            raise UserError(f"--workers {config.workers}: --batch-size {config.batch_size} has too few images")
    return config.workers


def _mpi_ranks(config: TrainConfig, model, communicator) -> int:
    """With MPI ranks (communicator) the Solver is given no local workers: the ranks are the workers."""
    reason = unsplittable_reason(model)
    if reason:
        raise UserError(f"{config.model} cannot be split over {communicator.size} MPI ranks: {reason}")
    return 1


def choose_run_workers(run: Run) -> str:
    """--workers auto: set run.solver.workers to every core where that measures faster; the reason.

    A resumed run keeps the workers it recorded (made when it was built); a fresh one measures
    this model's steps on a batch of its training data (parallel.auto.choose_workers).
    """
    solver = run.solver
    if solver.resumed:
        return "auto: as the run recorded"
    batch = min(run.config.batch_size, len(run.prepared.X_train))
    choice = choose_workers(solver.model, run.prepared.X_train[:batch], run.prepared.y_train[:batch])
    solver.workers = choice.workers
    return f"auto on {available_cores()} cores: {choice.why}"


SUMMARY_KEYS = {  # what each figure of summary.json measures
    "epochs": "epochs trained: steps / steps per epoch, a fraction where a stop came inside an epoch",
    "best_val_acc": "the best validation accuracy of the evaluated weights (with --ema, the averaged ones)",
    "test_acc": "test accuracy of the checkpoint the summary names (the best evaluated weights), with its TTA",
    "train_seconds": "wall-clock seconds inside Solver.train, over every session of the run (resumes included)",
    "step_seconds": "seconds inside training steps only (forward, backward, update), over every session",
    "session_seconds": "wall-clock seconds of this command, end to end (data, training, testing, pictures)",
    "total_seconds": "train_seconds of earlier sessions plus session_seconds: the run's whole cost",
    "images_per_sec": "training images per second of step time: steps * batch_size / step_seconds",
    "workers": "ranks each training step was split over (--workers; 1: one process)",
}


def seed_everything(seed: int) -> None:
    """Seed numcnn's initializers (nn.manual_seed) and NumPy's global generator, as `numcnn train --seed` does."""
    nn.manual_seed(seed)
    np.random.seed(seed)


def load_data(config: TrainConfig) -> Prepared:
    """The config's dataset, split and normalized (no global random state is drawn from)."""
    raw = load_raw(config.dataset, config.path, config.data_dir, config.download, config.image_size)
    return prepare(raw, config.val_size, seed=config.seed)


@dataclass
class Run:
    """A run ready to train: its options, data, Solver and (with --ema) the averaging callback."""

    config: TrainConfig
    prepared: Prepared
    solver: Solver
    ema: EMA | None


def prepare_run(
    config: TrainConfig, out: Path | None = None, prepared: Prepared | None = None, callbacks=(), communicator=None
) -> Run:
    """Seed, load the data (unless given) and build the model and its Solver, as `numcnn train` does.

    Parameters
    ----------
    config : the run's options.
    out : the run folder (checkpoints, metrics.jsonl); None trains without one. A resumed run
        (config.resume) continues from out/last.npz.
    prepared : data already loaded for this config (a sweep's worker loads it once for all trials).
    callbacks : extra Solver callbacks (a sweep's pruning report).
    communicator : the root's Communicator of MPI ranks (see make_solver).

    Returns
    -------
    Run : run.solver.train() trains it.
    """
    seed_everything(config.seed)
    if prepared is None:
        prepared = load_data(config)
    solver, ema = make_solver(config, prepared, out, callbacks=callbacks, communicator=communicator)
    return Run(config, prepared, solver, ema)


def _epochs_trained(solver: Solver) -> int | float:
    """Steps / steps per epoch: a whole number after whole epochs, a fraction after a stop inside one."""
    epochs = solver.step / solver.batches_per_epoch
    return int(epochs) if epochs.is_integer() else round(epochs, 3)


def train(config: TrainConfig, out: Path, callbacks=(), communicator=None) -> dict:
    """Train as the config says, writing the run folder `out`; returns the summary (SUMMARY_KEYS).

    callbacks and communicator (the root's, of MPI ranks) go to the Solver (see make_solver).
    """
    started = time.perf_counter()
    run = prepare_run(config, out, callbacks=callbacks, communicator=communicator)
    prepared, solver = run.prepared, run.solver
    model = solver.model
    earlier_sessions = solver.elapsed  # training seconds of the sessions a resume continues
    if communicator is not None:
        why = "MPI ranks (mpiexec)"
    else:
        why = choose_run_workers(run) if config.workers == "auto" else "--workers"
    if not config.quiet:
        print(f"(training on {solver.workers} worker{'s' * (solver.workers > 1)}: {why})", flush=True)
    solver.train()  # ends with the best evaluated weights, which best.npz holds
    test_pred = predict(model, prepared.X_test, tta=config.tta).argmax(axis=1)
    test_acc = float(np.mean(test_pred == prepared.y_test))
    pictures = draw_run_pictures(solver, prepared, test_pred, out)
    logs = {"metrics": out / "metrics.jsonl"} | (
        {"tensorboard": out / TENSORBOARD_FOLDER} if config.tensorboard else {}
    )
    summary = {
        "model": config.model,
        "dataset": config.dataset,
        **training_figures(solver, time.perf_counter() - started, earlier_sessions),
        "test_acc": test_acc,
        "tta": config.tta,
        "files": {k: str(v) for k, v in {**pictures, "checkpoint": out / "best.npz", **logs}.items()},
        "keys": SUMMARY_KEYS,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def draw_run_pictures(solver: Solver, prepared: Prepared, test_pred, out: Path) -> dict:
    """curves.png, filters.png (where the first layer has images) and confusion.png of a trained run;
    returns {picture: path}. test_pred: the predicted class of each test image."""
    pictures = {"curves": out / "curves.png", "filters": out / "filters.png", "confusion": out / "confusion.png"}
    viz.plot_history(solver, pictures["curves"])
    weights = first_layer_weights(solver.model, prepared.input_shape)
    if weights is not None:
        viz.plot_filters(weights, pictures["filters"])
    else:
        del pictures["filters"]
    counts = viz.confusion_matrix(prepared.y_test, test_pred, len(prepared.classes))
    viz.plot_confusion_matrix(counts, prepared.classes, pictures["confusion"])
    return pictures


def training_figures(solver: Solver, session: float, earlier_sessions: float) -> dict:
    """The summary's figures of how the training went (SUMMARY_KEYS: epochs ... workers).

    session: seconds of this command so far; earlier_sessions: training seconds of the sessions
    a resumed run continues."""
    return {
        "epochs": _epochs_trained(solver),
        "steps": solver.step,
        "best_val_acc": solver.best_val_acc,
        "train_seconds": round(solver.elapsed, 1),
        "step_seconds": round(solver.step_seconds, 1),
        "session_seconds": round(session, 1),
        "total_seconds": round(earlier_sessions + session, 1),
        "images_per_sec": round(solver.step * solver.batch_size / max(solver.step_seconds, 1e-9), 1),
        "parameters": int(sum(np.asarray(v).size for v in solver.model.params.values())),
        "workers": solver.workers,
    }


def evaluate(checkpoint_path, dataset=None, path=None, data_dir=None, split="test", tta=None) -> dict:
    """Accuracy, per-class accuracy and confusion matrix of a checkpoint on a dataset split.

    dataset, path and data_dir default to the checkpoint's (data_dir or path given here
    override where its files are); tta=None uses the run's test-time augmentation.
    """
    checkpoint = load_checkpoint(checkpoint_path)
    meta = checkpoint.state.get("metadata") or {}
    dataset = dataset or meta.get("dataset")
    if dataset is None:
        raise UserError(f"{checkpoint_path}: the checkpoint does not say its dataset; pass --dataset")
    model = models.load_model(checkpoint)
    if tta is None:
        tta = meta.get("tta", "none")
    if dataset == "folder" and data_dir and not path:  # a folder dataset's files are its path
        path, data_dir = data_dir, None
    raw = load_raw(
        dataset,
        path or meta.get("path"),
        data_dir or meta.get("data_dir"),
        image_size=meta.get("image_size") if dataset == "folder" else None,
    )  # as it was trained
    try:
        prepared = prepare(
            raw, meta.get("val_size", 0.1), seed=meta.get("seed", 0), mean=meta.get("mean"), std=meta.get("std")
        )
    except UserError as error:  # the run's --val-size cannot split these (fewer) images
        raise UserError(f"{checkpoint_path}: cannot rebuild the run's splits on this dataset: {error}") from None
    X, y = {
        "test": (prepared.X_test, prepared.y_test),
        "val": (prepared.X_val, prepared.y_val),
        "train": (prepared.X_train, prepared.y_train),
    }[split]
    predicted = predict(model, X, tta=tta).argmax(axis=1)
    counts = viz.confusion_matrix(y, predicted, len(prepared.classes))
    per_class = counts.diagonal() / np.maximum(counts.sum(axis=1), 1)
    return {
        "split": split,
        "accuracy": float(np.mean(predicted == y)),
        "samples": int(len(y)),
        "tta": tta,
        "per_class": dict(zip(prepared.classes, per_class.round(4).tolist())),
        "confusion": counts.tolist(),
        "classes": prepared.classes,
    }
