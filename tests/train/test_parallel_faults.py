"""Workers that die, roots that die, Ctrl-C and resume: nothing hangs, leaks or is left behind."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from parallel_nets import params, threelayer, train

from numcnn.io import load_checkpoint
from numcnn.train import Callback, TrainingDiverged
from numcnn.train.parallel import DataParallel, WorkerLost, start_workers

SRC = str(Path(__file__).resolve().parents[2] / "src")


class AtStep(Callback):
    """Calls action(solver) at the end of one step."""

    def __init__(self, step, action):
        self.step, self.action = step, action

    def on_step_end(self, solver):
        if solver.step == self.step:
            self.action(solver)


def _alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (a /proc scan: no psutil)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            state = next(line for line in f if line.startswith("State:"))
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "Z" not in state.split()[1]


def _uninterrupted(tmp_path) -> list:
    return train(threelayer(), 2, "processes", steps_epochs=3, checkpoint_dir=tmp_path / "whole").loss_history


def test_a_killed_worker_raises_worker_lost_naming_it_and_resume_completes(tmp_path):
    out, killed = tmp_path / "run", {}

    def kill(solver):
        killed["pid"] = solver.parallel.comm.pids[0]
        killed["at"] = time.monotonic()
        os.kill(killed["pid"], signal.SIGKILL)

    with pytest.raises(WorkerLost, match=r"worker 1 \(pid \d+\) died \(signal 9, SIGKILL\)") as caught:
        train(threelayer(), 2, "processes", steps_epochs=3, checkpoint_dir=out, callbacks=[AtStep(6, kill)])
    assert time.monotonic() - killed["at"] < 10
    assert f"pid {killed['pid']}" in str(caught.value) and "step 7" in str(caught.value)
    assert not _alive(killed["pid"]) and multiprocessing.active_children() == []
    assert load_checkpoint(out / "last.npz").state["step"] == 4  # the epoch's checkpoint, intact
    resumed = train(threelayer(), 2, "processes", steps_epochs=3, checkpoint_dir=out, resume=True)
    assert resumed.step == 12
    assert resumed.loss_history == _uninterrupted(tmp_path)


def test_ctrl_c_then_resume_with_two_workers_equals_an_uninterrupted_run_bit_for_bit(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt, match="interrupted at step 6"):
        train(
            threelayer(), 2, "processes", steps_epochs=3, checkpoint_dir=out,
            callbacks=[AtStep(6, lambda s: os.kill(os.getpid(), signal.SIGINT))],
        )  # fmt: skip
    assert multiprocessing.active_children() == []
    model = threelayer()
    resumed = train(model, 2, "processes", steps_epochs=3, checkpoint_dir=out, resume=True)
    whole = train(threelayer(), 2, "processes", steps_epochs=3)
    assert resumed.loss_history == whole.loss_history
    for name, value in params(whole.model).items():
        np.testing.assert_array_equal(params(model)[name], value)


def test_resuming_with_another_number_of_workers_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    train(threelayer(), 2, "processes", steps_epochs=1, checkpoint_dir=out)
    capsys.readouterr()
    resumed = train(threelayer(), 1, steps_epochs=2, checkpoint_dir=out, resume=True)
    assert "trained with 2 workers, this run continues with 1" in capsys.readouterr().err
    assert resumed.step == 8
    assert load_checkpoint(out / "last.npz").state["workers"] == 1


def test_workers_stop_when_training_diverges():
    def poison(solver):
        solver.model.params["W1"][...] = np.nan

    with pytest.raises(TrainingDiverged):
        train(threelayer(), 2, "processes", callbacks=[AtStep(2, poison)])
    assert multiprocessing.active_children() == []


class FailsOnWorkers:
    """A model whose loss fails in every process but the one that built it."""

    def __init__(self, inner):
        self.inner, self.params, self.root = inner, inner.params, os.getpid()

    def loss(self, X, y=None):
        if os.getpid() != self.root:
            raise ArithmeticError("only on a worker")
        return self.inner.loss(X, y)


def test_a_failing_worker_raises_worker_lost_with_its_traceback():
    model = FailsOnWorkers(threelayer())
    X, y = np.zeros((4, 1, 8, 8), np.float32), np.zeros(4, int)
    with start_workers(model, 2) as comm, pytest.raises(WorkerLost, match="(?s)worker 1 .*only on a worker"):
        DataParallel(model, comm).loss(X, y)
    assert multiprocessing.active_children() == []


def _shared_files() -> set:
    return {name for name in os.listdir("/dev/shm") if "numcnn" in name or name.startswith("psm_")}


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm on this system")
def test_workers_leave_no_shared_memory_files_or_open_descriptors():
    model = threelayer()
    X, y = np.zeros((64, 1, 8, 8), np.float32), np.zeros(64, int)
    files, descriptors = _shared_files(), len(os.listdir("/proc/self/fd"))
    for backend in ("processes", "threads"):
        with start_workers(model, 3, backend) as comm:
            parallel = DataParallel(model, comm)
            for rows in (8, 64):  # the shared file grows once
                parallel.loss(X[:rows], y[:rows])
            assert _shared_files() == files  # anonymous files: no name in /dev/shm even while running
    assert _shared_files() == files
    assert len(os.listdir("/proc/self/fd")) == descriptors


ROOT_SCRIPT = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    from parallel_nets import threelayer, train
    from numcnn.train import Callback

    class Report(Callback):
        def on_step_end(self, solver):
            if solver.step == 2:
                print(*solver.parallel.comm.pids, flush=True)
                time.sleep(60)

    train(threelayer(), 3, "processes", callbacks=[Report()])
    """
)


def test_workers_die_with_a_killed_root():
    script = ROOT_SCRIPT.format(tests=str(Path(__file__).parent))
    env = {**os.environ, "PYTHONPATH": SRC}
    root = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        pids = [int(p) for p in root.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        root.kill()
        root.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in pids), "a worker outlived its root"
    finally:
        root.kill()
        root.wait()


def test_a_given_communicators_ranks_serve_until_train_ends():
    """Solver(communicator=...) (as under MPI): the ranks serve while train() runs, then return."""
    model = threelayer()
    with start_workers(model, 2) as comm:
        given = train(model, communicator=comm, backend="auto")
        pid = comm.pids[0]
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid)  # its serve() returned when train() ended
    assert given.workers == 2
    assert given.loss_history == train(threelayer(), 2, "processes").loss_history
