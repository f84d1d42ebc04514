"""`numcnn train` and `numcnn evaluate`: their options, and the commands that run them.

numcnn train [--model M --dataset D ...]    train_config(args) -> TrainConfig, then train.run.train
mpiexec -n 4 numcnn train ...               one run over 4 MPI ranks (mpi_entry.py)
numcnn evaluate CHECKPOINT [--dataset D]     a checkpoint's accuracy on a dataset split
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def _hidden(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes sizes like 512,256, got {text!r}") from None
    if not dims or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"--hidden sizes must be positive, got {text!r}")
    return dims


def _workers(text: str):
    """--workers: 'auto' or a positive whole number."""
    if text == "auto":
        return text
    try:
        workers = int(text)
    except ValueError:
        workers = 0
    if workers < 1:
        raise argparse.ArgumentTypeError(f"--workers takes a positive whole number or 'auto', got {text!r}")
    return workers


def _add_train(commands):
    from ..train.config import AUGMENTS, DATASETS, SCHEDULES, TTA, model_names
    from ..train.optim import UPDATE_RULES

    p = commands.add_parser(
        "train",
        help="train a network and write a run folder",
        description="Train a network; writes checkpoints, metrics.jsonl, curves, filters and "
        "a confusion matrix into the run folder (and TensorBoard event files with --tensorboard).",
    )
    p.add_argument(
        "--model",
        default="smallcnn",
        choices=model_names(),
        metavar="MODEL",
        help=f"one of: {', '.join(model_names())} (default smallcnn)",
    )
    p.add_argument(
        "--dataset",
        nargs="+",
        default=["digits"],
        metavar=("NAME", "PATH"),
        help=f"one of: {', '.join(DATASETS)}; 'folder PATH' for your own class folders (default digits)",
    )
    p.add_argument("--data-dir", type=Path, help="where the dataset's files are (default $NUMCNN_DATA)")
    p.add_argument("--download", action="store_true", help="fetch the official files if missing")
    p.add_argument(
        "--image-size",
        type=int,
        metavar="N",
        help="--dataset folder: resize each image's shorter side "
        "to N and center-crop it to N x N (photos of mixed sizes); evaluate reuses it",
    )
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--optimizer",
        default="adam",
        choices=list(UPDATE_RULES),
        metavar="RULE",
        help=f"one of: {', '.join(UPDATE_RULES)} (default adam)",
    )
    p.add_argument("--lr", type=float, help="learning rate (default depends on the optimizer)")
    p.add_argument("--momentum", type=float, help="for sgd_momentum and nesterov (default 0.9)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="L2 on weights; decoupled for adamw")
    p.add_argument("--schedule", default="none", choices=SCHEDULES)
    p.add_argument("--lr-decay", type=float, help="per-epoch factor for --schedule step (default 0.95)")
    p.add_argument("--warmup", type=float, help="warm-up epochs for --schedule warmup (default 1)")
    p.add_argument(
        "--augment", default="none", choices=AUGMENTS, help="standard: random crop, plus flips for natural images"
    )
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument(
        "--tta",
        default="none",
        choices=TTA,
        help="average test predictions over mirrored (and 2-pixel shifted) copies; for natural images, not digits",
    )
    p.add_argument(
        "--decoupled",
        action="store_true",
        help="SGD rules: apply --weight-decay inside the optimizer (decoupled) instead of as L2",
    )
    p.add_argument("--lookahead", type=int, metavar="K", help="Lookahead every K steps (alpha 0.5)")
    p.add_argument("--ema", type=float, metavar="DECAY", help="keep an average of the weights; it is the result")
    p.add_argument(
        "--freeze",
        action="append",
        default=[],
        metavar="PATTERN",
        help="glob of parameter names not to train, e.g. 'whiten.*' (repeatable)",
    )
    p.add_argument("--freeze-bn-weight", action="store_true", help="keep batch-norm scales at 1 (airbench)")
    p.add_argument(
        "--whiten",
        action="store_true",
        help="initialise the first conv as a patch-whitening filter bank and freeze it (airbench)",
    )
    p.add_argument("--grad-clip", type=float, help="clip the global gradient norm")
    p.add_argument(
        "--hidden",
        type=_hidden,
        help="hidden sizes: fc's layers (default 100,100); one size for twolayer, threelayer (default 100)",
    )
    p.add_argument("--norm", choices=("batchnorm", "layernorm"), help="normalization for fc")
    p.add_argument("--dropout", type=float, default=0.0, help="drop probability for fc")
    p.add_argument(
        "--width",
        type=int,
        help="channels of a convolutional model's first layer or stage (the rest "
        "keep the model's ratios); filters of threelayer",
    )
    p.add_argument("--val-size", type=float, default=0.1, help="validation fraction (or count) of the training set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="run folder (default runs/DATASET-MODEL-TIME)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--time-budget", type=float, help="stop training after this many seconds")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write TensorBoard event files into RUN_FOLDER/tensorboard: loss, accuracies and "
        "learning rate, first-layer filters, weight and gradient histograms, the options as hparams "
        '(pip install "numcnn[tensorboard]"; view them with: pip install tensorboard; tensorboard --logdir runs)',
    )
    p.add_argument(
        "--workers",
        type=_workers,
        default="auto",
        metavar="N|auto",
        help="split every training step over N processes, one per core, each on its rows of the "
        "batch (results equal one's within rounding); auto: every core where that measures faster "
        "for this model on this machine, else 1 (default auto)",
    )
    p.set_defaults(run=_train)


def train_config(args):
    """The TrainConfig of parsed `numcnn train` arguments (its checks raise UserError, naming the option).

    --dataset arrives as [NAME] or [folder, PATH]; arguments whose dataset was already split into
    dataset and path are taken as they are.
    """
    from ..train.config import TrainConfig

    options = {name: value for name, value in vars(args).items() if name in TrainConfig.option_names()}
    if isinstance(args.dataset, list):
        options["dataset"], options["path"] = _dataset_argument(args.dataset)
    return TrainConfig(**options)


def _train(args) -> int:
    from ..train.parallel.mpi import launched_by_mpi  # tells from the environment: mpi4py stays unloaded

    if launched_by_mpi():  # `mpiexec -n 4 numcnn train ...`: this process is one rank of one run
        from .mpi_entry import train_over_mpi

        return train_over_mpi(args, _train_here)
    return _train_here(args)


def _train_here(args, **run) -> int:
    """`numcnn train` in this process; run: train()'s callbacks and communicator (MPI's root)."""
    from ..train.run import train
    from ..train.run_folder import UserError, check_resume_options, check_run_folder

    config = train_config(args)  # every option checked before the run folder is made
    if args.resume and args.out is None:
        raise UserError("--resume needs --out: the run folder to continue")
    out = args.out or Path("runs") / f"{config.dataset}-{config.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    check_run_folder(out, args.resume)
    if args.resume:
        check_resume_options(out, config)
    created = [folder for folder in (out, *out.parents) if not folder.exists()]
    out.mkdir(parents=True, exist_ok=True)
    try:
        summary = train(config, out, **run)
    except BaseException:
        for folder in created:  # a run refused before it wrote anything leaves no folder behind
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    print(
        f"\n{summary['model']} on {summary['dataset']}: best validation accuracy {summary['best_val_acc']:.4f}, "
        f"test accuracy {summary['test_acc']:.4f}{'' if summary['tta'] == 'none' else ' (TTA: ' + summary['tta'] + ')'}"
    )
    print(
        f"{summary['epochs']} epochs, {summary['steps']} steps, {summary['train_seconds']} s of training "
        f"({summary['images_per_sec']} images/s in training steps, {summary['workers']} "
        f"worker{'s' * (summary['workers'] > 1)}), {summary['parameters']:,} parameters"
    )
    listed = [Path(f).name for k, f in summary["files"].items() if k in ("curves", "filters", "confusion")]
    listed += [Path(summary["files"]["tensorboard"]).name + "/"] if "tensorboard" in summary["files"] else []
    print(f"run folder: {out}  (best.npz, last.npz, metrics.jsonl, {', '.join(listed)})")
    if "tensorboard" in summary["files"]:
        print(f"view it in TensorBoard: tensorboard --logdir {out.parent}")
    return 0


def _dataset_argument(tokens):
    """--dataset NAME [PATH] -> (name, path or None); only 'folder' takes (and needs) a path."""
    from ..train.config import UserError

    if len(tokens) > 2 or (len(tokens) == 2 and tokens[0] != "folder"):
        raise UserError(f"--dataset takes a name, or 'folder PATH'; got {' '.join(tokens)!r}")
    return tokens[0], (Path(tokens[1]) if len(tokens) == 2 else None)


def _add_evaluate(commands):
    p = commands.add_parser("evaluate", help="accuracy, per-class accuracy and confusion matrix of a checkpoint")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--dataset", nargs="+", metavar=("NAME", "PATH"), help="default: the checkpoint's")
    p.add_argument("--data-dir", type=Path, help="where the dataset's files are now (default: the checkpoint's)")
    p.add_argument("--split", choices=("test", "val", "train"), default="test")
    p.add_argument(
        "--tta",
        choices=("none", "flip", "flip-translate"),
        help="test-time augmentation (default: the run's, as training reported it)",
    )
    p.add_argument("--confusion", type=Path, help="also write the confusion matrix as a PNG")
    p.set_defaults(run=_evaluate)


def _evaluate(args) -> int:
    from .. import viz
    from ..train.run import evaluate

    dataset, path = _dataset_argument(args.dataset) if args.dataset else (None, None)
    if args.confusion:
        _check_output_file("--confusion", args.confusion)
    result = evaluate(args.checkpoint, dataset, path, args.data_dir, args.split, args.tta)
    print(
        f"{args.checkpoint}: {result['split']} accuracy {result['accuracy']:.4f} on {result['samples']} images"
        + ("" if result["tta"] == "none" else f" (TTA: {result['tta']})")
    )
    width = max(len(c) for c in result["classes"])
    print("per-class accuracy:")
    for name, accuracy in result["per_class"].items():
        print(f"  {name:<{width}}  {accuracy:.4f}")
    print("confusion matrix (rows: true, columns: predicted):")
    for name, row in zip(result["classes"], result["confusion"]):
        print(f"  {name:<{width}}  " + " ".join(f"{v:5d}" for v in row))
    if args.confusion:
        viz.plot_confusion_matrix(result["confusion"], result["classes"], args.confusion)
    return 0


def _check_output_file(option: str, path: Path) -> None:
    """Refuse, before any work, an output file that is a folder or lies under a file."""
    from ..train.config import UserError

    if path.is_dir():
        raise UserError(f"{option} {path} is a folder: give a file name such as {path / 'out.png'}")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise UserError(f"{option} {path}: {parent} is a file, not a folder")
