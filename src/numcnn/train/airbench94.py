"""airbench94's recipe (Keller Jordan, 2024) on numcnn's Solver: `numcnn airbench94`.

    summary = train_airbench94(out="runs/airbench94", data_dir="../shared/data/cifar10-jpeg.tar.gz")
    solver = airbench94_solver(prepared, out)        # the model and its Solver, to train yourself

airbench94 trains CIFAR-10 to 94% in 9.9 epochs (3.8 s on an A100). Its
parts, each a numcnn piece:

    net          models.airbench with GELU, identity-initialized 3x3 convolutions (dirac),
                 batch norm eps 1e-12 and momentum 0.4, logits scaled by 1/9
    whitening    the first conv's 24 filters whiten 2x2 patches of 5,000 training images,
                 frozen; its bias trains for 3 epochs, then freezes (tricks.FreezeAfter)
    batch norm   scales frozen at 1; biases at 64x the learning rate
    optimizer    Nesterov SGD, momentum 0.85, coupled weight decay, batch 1024
    schedule     linear from 0.2 up to 1 at 23% of training, down to 0.07 at the end
    lookahead    from epoch 3, every 5 steps, weights and running statistics pulled into a
                 slow average whose memory grows with training's progress p: alpha = 1 - 0.95^5 p^3;
                 each epoch ends on the slow weights (tricks.Lookahead)
    data         every image mirrored in every other epoch (tricks.AlternatingFlip), translated
                 by up to 2 pixels (reflect padding); label smoothing 0.2
    evaluation   test images and their mirror images (TTA 'flip')

airbench writes its rates for a loss summed over 1024 images and "decoupled"
from momentum (see solver_rates); numcnn's loss is a mean, so they are
converted, and each update equals airbench's. What differs: numcnn holds
out --val-size training images (1,000 by default; airbench trains on all
50,000 and looks only at the test set), and computes in float32 on the CPU
where airbench uses float16 on a GPU. The result is the final weights, as
airbench's (restore_best=False); best.npz keeps the best-validation ones.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import time
from pathlib import Path

import numpy as np

from .. import data, models, nn
from ..io import load_checkpoint
from . import schedules
from .build import _batchnorm_weights, whiten_first_conv
from .config import TTA
from .dataprep import Prepared, load_raw, prepare
from .parallel import choose_workers
from .run import SUMMARY_KEYS, draw_run_pictures, predict, training_figures
from .run_folder import check_run_folder
from .solver import Solver
from .tricks import AlternatingFlip, FreezeAfter, Lookahead

HYPERPARAMETERS = {  # airbench94's, as it writes them
    "batch_size": 1024,
    "lr": 11.5,  # per 1024 examples of a summed loss, decoupled from momentum (solver_rates)
    "momentum": 0.85,
    "weight_decay": 0.0153,  # per 1024 examples, decoupled from the learning rate
    "bias_scaler": 64.0,  # batch norm biases: 64x the learning rate, the same decay per step
    "label_smoothing": 0.2,
    "whiten_bias_epochs": 3,
    "lookahead": {"start_epoch": 3, "decay_base": 0.95, "decay_power": 3.0, "every": 5},
    "translate": 2,
    "batchnorm_momentum": 0.4,  # airbench's 0.6 is the running average's weight: PyTorch's momentum is 1 - 0.6
    "batchnorm_eps": 1e-12,
    "widths": (64, 256, 256),
    "schedule": {"start": 0.2, "peak": 0.23, "final": 0.07},
}


def solver_rates(batch_size: int, lr: float, momentum: float, weight_decay: float, bias_scaler: float) -> dict:
    """numcnn's rates (a mean loss) that make each update airbench's (a summed loss).

    airbench: lr_sum = lr / K and decay = weight_decay * B / K with K = 1024 (1 + 1/(1 - momentum)),
    the factor by which Nesterov momentum lengthens a step of constant gradients; PyTorch's SGD
    then takes weight_decay = decay / lr_sum (decay / (lr_sum * bias_scaler) for the biases), so
    that every weight shrinks by decay * schedule per step. A mean loss's gradient is the summed
    one over B: the same update needs the learning rate times B and the decay coefficient over B.

    Returns {"learning_rate", "weight_decay", "bias_learning_rate", "bias_weight_decay"}.
    """
    K = 1024 * (1 + 1 / (1 - momentum))
    lr_sum, decay = lr / K, weight_decay * batch_size / K
    rate = lr_sum * batch_size
    return {
        "learning_rate": rate,
        "weight_decay": decay / rate,
        "bias_learning_rate": rate * bias_scaler,
        "bias_weight_decay": decay / (rate * bias_scaler),
    }


def lookahead_alpha(progress: float, decay_base=0.95, decay_power=3.0, every=5) -> float:
    """How far the slow weights move towards the fast ones at training's progress p: 1 - 0.95^5 p^3."""
    return 1.0 - decay_base**every * progress**decay_power


