"""A small training run with checkpoints: run in-process or as a subprocess by test_solver.py.

    python tests/solver_run.py DIR EPOCHS [SECONDS_PER_STEP] [KILL]

trains (resuming from DIR/last.npz if it exists) and writes DIR/final.npz.
KILL, as WHEN:NAME:N, kills the process (os._exit, as SIGKILL: nothing is flushed or cleaned up)
just before or after the N-th file named NAME is published by its atomic rename: "before"
leaves that write's temporary file behind, as a kill in the middle of the write does.
"""

import os
import sys
import time

import numpy as np

from numcnn import models, nn
from numcnn.train.solver import Callback, Solver


class Slow(Callback):
    """Widens the window in which a test can kill or interrupt the run."""

    def __init__(self, seconds):
        self.seconds = seconds

    def on_step_end(self, solver):
        time.sleep(self.seconds)


def random_flip(X, rng):
    flip = rng.random(len(X)) < 0.5
    return np.where(flip[:, None, None, None], X[..., ::-1], X)


def make_run(directory, num_epochs, resume=True, seconds_per_step=0.0, **overrides):
    nn.manual_seed(0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 3, 8, 8)).astype(np.float32)
    y = (X[:, 0].mean(axis=(1, 2)) > 0).astype(int) + 2 * (X[:, 1].mean(axis=(1, 2)) > 0)
    data = dict(X_train=X[:96], y_train=y[:96], X_val=X[96:], y_val=y[96:])
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Linear(6 * 16, 4),
    )
    options = dict(
        update_rule="nesterov",
        optim_config={"learning_rate": 0.05},
        lr_decay=0.9,
        batch_size=16,
        num_epochs=num_epochs,
        seed=3,
        augment=random_flip,
        checkpoint_dir=directory,
        resume=resume,
        verbose=False,
        callbacks=[Slow(seconds_per_step)] if seconds_per_step else [],
    )
    options.update(overrides)
    return Solver(models.Classifier(net, reg=1e-3), data, **options)


def outcome(solver):
    """Everything the tests compare between runs."""
    return {
        **solver.model.state_arrays(),
        "loss_history": np.array(solver.loss_history),
        "train_acc_history": np.array(solver.train_acc_history),
        "val_acc_history": np.array(solver.val_acc_history),
    }


def kill_at(when: str, name: str, n: int) -> None:
    """Make the n-th atomic publication of a file called `name` kill the process (see above)."""
    real_replace, seen = os.replace, []

    def replace(source, target):
        if os.path.basename(target) == name:
            seen.append(target)
            if len(seen) == n and when == "before":
                os._exit(137)
        real_replace(source, target)
        if len(seen) == n and when == "after" and os.path.basename(target) == name:
            os._exit(137)

    os.replace = replace


if __name__ == "__main__":
    directory, epochs = sys.argv[1], int(sys.argv[2])
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    if len(sys.argv) > 4:
        when, name, n = sys.argv[4].split(":")
        kill_at(when, name, int(n))
    solver = make_run(directory, epochs, resume=True, seconds_per_step=seconds)
    solver.train()
    np.savez(f"{directory}/final.npz", **outcome(solver))
