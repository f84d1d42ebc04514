"""The Solver's loop and its callbacks: one protocol for numcnn's own parts and the user's."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from numcnn.train import optim
from numcnn.train.callbacks import HOOKS, Callback
from numcnn.train.progress import QuietBar
from numcnn.train.solver import Solver
from numcnn.train.solver_options import SolverOptions


class Linear:
    """Scores x @ W: a model with the Solver protocol, small enough for a handful of steps."""

    def __init__(self):
        self.params = {"W": np.zeros((2, 2))}

    def loss(self, X, y=None):
        scores = X @ self.params["W"]
        if y is None:
            return scores
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        probs = shifted / shifted.sum(axis=1, keepdims=True)
        loss = -np.mean(np.log(probs[np.arange(len(y)), y]))
        probs[np.arange(len(y)), y] -= 1
        return loss, {"W": X.T @ probs / len(y)}


def _data(n=12):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 2))
    y = (X[:, 0] > 0).astype(int)
    return {"X_train": X, "y_train": y, "X_val": X, "y_val": y}


class Hooks(Callback):
    def __init__(self, stop_at_step=None):
        self.calls, self.stop_at_step = [], stop_at_step

    def __getattribute__(self, name):
        if name in HOOKS:

            def record(solver):
                self.calls.append((name, solver.step))
                if name == "on_step_end" and solver.step == self.stop_at_step:
                    solver.stop_training = True

            return record
        return object.__getattribute__(self, name)


def test_each_hook_runs_where_the_protocol_says(tmp_path):
    hooks = Hooks(stop_at_step=5)  # 4 steps an epoch: stops inside the second
    Solver(
        Linear(), _data(), batch_size=3, num_epochs=3, seed=0, verbose=False, callbacks=[hooks], checkpoint_dir=tmp_path
    ).train()
    assert hooks.calls == [
        ("on_train_begin", 0),
        ("on_epoch_begin", 0),
        ("on_step_end", 1),
        ("on_evaluate", 1),
        ("on_step_end", 2),
        ("on_step_end", 3),
        ("on_step_end", 4),
        ("on_evaluate", 4),
        ("on_epoch_end", 4),
        ("on_epoch_begin", 4),
        ("on_step_end", 5),
        ("on_stop", 5),
        ("on_evaluate", 5),
        ("on_train_end", 5),
    ]
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line.get("partial", False) for line in lines] == [False, True] and lines[1]["epoch"] == 1.25


def test_the_solver_prints_through_a_quiet_bar_outside_training(capsys):
    solver = Solver(Linear(), _data(), batch_size=3, num_epochs=1, seed=0, print_every=100)
    assert isinstance(solver.bar, QuietBar)
    solver.train()
    assert isinstance(solver.bar, QuietBar)  # closed at the epoch's end
    assert capsys.readouterr().out.splitlines()[0] == "(Iteration 1 / 4) loss: 0.693147"


def test_options_are_one_frozen_checked_record():
    solver = Solver(Linear(), _data(), batch_size=3, lr_decay=0.5)
    assert solver.options.lr_decay == 0.5 and solver.lr_decay == 0.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        solver.options.lr_decay = 1.0
    with pytest.raises(ValueError, match="lr_decay must be a finite number above 0, got nan"):
        SolverOptions(lr_decay=float("nan"))
    with pytest.raises(ValueError, match=r"Unrecognized arguments \['learning_rate'\]; Solver takes "):
        Solver(Linear(), _data(), learning_rate=0.1)


@pytest.mark.parametrize("name", sorted(optim.UPDATE_RULES))
def test_the_defaults_table_is_what_each_rule_fills_in(name):
    _, config = optim.UPDATE_RULES[name](np.zeros(1), np.zeros(1), {})
    assert {k: config[k] for k in optim.DEFAULTS[name]} == optim.DEFAULTS[name]


def test_a_schedule_starts_from_the_rules_default_learning_rate():
    from numcnn.train import schedules

    solver = Solver(
        Linear(),
        _data(),
        update_rule="adam",
        batch_size=3,
        num_epochs=1,
        seed=0,
        verbose=False,
        schedule=schedules.cosine(1),
    )
    solver.train()
    assert solver.optim_configs["W"]["learning_rate"] == pytest.approx(1e-3 * schedules.cosine(1)(0.75))


def test_a_rule_of_your_own_needs_its_learning_rate_for_a_schedule():
    from numcnn.train import schedules

    def my_rule(w, dw, config=None):
        return w - 0.1 * dw, config or {}

    with pytest.raises(ValueError, match="optim_config needs a learning_rate for update rule my_rule"):
        Solver(Linear(), _data(), update_rule=my_rule, schedule=schedules.cosine(1))