def _alpha(schedule: dict):
    """lookahead_alpha with the schedule's constants: a function of progress alone."""
    return functools.partial(
        lookahead_alpha, decay_base=schedule["decay_base"], decay_power=schedule["decay_power"], every=schedule["every"]
    )


def hyperparameters(**changes) -> dict:
    """HYPERPARAMETERS with some changed (a smaller net or batch for a quick run); unknown names refused."""
    unknown = set(changes) - set(HYPERPARAMETERS)
    if unknown:
        raise ValueError(
            f"unknown airbench94 hyper-parameters {sorted(unknown)}; they are {', '.join(HYPERPARAMETERS)}"
        )
    return {**HYPERPARAMETERS, **changes}


def airbench94_model(num_classes: int = 10, in_channels: int = 3, seed: int = 0, **changes) -> models.Classifier:
    """The net (float32, PyTorch's initialization then airbench's), wrapped for the Solver."""
    h = hyperparameters(**changes)
    nn.manual_seed(seed)
    net = models.airbench(
        num_classes,
        in_channels,
        widths=h["widths"],
        whiten_width=2 * in_channels * 2 * 2,
        activation="gelu",
        dirac=True,
        batchnorm_eps=h["batchnorm_eps"],
        batchnorm_momentum=h["batchnorm_momentum"],
    )
    net["whiten"].params["bias"] = np.zeros_like(net["whiten"].params["bias"])  # airbench zeroes conv biases
    return models.Classifier(net, label_smoothing=h["label_smoothing"])


