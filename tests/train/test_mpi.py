"""Training over MPI: MPICommunicator's collectives under a real `mpiexec` on 127.0.0.1, launch
detection, a dead rank named, and `mpiexec -n 2 numcnn train` against one process.

Every mpiexec runs in a subprocess with a timeout, so a hang fails the test instead of blocking.
Skipped (with the reason) where mpi4py or mpiexec is missing: `pip install numcnn[mpi]`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from numcnn.cli import main
from numcnn.io import load_checkpoint
from numcnn.train import UserError
from numcnn.train.parallel.mpi import import_mpi, launched_by_mpi, pack, unpack


def _mpiexec() -> str | None:
    """The mpiexec beside this Python (MPICH's wheel puts it there), else the one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
    reason="needs mpi4py and mpiexec: pip install numcnn[mpi]",
)


def mpiexec(n: int, program: list[str], cwd, *flags: str, timeout: float = 60, env=None) -> subprocess.CompletedProcess:
    """`mpiexec -n n program` on this host, no hostfile, no ssh; output captured; env: more variables."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    command = [MPIEXEC, *flags, "-n", str(n), *program]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def run_ranks(source: str, n: int, tmp_path, *flags: str, timeout: float = 60, env=None) -> subprocess.CompletedProcess:
    script = tmp_path / "ranks.py"
    script.write_text(textwrap.dedent(source))
    return mpiexec(n, [sys.executable, str(script), str(tmp_path)], tmp_path, *flags, timeout=timeout, env=env)


# -- without MPI ---------------------------------------------------------------------------


def test_pack_round_trips_any_dtype_and_shape():
    arrays = {
        "W": np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2],  # not contiguous
        "step": np.array(7, dtype=np.int64),  # 0-d stays 0-d
        "empty": np.zeros((0, 5)),
        "mask": np.array([True, False, True]),
        "half": np.linspace(0, 1, 5, dtype=np.float16),
    }
    buffer = pack(arrays)
    assert buffer.dtype == np.uint8
    back = unpack(buffer)
    assert list(back) == list(arrays)
    for name, array in arrays.items():
        assert back[name].dtype == array.dtype and back[name].shape == array.shape, name
        np.testing.assert_array_equal(back[name], array)
        assert back[name].ctypes.data % 64 == buffer.ctypes.data % 64, name  # aligned like the buffer
        assert not back[name].flags.writeable
    assert unpack(buffer, writeable=True)["W"].flags.writeable


@pytest.mark.parametrize(
    "environ, launched",
    [
        ({}, False),
        ({"PMI_SIZE": "1", "PMI_RANK": "0"}, False),  # mpiexec -n 1: one process, nothing to split
        ({"PMI_SIZE": "4", "PMI_RANK": "2"}, True),  # MPICH's hydra, Intel MPI, srun
        ({"OMPI_COMM_WORLD_SIZE": "2"}, True),  # Open MPI
        ({"PMI_SIZE": "many"}, False),
    ],
)
def test_an_mpi_launch_is_told_by_the_launchers_variables(environ, launched):
    assert launched_by_mpi(environ) is launched


def test_numcnn_never_imports_mpi4py_unless_asked(tmp_path):
    code = "import sys, numcnn.cli, numcnn.train.parallel.mpi; print('mpi4py' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_mpi_without_mpi4py_is_a_user_error_saying_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py raises ImportError
    monkeypatch.delitem(sys.modules, "mpi4py.MPI", raising=False)
    with pytest.raises(UserError, match=r"pip install numcnn\[mpi\]"):
        import_mpi()


# -- collectives under mpiexec ----------------------------------------------------------------

COLLECTIVES = """
import sys
import numpy as np
from numcnn.train.parallel.mpi import MPICommunicator

folder = sys.argv[1]
comm = MPICommunicator()
r = comm.rank
out = {"size": np.array(comm.size)}
message = comm.broadcast({"kind": "step", "rows": [0, 43, 86]} if r == 0 else None)
out["message"] = np.array(repr(message))
sent = {"W": np.arange(6, dtype=np.float32).reshape(2, 3), "step": np.array(5), "none": np.zeros((0, 2))}
got = comm.broadcast_arrays(sent if r == 0 else None)
for name, array in got.items():
    out[f"bcast.{name}"] = array
