"""The board: forked workers' allgather in shared memory (numcnn.train.parallel.board)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

import numpy as np
import pytest
from parallel_nets import module_net, params, train

from numcnn.train.parallel import DataParallel, WorkerLost, processes, start_workers
from numcnn.train.parallel.board import Board


def _gather_rounds(board: Board, rank: int, rounds: int, results: list, spin: bool) -> None:
    rng = np.random.default_rng(rank)
    got = []
    for r in range(rounds):
        time.sleep(rng.uniform(0, 2e-3))  # ranks drift apart: each round's slowest rank changes
        shape = (1 + r % 3, rank + 2)  # shapes and dtypes differ by rank and round
        dtype = np.float64 if r % 2 else np.int32
        got.append(board.allgather(rank, np.full(shape, 100 * r + rank, dtype), lambda: None, spin))
    results[rank] = got


@pytest.mark.parametrize("spin", [True, False])
def test_every_rank_gets_every_ranks_array_in_rank_order_round_after_round(spin):
    size, rounds = 3, 40
    board, results = Board(size, slot_bytes=1024), [None] * size
    ranks = [threading.Thread(target=_gather_rounds, args=(board, q, rounds, results, spin)) for q in range(size)]
    for t in ranks:
        t.start()
    for t in ranks:
        t.join(30)
    for rank in range(size):
        assert len(results[rank]) == rounds
        for r, parts in enumerate(results[rank]):
            assert [p.dtype for p in parts] == [np.float64 if r % 2 else np.int32] * size
            assert [p.shape for p in parts] == [(1 + r % 3, q + 2) for q in range(size)]
            assert [float(p.flat[0]) for p in parts] == [100 * r + q for q in range(size)]
            assert all((p == p.flat[0]).all() for p in parts)


def test_a_waiting_rank_calls_check_and_its_error_ends_the_wait():
    board = Board(2)
    calls = []

    def check():
        calls.append(time.monotonic())
        raise WorkerLost("rank 1 is gone")

    started = time.monotonic()
    with pytest.raises(WorkerLost, match="rank 1 is gone"):
        board.allgather(0, np.zeros(3), check, spin=True)  # rank 1 never comes
    assert len(calls) == 1 and calls[0] - started < 1.0


def test_arrays_too_big_for_the_board_are_refused_by_fits():
    board = Board(2, slot_bytes=64)
    assert board.fits(np.zeros(8)) and not board.fits(np.zeros(9))
    assert not board.fits(np.zeros((1,) * 7))


def test_batch_norm_over_three_workers_gives_the_same_bits_through_the_board_and_the_pipes(monkeypatch):
    runs = {}
    for board in (True, False):
        monkeypatch.setattr(processes, "board_supported", lambda board=board: board)
        runs[board] = params(train(module_net(np.float64, batchnorm=True), 3, "processes").model)
    assert runs[True].keys() == runs[False].keys()
    for name in runs[False]:
        np.testing.assert_array_equal(runs[True][name], runs[False][name], err_msg=name)


class DiesOnWorkers:
    """A batch-norm model whose workers kill themselves before the step's first exchange."""

    def __init__(self, inner):
        self.inner, self.params, self.root = inner, inner.params, os.getpid()
        self.net = inner.net

    def loss(self, X, y=None):
        if os.getpid() != self.root:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner.loss(X, y)


def test_a_worker_killed_while_the_root_waits_on_the_board_raises_worker_lost_naming_it():
    model = DiesOnWorkers(module_net(batchnorm=True))
    X, y = np.zeros((8, 1, 8, 8), np.float32), np.zeros(8, int)
    started = time.monotonic()
    with start_workers(model, 2) as comm, pytest.raises(WorkerLost, match=r"worker 1 \(pid \d+\) died"):
        DataParallel(model, comm).loss(X, y)
    assert time.monotonic() - started < 10
    assert multiprocessing.active_children() == []


def _send_early(connection) -> None:
    connection.send(("arrays", "early"))
    time.sleep(5)


def test_a_message_the_root_reads_while_checking_its_workers_is_kept_for_its_turn():
    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe(duplex=True)
    worker = context.Process(target=_send_early, args=(theirs,), daemon=True)
    worker.start()
    root = processes.ProcessRoot([worker], [ours])
    try:
        deadline = time.monotonic() + 5
        while 0 not in root._early and time.monotonic() < deadline:
            root._check_workers()
        assert root._receive(0, "a test") == ("arrays", "early")
        assert 0 not in root._early
    finally:
        worker.kill()
        worker.join()
