"""Running a sweep: an Optuna study, shared through a journal file or a database, and worker processes.

Each trial is a Solver run whose validation accuracy after every epoch is
reported to Optuna, which may prune it (never after the first epoch, nor at
the last). Workers are processes that each load the data once and take
trials while the study's finished (complete or pruned) and running trials are
fewer than `trials`, so the study ends with exactly `trials` finished ones
(fewer only if a worker dies), and rerunning the command, on this or another
machine, continues the same study. Of two workers that start a trial at the
same moment for the last place, the one whose trial has the higher number
stands down, its trial marked failed with user attribute "surplus". There is
no coordinator of our own: the storage is the only thing workers share.

Trial n draws its random proposals from a stream seeded with (--seed, n)
(sampler.py): processes joining one study never repeat each other's draws,
and a one-worker sweep is reproducible from its seed.

Killed workers lose only their current trial, which is marked failed:
- each trial records its worker (host, pid, process start time); the sweep
  command that started a worker marks its running trial failed as soon as
  the worker dies, and a sweep starting later on that host fails the
  running trials of workers that are gone (a whole sweep killed at once);
- with a database, Optuna's heartbeat also fails trials whose worker, on
  any machine, has stopped beating for GRACE_SECONDS (storage.py).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import socket
import time
from pathlib import Path

from .storage import _optuna, load_study, open_storage


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot: with the pid, it names one process for good."""
    fields = _stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def worker_id(pid: int | None = None) -> str:
    """The name a trial records for its worker: "host:pid:start time" (pid: this process's by default).

    The start time, in clock ticks since boot from /proc ("None" where it cannot be read),
    makes the name one process's for good: a pid alone is reused.
    """
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def worker_pid(worker: str) -> int:
    """The pid in a worker_id() name."""
    return int(worker.rsplit(":", 2)[1])


def _alive(worker: str) -> bool:
    """Whether a worker on this host still runs: its pid names the same process, and not a zombie.

    A zombie (state Z, or X while it is being reaped) has exited but keeps its /proc entry, start
    time included, until its parent reaps it; after a sweep is killed whole its workers' parent is
    gone, and where nothing reaps orphans they stay zombies: counting them alive left their trials
    RUNNING for every later sweep.
    """
    host, pid, start = worker.rsplit(":", 2)
    if host != socket.gethostname() or start == "None":
        return True  # another machine's worker (the heartbeat judges it), or one we cannot tell
    fields = _stat(int(pid))
    return fields is not None and len(fields) > 19 and fields[0] not in ("Z", "X") and fields[19] == start


def fail_dead_workers_trials(storage, study_name: str) -> list[int]:
    """Mark failed the running trials whose worker process on this host has gone; returns their numbers.

    storage: an opened storage (open_storage) or its URL or path.
    """
    optuna = _optuna()
    if isinstance(storage, (str, Path)):
        storage = open_storage(str(storage))
    study_id = storage.get_study_id_from_name(study_name)
    failed = []
    for trial in storage.get_all_trials(study_id, deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if worker and not _alive(worker):
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            try:
                storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another process failed it first
            failed.append(trial.number)
    return failed


class _Report:
    """A Solver callback: each epoch's validation accuracy to Optuna, pruning when it says so."""

    def __init__(self, trial):
        self.trial = trial

    def on_epoch_end(self, solver):
        """solver: its epoch (from 1), num_epochs, val_acc_history and stop_training (early stopping)."""
        optuna = _optuna()
        self.trial.report(solver.val_acc_history[-1], solver.epoch)
        if solver.epoch >= solver.num_epochs or getattr(solver, "stop_training", False):
            return  # the last epoch: pruning now saves nothing, and the trial's result would be lost
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {solver.epoch}")


class SurplusTrial(Exception):
    """A trial created when the study already had its `trials` (another process asked at the same moment)."""


def taken(study, below: int | None = None) -> int:
    """Trials that count towards --trials: finished (complete or pruned) ones, and running ones whose
    worker may still finish them (not one on this host that has gone); only numbers below `below` if given.
    """
    optuna = _optuna()
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.RUNNING)
    count = 0
    for trial in study.get_trials(deepcopy=False, states=states):
        worker = trial.user_attrs.get("worker")
        gone = trial.state == optuna.trial.TrialState.RUNNING and worker is not None and not _alive(worker)
        count += (below is None or trial.number < below) and not gone
    return count


class _StopAtTrials:
    """An Optuna callback: stop taking trials once finished and running ones reach `trials`.

    Optuna's MaxTrialsCallback counts only finished trials, so a worker finishing one while another
    worker still ran the last started one more: --trials 4 ran 5.
    """

    def __init__(self, trials: int):
        self.trials = trials

    def __call__(self, study, trial) -> None:
        if taken(study) >= self.trials:
            study.stop()


class _QuietSurplus:
    """A logging filter: no 'Trial n failed' warnings from Optuna for surplus trials, which never ran."""

    def __init__(self):
        self.numbers = set()

    def filter(self, record) -> bool:
        return not any(record.getMessage().startswith(f"Trial {n} failed") for n in self.numbers)