gathered = comm.allgather(np.full((2, 2), r, dtype=np.int32))
out["allgather"] = np.stack(gathered)
out["allgather.0d"] = np.stack(comm.allgather(np.float64(r) / 3))
# float32 values whose sum depends on the order of the additions
rng = np.random.default_rng(r)
mine = (rng.standard_normal(1000) * 10.0 ** rng.integers(-4, 5, 1000)).astype(np.float32)
out["mine"] = mine
out["sum"] = comm.sum_in_rank_order(mine)
parts = comm.gather_arrays({"loss": np.float64(r + 0.5), "rows": np.arange(r + 2, dtype=np.int16)})
if r == 0:
    out["gathered.loss"] = np.array([float(p["loss"]) for p in parts])
    out["gathered.rows"] = np.concatenate([p["rows"] for p in parts])
comm.close()
np.savez(f"{folder}/rank{r}.npz", **out)
"""


@needs_mpi
@pytest.mark.parametrize(
    "transport",
    [
        {},  # ranks of one machine: shared memory
        {"MPIR_CVAR_NOLOCAL": "1"},  # MPICH's network path over loopback, as between machines
    ],
    ids=["shared-memory", "network"],
)
def test_collectives_under_mpiexec_keep_rank_order_and_give_every_rank_the_same_bits(tmp_path, transport):
    result = run_ranks(COLLECTIVES, 3, tmp_path, env=transport)
    assert result.returncode == 0, result.stdout + result.stderr
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(3)]
    for out in ranks:
        assert int(out["size"]) == 3
        assert str(out["message"]) == repr({"kind": "step", "rows": [0, 43, 86]})
        np.testing.assert_array_equal(out["bcast.W"], np.arange(6, dtype=np.float32).reshape(2, 3))
        assert out["bcast.W"].dtype == np.float32 and out["bcast.step"].shape == () and int(out["bcast.step"]) == 5
        assert out["bcast.none"].shape == (0, 2)
        np.testing.assert_array_equal(out["allgather"], np.arange(3, dtype=np.int32)[:, None, None] * np.ones((2, 2)))
        assert out["allgather.0d"].shape == (3,) and out["allgather.0d"].tolist() == [0.0, 1 / 3, 2 / 3]
    in_order = ranks[0]["mine"] + ranks[1]["mine"] + ranks[2]["mine"]  # ((x0 + x1) + x2) in float32
    for out in ranks:
        assert out["sum"].tobytes() == in_order.tobytes()
    assert (ranks[2]["mine"] + ranks[1]["mine"] + ranks[0]["mine"]).tobytes() != in_order.tobytes()  # order shows
    np.testing.assert_array_equal(ranks[0]["gathered.loss"], [0.5, 1.5, 2.5])
    np.testing.assert_array_equal(ranks[0]["gathered.rows"], [0, 1, 0, 1, 2, 0, 1, 2, 3])


FAILING = """
import os, sys, time
import numpy as np
from numcnn.train.parallel import WorkerLost
from numcnn.train.parallel.mpi import MPICommunicator

folder = sys.argv[1]
comm = MPICommunicator()
started = time.perf_counter()
try:
    for step in range(100000):
        comm.broadcast({"step": step} if comm.rank == 0 else None)
        if step == 20 and comm.rank == 1:
            comm.report(ValueError("the shard had no rows"))
            time.sleep(5)
            os._exit(1)
        comm.gather_arrays({"g": np.ones(3)})
        comm.sum_in_rank_order(np.ones(2))
except WorkerLost as error:
    with open(f"{folder}/lost{comm.rank}.txt", "w") as file:
        file.write(f"{time.perf_counter() - started:.3f} {error}")
    os._exit(1)
"""


WATCHING = """
import os, signal, subprocess, time
import numpy as np
from numcnn.train.parallel import WorkerLost
from numcnn.train.parallel.mpi import MPICommunicator

comm = MPICommunicator(grace=0.5)  # a singleton: MPI without mpiexec, one rank
finished = subprocess.Popen(["true"])
finished.wait()
never = comm._comm.Irecv(np.empty(1), source=0, tag=99)  # a message nobody sends: waits forever
here, elsewhere = (comm.host, finished.pid, comm.pid_space), ("elsewhere", 4242, "another machine")
for peers, notice in ([here], False), ([elsewhere], True):
    comm.peers, comm.broken = [comm.peers[0], *peers], False
    if notice:  # what hydra sends the survivors under -disable-auto-cleanup
        os.kill(os.getpid(), signal.SIGUSR1)
    started = time.perf_counter()
    try:
        comm._wait(never, "a gather")
    except WorkerLost as error:
        print(f"{time.perf_counter() - started:.2f} {error}")
