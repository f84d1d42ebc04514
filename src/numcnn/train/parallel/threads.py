"""Workers as threads of this process, each with its own replica of the model.

The same worker loop as processes (worker.serve), over queues instead of
pipes; arrays are handed over by reference (read-only views: nothing is
copied or pickled). NumPy releases the GIL in BLAS, copies and ufunc loops,
so the threads run mostly in parallel; less so than processes (the issue
measured 1.2-1.3x against 1.4-1.6x on two cores), which is why processes
are the default where fork exists.

Replicas are deep copies of the model. The global random generators
(np.random, numcnn.nn's) belong to the root's thread: a replica's dropout
draws instead from a private generator of the same kind, set at every step
to the state the root's global one had (private_generators). All of a
replica's Dropout layers that used numcnn.nn's global generator share one
private generator, so they draw one after another as from the global one.
"""

from __future__ import annotations

import copy
import queue
import threading
import traceback

import numpy as np

from .comm import Communicator, WorkerLost, expected

__all__ = ["ThreadRoot", "ThreadWorker", "start_threads"]

POLL_SECONDS = 0.5


def _read_only(arrays: dict) -> dict:
    views = {}
    for name, a in arrays.items():
        view = np.asarray(a).view()
        view.flags.writeable = False
        views[name] = view
    return views


class ThreadRoot(Communicator):
    """Rank 0 of worker threads."""

    rank = 0

    def __init__(self, threads, down, up):
        self.size = len(threads) + 1
        self._threads, self._down, self._up = threads, down, up
        self._closed = False

    def _receive(self, index: int, during: str):
        while True:
            try:
                message = self._up[index].get(timeout=POLL_SECONDS)
            except queue.Empty:
                if not self._threads[index].is_alive():
                    raise WorkerLost(f"worker {index + 1} (thread) ended during {during}") from None
                continue
            if message[0] == "error":
                raise WorkerLost(f"worker {index + 1} (thread) failed during {during}:\n{message[1]}")
            return message

    def _send_all(self, message) -> None:
        for q in self._down:
            q.put(message)

    def broadcast(self, message=None):
        self._send_all(("message", message))
        return message

    def broadcast_arrays(self, arrays):
        self._send_all(("arrays", _read_only(arrays)))
        return dict(arrays)

    def allgather(self, array):
        parts = [np.asarray(array)] + [self._receive(i, "a batch-norm exchange")[1] for i in range(len(self._threads))]
        self._send_all(("parts", parts))
        return parts

    def gather_arrays(self, arrays):
        return [dict(arrays)] + [self._receive(i, "the gradients' gather")[1] for i in range(len(self._threads))]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._send_all(("stop",))
        for thread in self._threads:
            thread.join()


class ThreadWorker(Communicator):
    """Rank r >= 1 in a thread."""

    def __init__(self, rank: int, size: int, down: queue.Queue, up: queue.Queue):
        self.rank, self.size, self._down, self._up = rank, size, down, up

    def _receive(self, kind: str):
        return expected(self._down.get(), kind, self.rank)

    def broadcast(self, message=None):
        return self._receive("message")[1]

    def broadcast_arrays(self, arrays):
        return self._receive("arrays")[1]

    def allgather(self, array):
        self._up.put(("part", np.asarray(array)))
        return self._receive("parts")[1]

    def gather_arrays(self, arrays):
        self._up.put(("arrays", _read_only(arrays)))
        return None

    def report(self, error: BaseException) -> None:
        self._up.put(("error", "".join(traceback.format_exception(error)).rstrip()))

    def close(self) -> None:
        pass


def private_generators(replica):
    """Give a replica private generators in place of the global ones; returns restore(replica, states).

    restore sets them (and the generators modules held already) to the root's states of a step:
    numcnn.nn's global generator for Dropout layers that had none, np.random's for a
    FullyConnectedNet's dropout (its shard_random).
    """
    from ...nn import Dropout
    from .worker import restore_module_generators

    nn_generator = np.random.default_rng()  # PCG64, as numcnn.nn's global generator
    net = getattr(replica, "net", None)
    for _, module in net.named_modules() if net is not None and hasattr(net, "named_modules") else []:
        if isinstance(module, Dropout) and module.rng is None:
            module.rng = nn_generator
    legacy = np.random.RandomState()
    if hasattr(replica, "shard_random"):
        replica.shard_random = legacy

    def restore(model, states: dict) -> None:
        nn_generator.bit_generator.state = states["numcnn_nn"]
        state = states["numpy_legacy"]
        keys = np.asarray(state["keys"], dtype=np.uint32)
        legacy.set_state((state["kind"], keys, state["position"], state["has_gauss"], state["cached_gaussian"]))
        restore_module_generators(model, states)

    return restore


def start_threads(model, size: int) -> ThreadRoot:
    """size - 1 worker threads, each serving its own deep copy of `model`; the root's communicator."""
    from .worker import serve

    threads, down, up = [], [], []
    for rank in range(1, size):
        down.append(queue.Queue())
        up.append(queue.Queue())
        comm = ThreadWorker(rank, size, down[-1], up[-1])
        replica = copy.deepcopy(model)
        thread = threading.Thread(
            target=_quietly,
            args=(serve, comm, replica, private_generators(replica)),
            name=f"numcnn-worker-{rank}",
            daemon=True,
        )
        threads.append(thread)
        thread.start()
    return ThreadRoot(threads, down, up)


def _quietly(serve, comm, model, restore) -> None:
    """serve, with its failure reported to the root (which raises it) rather than printed twice."""
    try:
        serve(comm, model, restore)
    except Exception:
        pass