@contextlib.contextmanager
def surplus_kept_quiet():
    """Within: Optuna's study.optimize logs no failure for the trials added to the filter's numbers."""
    quiet = _QuietSurplus()
    optimize_logger = logging.getLogger("optuna.study._optimize")
    optimize_logger.addFilter(quiet)
    try:
        yield quiet
    finally:
        optimize_logger.removeFilter(quiet)


def trial_config(base: dict, values: dict | None = None):
    """The TrainConfig of a trial: the sweep's fixed options (base also holds the sweep's own
    settings, such as its pruner, which are not training options) under the trial's values."""
    from ..train.config import TrainConfig

    fixed = {name: value for name, value in base.items() if name in TrainConfig.option_names()}
    return TrainConfig(**{**fixed, **(values or {})})


def _objective(base: dict, space: dict, prepared, trials: int, quiet: _QuietSurplus):
    from ..train.run import prepare_run
    from .space import as_train_arguments, suggest

    def objective(trial):
        trial.set_user_attr("worker", worker_id())
        # Trial numbers are handed out in order, one at a time, by the storage: the trials numbered below
        # this one are all there to count, and of two processes asking at once, the later one stands down.
        if taken(trial.study, below=trial.number) >= trials:
            trial.set_user_attr("surplus", True)
            quiet.numbers.add(trial.number)
            raise SurplusTrial(f"the study had its {trials} trials when trial {trial.number} started")
        config = trial_config(base, as_train_arguments(suggest(trial, space)))
        # Seeded as `numcnn train --seed` seeds (prepare_run), for every trial and not once per worker: the
        # best trial's command line then retrains the same weights, whichever trial of its worker it was.
        run = prepare_run(config, out=None, prepared=prepared, callbacks=[_Report(trial)])
        run.solver.train()
        return run.solver.best_val_acc

    return objective


def _announce(study, trial) -> None:
    if trial.user_attrs.get("surplus"):
        return
    params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
    state = trial.state.name.lower()
    if state == "complete":
        outcome = f"validation accuracy {trial.value:.4f}"
    elif state == "pruned" and trial.intermediate_values:
        epoch = max(trial.intermediate_values)
        outcome = f"pruned after epoch {epoch} at {trial.intermediate_values[epoch]:.4f}"
    else:
        outcome = state
    print(f"trial {trial.number}: {outcome} ({params})", flush=True)


def run_worker(
    study_name: str, storage: str, base: dict, space: dict, trials: int, timeout, seed: int, threads: int = 0
) -> None:
    """One worker: load the data once, then take trials until the study has `trials` finished or running ones.

    seed: the sampler's (trial n draws from its own stream, seeded with (seed, n): sampler.py).

    threads > 0 caps this process's BLAS and op threads (workers sharing a machine split its cores).
    """
    if threads:
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(threads, "blas")
        except ImportError:
            pass
        from ..ops import engine

        engine.set_num_threads(threads)
    _optuna()  # a missing Optuna is one clear line before any data is loaded
    from ..train.run import load_data

    prepared = load_data(trial_config(base))  # once per worker; each trial is seeded by prepare_run
    study = load_study(study_name, storage, base["pruner"], seed)
    if taken(study) >= trials:
        return
    with surplus_kept_quiet() as quiet:
        study.optimize(
            _objective(base, space, prepared, trials, quiet),
            timeout=timeout,
            catch=(FloatingPointError, SurplusTrial),
            callbacks=[_StopAtTrials(trials), _announce],
        )


def _describe_exit(code: int) -> str:
    if code < 0:
        import signal

        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def run_workers(
    study_name: str,
    storage: str,
    base: dict,
    space: dict,
    trials: int,
    workers: int,
    timeout=None,
    seed: int = 0,
    poll_seconds: float = 0.5,
) -> list[str]:
    """Run `workers` worker processes and wait for them; returns a line for each worker that died.

    Workers are spawned (fresh BLAS thread pools) with the machine's cores split between them. A worker
    that dies does not stop the others; its running trial is marked failed at once.
    """
    if workers == 1:
        run_worker(study_name, storage, base, space, trials, timeout, seed)
        return []
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=run_worker, args=(study_name, storage, base, space, trials, timeout, seed, threads))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    try:
        return _wait_for_workers(processes, storage, study_name, poll_seconds)
    finally:
        _stop_and_reap(processes, storage, study_name)


def _wait_for_workers(processes, storage: str, study_name: str, poll_seconds: float) -> list[str]:
    """Join each worker as it ends (reaping it); for one that died, fail its trial and say so."""
    deaths, running = [], list(processes)
    while running:
        time.sleep(poll_seconds)
        for process in [p for p in running if not p.is_alive()]:
            running.remove(process)
            process.join()
            if process.exitcode:
                failed = fail_dead_workers_trials(storage, study_name)
                lost = f"; its trial {failed[0]} is marked failed" if failed else ""
                deaths.append(f"worker {process.pid} stopped ({_describe_exit(process.exitcode)}){lost}")
                print(deaths[-1], flush=True)
    return deaths


def _stop_and_reap(processes, storage: str, study_name: str) -> None:
    """Leaving early (Ctrl-C, an error): stop the workers still running and reap every one, so that
    none is left behind as an orphan or a zombie, and fail the trials they were running."""
    stopped = [p for p in processes if p.is_alive()]
    for process in stopped:
        process.terminate()
    for process in processes:
        process.join()
    if stopped:
        fail_dead_workers_trials(storage, study_name)
