"""A progress bar: tqdm when it is installed and output is a terminal, else quiet.

The Solver shows one bar per epoch with the running loss, the last
accuracy, the learning rate and images per second. Messages printed while a
bar is open go through write() so that they do not break it.
"""

from __future__ import annotations

import sys


class QuietBar:
    """No bar: messages are printed as plain lines."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **values) -> None:
        pass

    def write(self, message: str) -> None:
        print(message, flush=True)

    def close(self) -> None:
        pass


class TqdmBar:
    """The progress bar of a training epoch, drawn by tqdm on stderr.

    total is the epoch's steps; initial, steps already done (a resumed epoch), which do not
    enter the rate and the time left. update, set_postfix, write and close do what tqdm's
    do; QuietBar has the same methods and draws nothing.
    """

    def __init__(self, total: int, description: str, initial: int = 0):
        from tqdm import tqdm

        # initial: steps done before (a resumed epoch), counted without entering the rate and ETA
        self._bar = tqdm(
            total=total, desc=description, leave=True, dynamic_ncols=True, file=sys.stderr, initial=initial
        )

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def set_postfix(self, **values) -> None:
        self._bar.set_postfix(values, refresh=False)

    def write(self, message: str) -> None:
        self._bar.write(message)

    def close(self) -> None:
        self._bar.close()


def tqdm_available() -> bool:
    """Whether tqdm can be imported (the progress bar needs it)."""
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def progress_bar(total: int, description: str, enabled: bool | None = None, initial: int = 0):
    """A bar over `total` steps, `initial` of them already done; enabled=None shows it only on a terminal."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if enabled and tqdm_available():
        return TqdmBar(total, description, initial)
    return QuietBar()
