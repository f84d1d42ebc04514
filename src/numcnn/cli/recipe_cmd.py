"""`numcnn airbench94`: airbench94's recipe for CIFAR-10 (numcnn.train.airbench94)."""

from __future__ import annotations

import time
from pathlib import Path


def _add_airbench94(commands) -> None:
    from .train_cmd import _workers

    p = commands.add_parser(
        "airbench94",
        help="train CIFAR-10 with airbench94's recipe (Keller Jordan's 94%% in 10 epochs)",
        description="airbench94's network and recipe on CIFAR-10: GELU, patch whitening, Nesterov SGD at batch "
        "1024, Lookahead, alternating flips and 2-pixel translations, label smoothing; tested with flip TTA. "
        "Writes a run folder as numcnn train does.",
    )
    p.add_argument("--data-dir", type=Path, help="where CIFAR-10's files are (default $NUMCNN_DATA)")
    p.add_argument("--download", action="store_true", help="fetch the official files if missing")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--width", type=int, default=64, help="the first group's channels; the others have 4x (default 64)")
    p.add_argument(
        "--batch-size", type=int, default=1024, help="images per step; the rates follow airbench's rules (default 1024)"
    )
    p.add_argument("--val-size", type=float, default=1000, help="training images held out (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="run folder (default runs/cifar10-airbench94-TIME)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--workers", type=_workers, default="auto", metavar="N|auto", help="as for numcnn train")
    p.add_argument("--tta", default="flip", choices=("none", "flip", "flip-translate"))
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=_airbench94)


def _airbench94(args) -> int:
    from ..train.airbench94 import train_airbench94
    from ..train.config import UserError

    for option, value in (("--epochs", args.epochs), ("--width", args.width), ("--batch-size", args.batch_size)):
        if value < 1:
            raise UserError(f"{option} must be positive, got {value}")
    if args.resume and args.out is None:
        raise UserError("--resume needs --out: the run folder to continue")
    val_size = int(args.val_size) if args.val_size >= 1 else args.val_size
    out = args.out or Path("runs") / f"cifar10-airbench94-{time.strftime('%Y%m%d-%H%M%S')}"
    changes = {"widths": (args.width, 4 * args.width, 4 * args.width), "batch_size": args.batch_size}
    summary = train_airbench94(
        out,
        args.data_dir,
        args.epochs,
        val_size,
        args.seed,
        args.workers,
        args.resume,
        args.download,
        args.tta,
        args.quiet,
        changes,
    )
    by_tta = ", ".join(f"{k} {v:.4f}" for k, v in summary["test_acc_by_tta"].items())
    print(f"\nairbench94 on cifar10: test accuracy of the final weights {summary['test_acc']:.4f} ({args.tta} TTA)")
    print(f"by test-time augmentation: {by_tta}; best validation {summary['best_val_acc']:.4f}")
    print(f"{summary['steps']} steps, {summary['train_seconds']} s of training, {summary['workers']} worker(s)")
    print(f"run folder: {out}")
    return 0