"""


def test_a_rank_waiting_on_a_dead_one_names_it_within_seconds(tmp_path):
    """A rank of this host that no longer runs is named within half a second; after mpiexec's
    failure notice (SIGUSR1) with every local rank running, the ranks elsewhere are named."""
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("needs mpi4py: pip install numcnn[mpi]")
    result = subprocess.run([sys.executable, "-c", WATCHING], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    local, remote = result.stdout.splitlines()
    seconds, message = local.split(" ", 1)
    assert (
        float(seconds) < 3
        and message.startswith("MPI rank 1 (pid ")
        and "died (rank 0 was waiting for a gather)" in message
    )
    seconds, message = remote.split(" ", 1)
    assert float(seconds) < 5
    assert message.startswith("mpiexec reported a dead MPI rank") and message.endswith("rank 1 (pid 4242 on elsewhere)")


@needs_mpi
def test_a_failing_worker_reports_its_error_to_the_root(tmp_path):
    result = run_ranks(FAILING, 2, tmp_path)
    assert result.returncode != 0
    message = (tmp_path / "lost0.txt").read_text().split(" ", 1)[1]
    assert message.startswith("MPI rank 1 (pid ") and message.endswith("failed: ValueError: the shard had no rows")


# -- `mpiexec -n 2 numcnn train` -------------------------------------------------------------

TRAIN = ["--model", "threelayer", "--dataset", "digits", "--epochs", "2", "--quiet"]


def numcnn_over_mpi(tmp_path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return mpiexec(2, [sys.executable, "-m", "numcnn", "train", *TRAIN, *args], tmp_path, timeout=timeout)


def losses_and_params(run: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    checkpoint = load_checkpoint(run / "last.npz")
    return np.array(checkpoint.state["loss_history"]), checkpoint.model_arrays


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The same run in one process (no mpiexec): the reference."""
    folder = tmp_path_factory.mktemp("one")
    assert main(["train", *TRAIN, "--out", str(folder / "run")]) == 0
    return folder / "run"


