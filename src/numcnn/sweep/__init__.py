"""numcnn.sweep: hyper-parameter sweeps with Optuna (`numcnn sweep`).

One study, shared through a journal file in the run folder (several worker
processes on this machine) or a database URL such as postgresql://... (any
number of machines running the same command): storage.py opens it,
runner.py runs the trials in worker processes.

Sits just below the CLI: may import the training code (numcnn.train),
models, nn, ops (thread settings) and viz (plots), and Optuna; only the CLI
imports sweep.
"""

from .report import best_table, command_line, plot_sweep
from .runner import fail_dead_workers_trials, run_worker, run_workers
from .space import MODEL_SPACES, check_space, default_space, load_space
from .storage import StorageUnreachable, is_database, load_study, open_storage

__all__ = [
    "best_table",
    "command_line",
    "plot_sweep",
    "fail_dead_workers_trials",
    "is_database",
    "load_study",
    "open_storage",
    "StorageUnreachable",
    "run_worker",
    "run_workers",
    "MODEL_SPACES",
    "check_space",
    "default_space",
    "load_space",
]
