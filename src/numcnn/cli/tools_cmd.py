"""`numcnn gradcheck`, `numcnn bench` and `numcnn demo`: the commands that check, time and show."""

from __future__ import annotations

import argparse
from pathlib import Path


def _add_gradcheck(commands):
    p = commands.add_parser("gradcheck", help="numerical gradient check of every op (or those named), float64")
    p.add_argument("ops", nargs="*", metavar="OP")
    p.set_defaults(run=_gradcheck)


def _gradcheck(args) -> int:
    from ..gradcheck.suite import THRESHOLD, run
    from ..train.config import UserError

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


def _add_bench(commands):
    p = commands.add_parser(
        "bench",
        help="speed tables: ops, training throughput, a training step's profile, data-parallel scaling; "
        "tune: fill the wisdom",
    )
    p.add_argument("table", nargs="?", default="ops", choices=("ops", "train", "profile", "scaling", "tune"))
    p.add_argument("options", nargs=argparse.REMAINDER, help="passed on to the table's own options")
    p.set_defaults(run=_bench)


def _bench(args) -> int:
    from ..bench import ops as bench_ops

    if args.table == "ops":
        return bench_ops.main(args.options)
    if args.table == "tune":
        from ..bench import tune

        return tune.main(args.options)
    if args.table == "profile":
        from ..bench import profile

        return profile.main(args.options)
    if args.table == "scaling":
        from ..bench import scaling_run

        return scaling_run.main(args.options)
    from ..bench import train as bench_train

    return bench_train.main(args.options)


def _add_demo(commands):
    p = commands.add_parser("demo", help="image processing with numcnn's convolution")
    p.add_argument("name", choices=("convolution", "vision"))
    p.add_argument("image", nargs="?", type=Path, help="an image file for 'vision' (default: a bundled photo)")
    p.add_argument("--out", type=Path, help="the figure's path (default demo-NAME.png)")
    p.set_defaults(run=_demo)


def _demo(args) -> int:
    from .. import demos

    out = args.out or Path(f"demo-{args.name}.png")
    if args.name == "convolution":
        demos.convolution_demo(out)
    else:
        demos.vision_demo(args.image, out)
    print(f"wrote {out}")
    return 0
