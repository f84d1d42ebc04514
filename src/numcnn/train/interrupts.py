"""Ctrl-C during training: deferred to the end of the step, so that the state saved is consistent."""

from __future__ import annotations

import signal
import threading


class _DeferredInterrupt:
    """Turn Ctrl-C into a flag the loop checks between steps, so the state saved is consistent.

    A second Ctrl-C interrupts at once. Only installed in the main thread.
    """

    def __init__(self, solver):
        self.solver = solver
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.solver.interrupted:
            raise KeyboardInterrupt
        self.solver.interrupted = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False
