"""Fill the planner's wisdom ahead of a run: one forward and backward of each model.

    numcnn bench tune [--model resnet20 airbench threelayer] [--batch-size 128] [--retune]

Each convolution the step meets is planned (ops/engine/planner.py): timed
over every candidate engine unless the wisdom file already holds it. Prints
per convolution problem the candidates' median fwd+bwd ms and the choice,
where the wisdom file is, and what the tuning cost against a CIFAR-10
epoch of such steps (50,000 images; a step here is forward and backward,
without the optimizer).
"""

from __future__ import annotations

import argparse
import time

from ..ops.engine import planner, tuning, wisdom
from ..ops.engine.candidates import ConvProblem, rules_pick
from .train import RULES, batch, numcnn_model

CIFAR_TRAIN_IMAGES = 50_000


def describe(problem: ConvProblem) -> str:
    """'3x3 16->16 32x32 s1' and the rest of what sets a convolution apart."""
    N, C, H, W = problem.x_shape
    F, _, KH, KW = problem.w_shape
    g = problem.geom
    text = f"{KH}x{KW} {C}->{F} {H}x{W} s{g.stride[0]}" + (f" g{problem.groups}" if problem.groups > 1 else "")
    return text + (" nhwc" if problem.channels_last else "")


def tune_model(name: str, batch_size: int) -> dict:
    """Plan every convolution of one fwd+bwd of `name`; returns the log and a planned step's seconds."""
    model = numcnn_model(name)
    X, y = batch(batch_size)
    with planner.recording() as log:
        model.loss(X, y)
    steps = []
    for _ in range(2):  # the least disturbed of two planned steps
        start = time.perf_counter()
        model.loss(X, y)
        steps.append(time.perf_counter() - start)
    return {"log": log, "step": min(steps)}


def report(name: str, batch_size: int, result: dict) -> None:
    """Print what tune_model(name, batch_size) returned, one convolution problem at a time.

    For each: its candidates' median fwd+bwd ms, the rules' pick and the choice (measured
    now or read from the wisdom file); then what the tuning cost against a CIFAR-10 epoch.
    """
    log, step = result["log"], result["step"]
    seen: dict[str, list] = {}
    for planned in log:
        seen.setdefault(planned.key, [planned, 0])[1] += 1
    print(f"\n{name}, batch {batch_size}: {len(seen)} convolution problems planned ({len(log)} layers)")
    for planned, count in seen.values():
        entry = planned.entry
        times = ", ".join(f"{n} {ms:.1f}" for n, ms in sorted(entry["ms"].items(), key=lambda item: item[1]))
        where = f"measured now, {planned.seconds:.1f} s" if planned.measured else "from the wisdom file"
        print(
            f"  {describe(planned.problem):<24} x{count}  rules: {rules_pick(planned.problem)} -> "
            f"{entry['choice']} ({where})\n      fwd+bwd ms: {times}"
        )
    if not log:
        print(f"  every convolution is below the size threshold ({tuning.TUNE_MIN_MACS:.3g} multiply-adds): the rules")
    steps = -(-CIFAR_TRAIN_IMAGES // batch_size)
    tuning_s = sum(planned.seconds for planned in log)
    print(
        f"  tuning {tuning_s:.1f} s; a fwd+bwd step {step:.2f} s, so a CIFAR-10 epoch of {steps} steps "
        f"~{steps * step:.0f} s: tuning = {100 * tuning_s / (steps * step):.1f}% of one epoch"
    )


def main(argv=None) -> int:
    """`numcnn bench tune`: plan each model's convolutions into the wisdom file; returns 0."""
    parser = argparse.ArgumentParser(prog="numcnn bench tune", description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", choices=list(RULES), default=["resnet20", "airbench"], metavar="NAME")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--retune", action="store_true", help="measure again what the wisdom file holds")
    parser.add_argument(
        "--min-macs",
        type=float,
        default=None,
        help=f"plan layers from this many multiply-adds (default tuning.TUNE_MIN_MACS, {tuning.TUNE_MIN_MACS:.3g})",
    )
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be a positive integer, got {args.batch_size}")
    if not planner.tuning_enabled():
        parser.error("NUMCNN_TUNE=0 turns the planner off: nothing to tune")
    if args.min_macs is not None:
        tuning.TUNE_MIN_MACS = args.min_macs  # this process only
    planner.forget(ignore_file=args.retune)
    machine = wisdom.machine()
    print(f"wisdom: {wisdom.wisdom_path()}")
    print(f"machine: {machine['cpu']}, BLAS {machine['blas']}, numcnn {machine['numcnn']}, numpy {machine['numpy']}")
    print("times: median fwd+bwd ms of each candidate on this layer (a busy machine makes them noisy)")
    for name in args.model:
        report(name, args.batch_size, tune_model(name, args.batch_size))
    return 0
