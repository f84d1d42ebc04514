"""The numcnn command line: train, evaluate, sweep, gradcheck, bench, demo.

    numcnn train                      a small CNN on scikit-learn's digits, no download
    numcnn train --model resnet20 --dataset cifar10 --data-dir DIR --epochs 30 --augment standard
    numcnn evaluate runs/.../best.npz
    numcnn airbench94 --data-dir DIR  airbench94's CIFAR-10 recipe, 10 epochs
    numcnn sweep --trials 20 --workers 2 [--storage postgresql://...]
    numcnn gradcheck [OP ...]
    numcnn bench [ops|train|profile|scaling|tune]
    numcnn demo convolution | vision [IMAGE]

Mistakes a person can fix (an unknown name, a missing dataset, a damaged
checkpoint) print one line saying what to do and exit with status 2.

    __init__.py     main (errors mapped to one line and an exit status) and build_parser
    train_cmd.py    train and evaluate; train_config(args) -> TrainConfig
    recipe_cmd.py   airbench94 (numcnn.train.airbench94)
    mpi_entry.py    `mpiexec -n N numcnn train`: rank 0 trains, the other ranks serve its steps
    sweep_cmd.py    sweep
    tools_cmd.py    gradcheck, bench, demo

The top floor: may import every numcnn package; none imports it.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..data import DataError, DatasetNotFound
from ..io import CheckpointError, WriteError
from ..train.parallel import WorkerLost
from ..train.solver import TrainingDiverged
from .recipe_cmd import _add_airbench94
from .sweep_cmd import _add_sweep
from .tools_cmd import _add_bench, _add_demo, _add_gradcheck
from .train_cmd import _add_evaluate, _add_train, train_config

__all__ = ["build_parser", "main", "train_config"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of the `numcnn` command and its subcommands: train, evaluate, airbench94, sweep, ...

    The others are gradcheck, bench and demo; each subcommand's parser stores the function
    that runs it as `args.run`.
    """
    parser = argparse.ArgumentParser(prog="numcnn", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"numcnn {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_train, _add_evaluate, _add_airbench94, _add_sweep, _add_gradcheck, _add_bench, _add_demo):
        add(commands)
    return parser


def _version() -> str:
    from .. import __version__

    return __version__


def main(argv=None) -> int:
    """Run the numcnn command line on argv (default: sys.argv[1:]); returns the exit status.

    The command's own status (0 when it succeeds). 2 with the help when no command is
    given, and for a mistake a person can fix, printed as one line: an unknown name, a
    missing dataset or file, a damaged checkpoint, a missing optional package, too little
    memory, an OSError. 1 when training diverged or a worker was lost; 130 on Ctrl-C; 141
    when the reader of stdout went away.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from ..train.config import UserError

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
    except WorkerLost as error:  # a data-parallel worker died: one line naming it; --resume continues
        print(f"numcnn {args.command}: {error}", file=sys.stderr)
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
