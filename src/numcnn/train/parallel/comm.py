"""Communicator: how data-parallel workers talk, in-process, between processes or over MPI.

Rank 0 (the root) runs the Solver; every rank, the root included, runs the
whole network on its rows of each batch. Every method is collective: all
ranks call it, in the same order. Sums are taken in rank order (0, 1, ...,
size - 1, left to right) and their result is the same bits on every rank, so
a run is reproducible bit for bit for a given number of workers and every
replica stays identical.

A rank that dies makes the others raise WorkerLost, naming it, instead of
waiting for it forever.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

__all__ = ["Communicator", "SingleProcess", "Stopped", "WorkerLost"]


class WorkerLost(RuntimeError):
    """Another rank died or stopped answering; the message names it."""


class Stopped(Exception):
    """Raised on a worker (rank >= 1) by a collective when the root stopped it or went away."""


def expected(message: tuple, kind: str, rank: int) -> tuple:
    """A worker's check of the root's next message: Stopped for a stop, an error for the wrong kind."""
    if message[0] == "stop":
        raise Stopped
    if message[0] != kind:
        raise RuntimeError(f"worker {rank} expected {kind!r} from the root, got {message[0]!r}")
    return message


class Communicator(ABC):
    """How the ranks of a data-parallel run exchange messages and arrays; every method is collective.

    All ranks call each method, in the same order. rank is this process's (0 is the root,
    which runs the Solver) and size the number of ranks. The implementations:
    SingleProcess (one rank), threads and forked processes on one machine, MPI across
    machines. A communicator is a context manager that closes on the way out.
    """

    rank: int  # 0 is the root
    size: int

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @abstractmethod
    def broadcast(self, message: object = None) -> object:
        """The root's picklable message (a small command) on every rank; others pass None."""

    @abstractmethod
    def broadcast_arrays(self, arrays: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        """The root's named arrays on every rank (others pass None).

        On ranks other than the root the arrays returned may be read-only
        views that stay valid only until the next broadcast_arrays call.
        """

    @abstractmethod
    def allgather(self, array: np.ndarray) -> list[np.ndarray]:
        """Every rank's array (same shape and dtype on all), in rank order, on every rank."""

    @abstractmethod
    def gather_arrays(self, arrays: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]] | None:
        """Every rank's named arrays at the root, in rank order; None on the other ranks."""

    @abstractmethod
    def close(self) -> None:
        """Release what the communicator holds (processes, shared memory); idempotent."""

    def sum_in_rank_order(self, array: np.ndarray) -> np.ndarray:
        """sum_r array_r over ranks, added in rank order: the same bits on every rank."""
        parts = self.allgather(np.ascontiguousarray(array))
        total = np.array(parts[0], copy=True)
        for part in parts[1:]:
            total += part
        return total


class SingleProcess(Communicator):
    """One rank: every collective returns what it was given."""

    rank, size = 0, 1

    def broadcast(self, message=None):
        return message

    def broadcast_arrays(self, arrays):
        return dict(arrays)

    def allgather(self, array):
        return [array]

    def gather_arrays(self, arrays):
        return [arrays]

    def close(self):
        pass