def kill_rank_1_after_epoch_1(tmp_path, run: Path) -> tuple[subprocess.CompletedProcess, int, float]:
    """`mpiexec -n 2 numcnn train` with rank 1 killed (SIGKILL) as soon as last.npz is written.

    Returns (the job, rank 1's pid read from rank 0's first line, seconds from the kill to the job's end).
    """
    command = [MPIEXEC, "-n", "2", sys.executable, "-m", "numcnn", "train", *TRAIN, "--out", str(run)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as job:
        try:
            first = job.stdout.readline()
            pid = int(re.search(r"rank 1 \(pid (\d+) on ", first).group(1))
            deadline = time.monotonic() + 120
            while not (run / "last.npz").exists() and time.monotonic() < deadline:
                time.sleep(0.01)  # the end of epoch 1
            os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            rest = job.stdout.read()
            job.wait(timeout=30)
            stopped = time.monotonic() - killed
        finally:
            job.kill()
    return subprocess.CompletedProcess(command, job.returncode, first + rest), pid, stopped


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """A 2-rank run whose rank 1 is killed after epoch 1, then resumed with the same command."""
    folder = tmp_path_factory.mktemp("mpi")
    run = folder / "run"
    killed, pid, stopped = kill_rank_1_after_epoch_1(folder, run)
    step_kept = load_checkpoint(run / "last.npz").state["step"]
    resumed = numcnn_over_mpi(folder, "--out", str(run), "--resume")
    return run, killed, pid, stopped, step_kept, resumed


@needs_mpi
def test_a_killed_rank_stops_the_run_within_seconds_and_resume_trains_as_one_process_does(
    killed_and_resumed, one_process
):
    """MPICH's mpiexec ends every rank when one dies, and rank 0's first line maps pids to ranks.
    mpiexec's banner names the first process it reaps: mostly the dead rank, but in 4 of about
    20 runs here a rank it stopped itself, or no banner came at all; so only a named pid's
    being one of the job's is asserted. last.npz survives; --resume completes, and the whole run's
    losses and weights are one process's within float32 rounding (sums over ranks in another order)."""
    run, killed, pid, stopped, step_kept, resumed = killed_and_resumed
    ranks = re.match(r"MPI: 2 ranks: rank 0 \(pid (\d+) on .+\), rank 1 \(pid (\d+) on .+\)\n", killed.stdout)
    assert ranks and int(ranks.group(2)) == pid
    assert killed.returncode != 0 and stopped < 15, killed.stdout
    for named in re.findall(r"PID (\d+) RUNNING AT ", killed.stdout):
        assert named in ranks.groups(), killed.stdout
    assert step_kept == 20  # epoch 1's checkpoint, intact
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    losses, params = losses_and_params(run)
    one_losses, one_params = losses_and_params(one_process)
    assert len(losses) == len(one_losses) == 2 * 20  # every step (20 batches of 64 an epoch)
    np.testing.assert_allclose(losses, one_losses, rtol=2e-5, atol=0)
    for name, value in one_params.items():
        np.testing.assert_allclose(params[name], value, rtol=1e-3, atol=1e-5, err_msg=name)
    assert load_checkpoint(run / "last.npz").state["workers"] == 2
    for name in ("best.npz", "metrics.jsonl", "summary.json", "curves.png"):  # rank 0 writes the run folder
        assert (run / name).exists(), name


@needs_mpi
@pytest.mark.slow
def test_a_killed_and_resumed_mpi_run_equals_an_uninterrupted_one_bit_for_bit(tmp_path, killed_and_resumed):
    result = numcnn_over_mpi(tmp_path, "--out", "run")
    assert result.returncode == 0, result.stdout + result.stderr
    losses, params = losses_and_params(tmp_path / "run")
    resumed_losses, resumed_params = losses_and_params(killed_and_resumed[0])
    assert losses.tobytes() == resumed_losses.tobytes()
    for name, value in params.items():
        assert resumed_params[name].tobytes() == value.tobytes(), name


@needs_mpi
def test_a_run_refused_on_rank_0_lets_the_other_ranks_go(tmp_path):
    """A mistake found before training (here the batch, smaller than the ranks) is one line and
    exit status 2, as without MPI; the ranks waiting for the model stop instead of hanging."""
    result = mpiexec(3, [sys.executable, "-m", "numcnn", "train", "--batch-size", "2", "--out", "run"], tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "numcnn train: error: --batch-size 2 cannot be split over 3 MPI ranks" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


@needs_mpi
def test_mpi_ranks_and_local_worker_processes_train_the_same_bits_batch_norm_included(tmp_path):
    """smallcnn's batch norm combines its sums over the ranks (allgather, rank order): two MPI ranks
    and two local worker processes (--workers 2, tests/train/test_parallel_*.py) give the same bits."""
    options = ["--model", "smallcnn", "--dataset", "digits", "--epochs", "1", "--batch-size", "128", "--quiet"]
    over_mpi = mpiexec(2, [sys.executable, "-m", "numcnn", "train", *options, "--out", "mpi"], tmp_path, timeout=240)
    assert over_mpi.returncode == 0, over_mpi.stdout + over_mpi.stderr
    assert main(["train", *options, "--workers", "2", "--out", str(tmp_path / "local")]) == 0
    losses, params = losses_and_params(tmp_path / "mpi")
    local_losses, local_params = losses_and_params(tmp_path / "local")
    assert len(losses) == 10 and losses.tobytes() == local_losses.tobytes()  # 1293 training images // 128
    assert params.keys() == local_params.keys()
    for name, value in local_params.items():  # running means and variances too
        assert params[name].tobytes() == value.tobytes(), name


@needs_mpi
@pytest.mark.slow
def test_ctrl_c_under_mpiexec_saves_on_rank_0_and_stops_every_rank(tmp_path):
    """mpiexec passes Ctrl-C to every rank: the workers ignore it, rank 0 ends its step, saves
    last.npz, tells them to stop and exits 130, as one process does; --resume then completes."""
    run = tmp_path / "run"
    command = [MPIEXEC, "-n", "2", sys.executable, "-m", "numcnn", "train", *TRAIN, "--epochs", "30", "--out", str(run)]
    with subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as job:
        try:
            deadline = time.monotonic() + 120
            while not (run / "last.npz").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            job.send_signal(signal.SIGINT)
            output = job.communicate(timeout=30)[0]
        finally:
            job.kill()
    assert job.returncode == 130, output
    step = load_checkpoint(run / "last.npz").state["step"]
    assert f"training interrupted at step {step}; state saved to {run / 'last.npz'}" in output
    resumed = numcnn_over_mpi(tmp_path, "--epochs", "2", "--out", str(run), "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
