"""The numcnn command line: train, evaluate, sweep, gradcheck, bench, demo.

    numcnn train                      a small CNN on scikit-learn's digits, no download
    numcnn train --model resnet20 --dataset cifar10 --data-dir DIR --epochs 30 --augment standard
    numcnn evaluate runs/.../best.npz
    numcnn sweep --trials 20 --workers 2 [--storage postgresql://...]
    numcnn gradcheck [OP ...]
    numcnn bench [ops|train|profile]
    numcnn demo convolution | vision [IMAGE]

Mistakes a person can fix (an unknown name, a missing dataset, a damaged
checkpoint) print one line saying what to do and exit with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time
from pathlib import Path

from .data import DataError, DatasetNotFound
from .io import CheckpointError, WriteError
from .train.solver import TrainingDiverged


def _hidden(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes sizes like 512,256, got {text!r}") from None
    if not dims or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"--hidden sizes must be positive, got {text!r}")
    return dims


def _add_train(commands):
    from .train.config import AUGMENTS, DATASETS, SCHEDULES, TTA, model_names
    from .train.optim import UPDATE_RULES

    p = commands.add_parser(
        "train",
        help="train a network and write a run folder",
        description="Train a network; writes checkpoints, metrics.jsonl, curves, filters and "
        "a confusion matrix into the run folder.",
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
    p.set_defaults(run=_train)


def train_config(args):
    """The TrainConfig of parsed `numcnn train` arguments (its checks raise UserError, naming the option).

    --dataset arrives as [NAME] or [folder, PATH]; arguments whose dataset was already split into
    dataset and path are taken as they are.
    """
    from .train.config import TrainConfig

    options = {name: value for name, value in vars(args).items() if name in TrainConfig.option_names()}
    if isinstance(args.dataset, list):
        options["dataset"], options["path"] = _dataset_argument(args.dataset)
    return TrainConfig(**options)


def _train(args) -> int:
    from .train.run import train
    from .train.run_folder import UserError, check_resume_options, check_run_folder

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
        summary = train(config, out)
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
        f"({summary['images_per_sec']} images/s in training steps), {summary['parameters']:,} parameters"
    )
    print(
        f"run folder: {out}  (best.npz, last.npz, metrics.jsonl, "
        + ", ".join(Path(f).name for k, f in summary["files"].items() if k in ("curves", "filters", "confusion"))
        + ")"
    )
    return 0


def _dataset_argument(tokens):
    """--dataset NAME [PATH] -> (name, path or None); only 'folder' takes (and needs) a path."""
    from .train.config import UserError

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
    from . import viz
    from .train.run import evaluate

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
    from .train.config import UserError

    if path.is_dir():
        raise UserError(f"{option} {path} is a folder: give a file name such as {path / 'out.png'}")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise UserError(f"{option} {path}: {parent} is a file, not a folder")


def _add_gradcheck(commands):
    p = commands.add_parser("gradcheck", help="numerical gradient check of every op (or those named), float64")
    p.add_argument("ops", nargs="*", metavar="OP")
    p.set_defaults(run=_gradcheck)


def _gradcheck(args) -> int:
    from .gradcheck.suite import THRESHOLD, run
    from .train.config import UserError

    try:
        results = run(args.ops)
    except ValueError as error:
        raise UserError(str(error)) from None
    print(f"{'op':<24} {'shape':<16} {'worst rel. error':>16}  result   (threshold {THRESHOLD:.0e})")
    for r in results:
        print(f"{r.op:<24} {r.shape:<16} {r.worst:>16.2e}  {'pass' if r.passed else 'FAIL'}")
    failed = [r.op for r in results if not r.passed]
    print(
        f"\n{len(results) - len(failed)} of {len(results)} passed"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


def _add_sweep(commands):
    from .train.config import AUGMENTS, SCHEDULES, model_names
    from .train.optim import UPDATE_RULES

    p = commands.add_parser(
        "sweep",
        help="search hyper-parameters with Optuna, on one machine or many",
        description="Each trial is a training run whose validation accuracy Optuna sees "
        "after every epoch (and may prune). The study lives in a journal file in "
        "the run folder, or in a database (--storage postgresql://...) that any "
        "number of machines running the same command share.",
    )
    p.add_argument(
        "--model",
        default="smallcnn",
        choices=model_names(),
        metavar="MODEL",
        help=f"one of: {', '.join(model_names())} (default smallcnn)",
    )
    p.add_argument("--dataset", nargs="+", default=["digits"], metavar=("NAME", "PATH"), help="as for train")
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--download", action="store_true")
    p.add_argument(
        "--trials",
        type=int,
        default=10,
        help="finished (complete or pruned) trials the study ends with, counting earlier runs'",
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    p.add_argument("--space", type=Path, help="a TOML search space (default: the model's)")
    p.add_argument("--storage", help="a database URL shared by machines (default: OUT/study.journal)")
    p.add_argument("--study", help="the study's name (default DATASET-MODEL)")
    p.add_argument(
        "--pruner",
        default="median",
        choices=("median", "halving"),
        help="median: stop trials below the median at the same epoch; halving: successive halving",
    )
    p.add_argument("--time-budget", type=float, help="stop starting trials after this many seconds")
    p.add_argument("--epochs", type=int, default=4, help="epochs per trial (unless the space varies them)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--optimizer",
        default="adam",
        choices=list(UPDATE_RULES),
        metavar="RULE",
        help="the update rule; the default space's learning rates are centred on its default",
    )
    p.add_argument("--schedule", default="none", choices=SCHEDULES)
    p.add_argument("--augment", default="none", choices=AUGMENTS)
    p.add_argument("--val-size", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="run folder (default runs/sweep-DATASET-MODEL)")
    p.set_defaults(run=_sweep)


def _sweep(args) -> int:
    import json

    from . import sweep
    from .train.config import TrainConfig, UserError, check_ranges

    dataset, path = _dataset_argument(args.dataset)
    if args.trials < 1 or args.workers < 1:
        raise UserError(f"--trials and --workers must be at least 1, got {args.trials} and {args.workers}")
    if args.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {args.epochs}")
    check_ranges(
        {
            "--batch-size": (args.batch_size, lambda v: v > 0, "positive"),
            "--seed": (args.seed, lambda v: 0 <= v < 2**32, "a whole number from 0 to 2**32 - 1"),
            "--time-budget": (args.time_budget, lambda v: 0 < v < math.inf, "a finite number of seconds above 0"),
        },
        args.val_size,
    )
    try:
        space = sweep.load_space(args.space, args.model, args.optimizer)
    except ValueError as error:
        raise UserError(str(error)) from None
    defaults = dataclasses.asdict(TrainConfig())  # `numcnn train`'s options and defaults
    base = dict(
        defaults,
        model=args.model,
        dataset=dataset,
        path=path,
        data_dir=args.data_dir,
        download=args.download,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        schedule=args.schedule,
        augment=args.augment,
        val_size=int(args.val_size) if args.val_size >= 1 else args.val_size,
        seed=args.seed,
        quiet=True,
        resume=False,
        pruner=args.pruner,
    )
    out = args.out or Path("runs") / f"sweep-{dataset}-{args.model}"
    out.mkdir(parents=True, exist_ok=True)
    storage = args.storage or str(out / "study.journal")
    name = args.study or f"{dataset}-{args.model}"
    try:
        study = sweep.load_study(name, storage, args.pruner, args.seed, create=True)
    except Exception as error:  # a database that refuses us: say which, without a traceback
        if isinstance(error, ImportError) or not sweep.is_database(storage):
            raise
        reason = (
            str(error)
            if isinstance(error, sweep.StorageUnreachable)
            else (f"{type(error).__name__}: {str(error).splitlines()[0]}")
        )
        raise UserError(f"cannot open the study in {storage}: {reason}") from None
    failed = sweep.fail_dead_workers_trials(storage, name)
    if failed:
        print(f"marked failed: trial(s) {', '.join(map(str, failed))}, whose workers are gone")
    print(
        f"study {name!r} in {storage}: {len(study.trials)} trials so far; "
        f"running to {args.trials} finished with {args.workers} worker(s)",
        flush=True,
    )
    deaths = sweep.run_workers(name, storage, base, space, args.trials, args.workers, args.time_budget, args.seed)
    study = sweep.load_study(name, storage, args.pruner, args.seed)
    print("\nbest trials:\n" + sweep.best_table(study))
    completed = [t for t in study.trials if t.state.name == "COMPLETE"]
    if completed:
        best = max(completed, key=lambda t: t.value)
        command = sweep.command_line(best.params, base, defaults)
        print(f"\nbest: trial {best.number}, validation accuracy {best.value:.4f}\n  {command}")
        sweep.plot_sweep(study, out / "sweep.png", space)
        (out / "best.json").write_text(
            json.dumps(
                {
                    "study": name,
                    "storage": storage,
                    "trial": best.number,
                    "val_acc": best.value,
                    "params": best.params,
                    "command": command,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"picture: {out / 'sweep.png'}; best trial: {out / 'best.json'}")
    if deaths:
        print(f"{len(deaths)} worker(s) stopped early; run the same command again to continue the study")
    return 0


def _add_bench(commands):
    p = commands.add_parser("bench", help="speed tables: ops, training throughput, a training step's profile")
    p.add_argument("table", nargs="?", default="ops", choices=("ops", "train", "profile"))
    p.add_argument("options", nargs=argparse.REMAINDER, help="passed on to the table's own options")
    p.set_defaults(run=_bench)


def _bench(args) -> int:
    from .bench import ops as bench_ops

    if args.table == "ops":
        return bench_ops.main(args.options)
    if args.table == "profile":
        from .bench import profile

        return profile.main(args.options)
    from .bench import train as bench_train

    return bench_train.main(args.options)


def _add_demo(commands):
    p = commands.add_parser("demo", help="image processing with numcnn's convolution")
    p.add_argument("name", choices=("convolution", "vision"))
    p.add_argument("image", nargs="?", type=Path, help="an image file for 'vision' (default: a bundled photo)")
    p.add_argument("--out", type=Path, help="the figure's path (default demo-NAME.png)")
    p.set_defaults(run=_demo)


def _demo(args) -> int:
    from . import demos

    out = args.out or Path(f"demo-{args.name}.png")
    if args.name == "convolution":
        demos.convolution_demo(out)
    else:
        demos.vision_demo(args.image, out)
    print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="numcnn", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"numcnn {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_train, _add_evaluate, _add_sweep, _add_gradcheck, _add_bench, _add_demo):
        add(commands)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from .train.config import UserError

    try:
        status = args.run(args)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
        return status
    except (UserError, DataError, DatasetNotFound, CheckpointError, WriteError, FileNotFoundError) as error:
        print(f"numcnn {args.command}: error: {error}", file=sys.stderr)
        return 2
    except ImportError as error:
        print(f"numcnn {args.command}: error: {error}", file=sys.stderr)
        return 2
    except MemoryError as error:  # e.g. --width 1000000 (numpy says how much it could not allocate)
        print(
            f"numcnn {args.command}: error: out of memory ({error or 'MemoryError'}): choose a smaller "
            f"model, --width, --hidden or --batch-size",
            file=sys.stderr,
        )
        return 2
    except BrokenPipeError:  # an OSError, so before the handler below
        # the reader went away (`numcnn evaluate ... | head`): stop quietly, as Unix tools do.
        # Python flushes stdout again at exit; point it at /dev/null so that flush cannot fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a tool killed by it
    except OSError as error:  # a full disk, a folder we may not write: one line, the last checkpoint is kept
        print(f"numcnn {args.command}: error: {_os_error_line(error)}", file=sys.stderr)
        return 2
    except TrainingDiverged as error:
        print(f"numcnn {args.command}: training diverged: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as error:
        print(f"\nnumcnn {args.command}: interrupted. {error}", file=sys.stderr)
        return 130


def _os_error_line(error: OSError) -> str:
    """One line for an OSError: what failed, on which file, and what to do about a full disk."""
    import errno

    where = f"{error.filename}: " if getattr(error, "filename", None) else ""
    what = error.strerror or str(error)
    if error.errno == errno.ENOSPC:
        return (
            f"{where}{what}: free some space, then run the same command with --resume "
            f"(the last complete checkpoint is kept)"
        )
    return f"{where}{what}"


if __name__ == "__main__":
    raise SystemExit(main())
