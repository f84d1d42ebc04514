"""`numcnn sweep`: a hyperparameter search over `numcnn train`'s options (numcnn.sweep)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from .train_cmd import _dataset_argument


def _add_sweep(commands):
    from ..train.config import AUGMENTS, SCHEDULES, model_names
    from ..train.optim import UPDATE_RULES

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

    from .. import sweep
    from ..train.config import TrainConfig, UserError, check_ranges

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