def airbench94_solver(
    prepared: Prepared,
    out: Path | None = None,
    epochs: int = 10,
    seed: int = 0,
    workers: int = 1,
    changes: dict | None = None,
    **solver_options,
) -> Solver:
    """The recipe's model and Solver on normalized CIFAR-10 splits; solver.train() runs it.

    changes: hyper-parameters to change (see hyperparameters()); solver_options go to the
    Solver (resume, verbose, metadata, time_budget, ...).
    """
    h = hyperparameters(**(changes or {}))
    model = airbench94_model(len(prepared.classes), prepared.input_shape[0], seed, **(changes or {}))
    frozen = [whiten_first_conv(model, prepared.X_train)] + _batchnorm_weights(model)
    rates = solver_rates(h["batch_size"], h["lr"], h["momentum"], h["weight_decay"], h["bias_scaler"])
    lookahead = h["lookahead"]
    _, H, W = prepared.input_shape
    solver = Solver(
        model,
        {"X_train": prepared.X_train, "y_train": prepared.y_train, "X_val": prepared.X_val, "y_val": prepared.y_val},
        update_rule="nesterov",
        optim_config={
            "learning_rate": rates["learning_rate"],
            "momentum": h["momentum"],
            "weight_decay": rates["weight_decay"],
        },
        batch_size=h["batch_size"],
        num_epochs=epochs,
        schedule=schedules.one_cycle(epochs, **h["schedule"]),
        lr_scale={"*norm*.bias": h["bias_scaler"]},
        frozen=frozen,
        augment=data.RandomCrop((H, W), padding=h["translate"], padding_mode="reflect"),
        callbacks=[
            AlternatingFlip(seed),
            FreezeAfter("whiten.bias", h["whiten_bias_epochs"]),
            Lookahead(lookahead["every"], _alpha(lookahead), lookahead["start_epoch"], buffers=True, at_epoch_end=True),
        ],
        restore_best=False,
        checkpoint_dir=out,
        seed=seed,
        workers=workers,
        num_train_samples=1000,
        num_val_samples=None,
        print_every=max(len(prepared.X_train) // h["batch_size"], 1),
        **solver_options,
    )
    for name, config in solver.optim_configs.items():  # the same decay per step for the faster biases
        if fnmatch.fnmatch(name, "*norm*.bias"):
            config["weight_decay"] = rates["bias_weight_decay"]
    return solver


def train_airbench94(
    out: Path,
    data_dir=None,
    epochs: int = 10,
    val_size: int | float = 1000,
    seed: int = 0,
    workers: int | str = "auto",
    resume: bool = False,
    download: bool = False,
    tta: str = "flip",
    quiet: bool = False,
    changes: dict | None = None,
) -> dict:
    """The whole run: CIFAR-10 loaded and split, trained, tested; the run folder written as by
    `numcnn train` (checkpoints, metrics.jsonl, curves, filters, confusion, summary.json).

    workers: a number, or "auto" (every core where a measured step is faster, else 1; a resumed
    run keeps the number it recorded). A folder holding another run is refused (UserError) unless
    resume continues it. changes: hyper-parameters to change. Returns the summary
    (run.SUMMARY_KEYS), whose test_acc is the final weights' with `tta`, and test_acc_by_tta for
    none, flip and flip-translate.
    """
    started = time.perf_counter()
    out = Path(out)
    check_run_folder(out, resume)  # another run's checkpoints are never overwritten
    out.mkdir(parents=True, exist_ok=True)
    np.random.seed(seed)
    prepared = prepare(load_raw("cifar10", data_dir=data_dir, download=download), val_size, seed=seed)
    metadata = {
        "dataset": "cifar10",
        "path": None,
        "data_dir": str(Path(data_dir).expanduser().resolve()) if data_dir else None,
        "val_size": val_size,
        "tta": tta,
        "seed": seed,
        "mean": prepared.mean.tolist(),
        "std": prepared.std.tolist(),
        "classes": prepared.classes,
        "model": "airbench",
        "recipe": "airbench94",
        "options": {"recipe": "airbench94", "epochs": epochs, "val_size": val_size, "seed": seed, **(changes or {})},
        "epochs": epochs,
    }
    last = out / "last.npz"
    recorded = int(load_checkpoint(last).state.get("workers", 1)) if resume and last.exists() else None
    start = recorded or (1 if workers == "auto" else int(workers))
    solver = airbench94_solver(
        prepared, out, epochs, seed, start, changes, resume=resume, verbose=not quiet, metadata=metadata
    )
    why = _choose_workers(solver, prepared) if workers == "auto" and recorded is None else "as asked or recorded"
    if not quiet:
        print(f"(training on {solver.workers} worker{'s' * (solver.workers > 1)}: {why})", flush=True)
    earlier_sessions = solver.elapsed
    solver.train()
    return _finish(solver, prepared, out, tta, started, earlier_sessions)


def _choose_workers(solver: Solver, prepared: Prepared) -> str:
    """--workers auto: every core where a measured step is faster, else 1 (set on the solver); returns why."""
    batch = min(solver.batch_size, len(prepared.X_train))
    choice = choose_workers(solver.model, prepared.X_train[:batch], prepared.y_train[:batch])
    solver.workers = choice.workers
    return f"auto: {choice.why}"


def _finish(solver: Solver, prepared: Prepared, out: Path, tta: str, started: float, earlier_sessions: float) -> dict:
    """Test the final weights, draw the pictures and write summary.json."""
    predictions = {mode: predict(solver.model, prepared.X_test, mode).argmax(axis=1) for mode in TTA}
    by_tta = {mode: float(np.mean(predicted == prepared.y_test)) for mode, predicted in predictions.items()}
    pictures = draw_run_pictures(solver, prepared, predictions[tta], out)
    summary = {
        "model": "airbench",
        "recipe": "airbench94",
        "dataset": "cifar10",
        **training_figures(solver, time.perf_counter() - started, earlier_sessions),
        "final_val_acc": solver.val_acc_history[-1] if solver.val_acc_history else None,
        "test_acc": by_tta[tta],
        "tta": tta,
        "test_acc_by_tta": by_tta,
        "files": {
            k: str(v) for k, v in {**pictures, "checkpoint": out / "last.npz", "metrics": out / "metrics.jsonl"}.items()
        },
        "keys": {
            **SUMMARY_KEYS,
            "test_acc": "test accuracy of the final weights (last.npz), as airbench reports it, with its TTA",
            "final_val_acc": "validation accuracy of the final weights",
            "test_acc_by_tta": "the final weights' test accuracy with each test-time augmentation",
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
