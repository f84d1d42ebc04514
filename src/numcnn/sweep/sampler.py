"""A sampler whose random stream belongs to the trial, not to the process.

Optuna's samplers draw from one random stream per process, seeded once. Every
process that joins a study with the same seed (two machines running the same
command, K workers, or a rerun that continues a study) then replays the same
stream: their random start-up trials propose the same points, and the rerun
repeats the first run's. Seeding each process from its identity (host, pid)
would make them differ, but no sweep would ever be reproducible.

Here trial n draws from TPE seeded with (seed, n). The storage hands out trial
numbers once each, atomically, to whichever process asks, so no two trials of
a study, in any process on any machine, share a stream; and a one-worker sweep
with the same seed and the same results proposes the same points again. What
TPE learns comes from the study's trials in the storage, as before: only the
random draws change hands.
"""

from __future__ import annotations

import numpy as np
import optuna
from optuna.samplers import BaseSampler, TPESampler


def trial_seed(seed: int, number: int) -> int:
    """The seed of trial `number` in a sweep seeded with `seed`: independent streams, not seed + number
    (which would make trial 1 of seed 0 the same as trial 0 of seed 1)."""
    return int(np.random.SeedSequence([seed % 2**32, number]).generate_state(1)[0])


class TrialSeededSampler(BaseSampler):
    """TPE, reseeded before each trial with trial_seed(seed, trial.number)."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self._tpe = TPESampler(seed=seed)

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        # A process runs one trial at a time (n_jobs=1), so one TPE instance per trial is enough;
        # TPE keeps nothing between trials but its random state, and rebuilding it is cheap.
        self._tpe = TPESampler(seed=trial_seed(self.seed, trial.number))
        self._tpe.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._tpe.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._tpe.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._tpe.reseed_rng()
