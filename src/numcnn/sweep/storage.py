"""Where a sweep's study lives: a journal file in the run folder, or a database, and opening it.

    storage = open_storage("runs/sweep/study.journal")     # or "postgresql://host/db"
    study = load_study("sweep", storage, pruner="median", seed=0, create=True)

A journal file is shared by worker processes on one machine (a lock a dead
worker left is broken after LOCK_GRACE_SECONDS); a database by any number of
machines, with Optuna's heartbeat failing the trials of a worker silent for
GRACE_SECONDS. A database that does not answer within CONNECT_TIMEOUT_SECONDS
raises StorageUnreachable.
"""

from __future__ import annotations

import time
from pathlib import Path

HEARTBEAT_SECONDS = 5
GRACE_SECONDS = 15
LOCK_GRACE_SECONDS = 10  # a journal lock held longer than this is a dead worker's (writes take ms)
TABLE_RACE_RETRIES = 5
CONNECT_TIMEOUT_SECONDS = 10  # a database that accepts the connection but never answers (libpq waits for ever)


class StorageUnreachable(ConnectionError):
    """The database did not answer within the connection timeout."""


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ImportError(
            "sweeps use Optuna: pip install 'numcnn[sweep]' (optuna, and psycopg for PostgreSQL)"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def is_database(storage: str) -> bool:
    """Whether a --storage value names a database (a URL with "://") rather than a journal file."""
    return "://" in storage


def database_url(storage: str) -> str:
    """SQLAlchemy's URL: postgresql:// goes through psycopg 3, the driver numcnn[sweep] installs.

    (SQLAlchemy's default driver for a bare postgresql:// changed between releases.)
    """
    scheme, rest = storage.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return storage


def _connect_arguments(url: str) -> tuple[dict, float]:
    """The driver's connection arguments, and the timeout they give: CONNECT_TIMEOUT_SECONDS unless
    the URL sets its own (?connect_timeout=S, which libpq and psycopg read)."""
    from sqlalchemy.engine import make_url

    given = make_url(url).query.get("connect_timeout")
    if given is not None:
        return {}, float(given if isinstance(given, str) else given[-1])
    if url.startswith("postgresql"):
        return {"connect_timeout": CONNECT_TIMEOUT_SECONDS}, CONNECT_TIMEOUT_SECONDS
    return {}, 0


def _timed_out(error: Exception) -> bool:
    """psycopg's ConnectionTimeout, as SQLAlchemy wraps it ('connection timeout expired')."""
    return "timeout expired" in str(error) or type(getattr(error, "orig", None)).__name__ == "ConnectionTimeout"


def lost_table_race(error: Exception) -> bool:
    """Whether a new database's tables were being made by another process at the same moment.

    Machines that start together race to create Optuna's tables: the losers see a unique-key
    violation (IntegrityError) or PostgreSQL's "relation ... already exists" (DuplicateTable, a
    ProgrammingError), and find the tables made when they try again.
    """
    name = type(error).__name__
    return name == "IntegrityError" or (name == "ProgrammingError" and "already exists" in str(error))


def open_storage(storage: str):
    """A database URL (heartbeat on) or a journal file path (created with its folder).

    A database that does not answer within the connection timeout raises StorageUnreachable.
    """
    optuna = _optuna()
    if is_database(storage):
        import warnings

        url = database_url(storage)
        connect_args, timeout = _connect_arguments(url)
        with warnings.catch_warnings():  # Optuna calls its heartbeat experimental; it is what fails dead trials
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            for attempt in range(TABLE_RACE_RETRIES + 1):
                try:
                    return optuna.storages.RDBStorage(
                        url,
                        engine_kwargs={"connect_args": connect_args},
                        heartbeat_interval=HEARTBEAT_SECONDS,
                        grace_period=GRACE_SECONDS,
                    )
                except ImportError:
                    raise ImportError(
                        f"--storage {storage.split('://')[0]}://... needs its database driver: "
                        f"pip install 'numcnn[sweep]' (psycopg for PostgreSQL)"
                    ) from None
                except Exception as error:
                    if _timed_out(error):
                        raise StorageUnreachable(
                            f"no answer within {timeout:g} s (is a database server listening there? "
                            f"?connect_timeout=SECONDS in the URL waits longer)"
                        ) from None
                    if not lost_table_race(error) or attempt == TABLE_RACE_RETRIES:
                        raise
                    time.sleep(0.2 * (attempt + 1))
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    path = Path(storage).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    # The journal's lock is a symlink to the journal, and a worker killed while holding it leaves
    # it behind; the others remove it after LOCK_GRACE_SECONDS. The path must be absolute: Optuna
    # links to the path as given, and a relative one dangles (it is read from the link's folder),
    # so the stale lock was never recognised and every worker waited for it forever.
    return optuna.storages.JournalStorage(
        JournalFileBackend(str(path), JournalFileSymlinkLock(str(path), grace_period=LOCK_GRACE_SECONDS))
    )


def make_pruner(name: str):
    """'median': stop a trial below the median of earlier trials at the same epoch;
    'halving': successive halving (keep the top half at epochs 1, 2, 4, ...)."""
    optuna = _optuna()
    if name == "median":
        # Steps are epochs, counted from 1, and Optuna prunes from step == n_warmup_steps on: 2 spares
        # every trial's first epoch (1 pruned there, which cut the eventual winner of a sweep at 0.70).
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    raise ValueError(f"pruner must be 'median' or 'halving', got {name!r}")


def load_study(name: str, storage, pruner: str = "median", seed: int = 0, create: bool = False):
    """The study (maximizing validation accuracy) in a storage URL, path or opened storage; created if `create`."""
    optuna = _optuna()
    if isinstance(storage, (str, Path)):
        storage = open_storage(str(storage))
    from .sampler import TrialSeededSampler  # trial n draws from its own stream, (seed, n): see sampler.py

    common = dict(study_name=name, storage=storage, sampler=TrialSeededSampler(seed), pruner=make_pruner(pruner))
    if create:
        return optuna.create_study(direction="maximize", load_if_exists=True, **common)
    return optuna.load_study(**common)
