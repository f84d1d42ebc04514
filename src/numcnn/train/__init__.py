"""numcnn.train: what a training run is, and the loop that runs it.

    config.py        TrainConfig: every `numcnn train` option, typed, with its default and checks
    dataprep.py      load_raw, prepare (split and normalize), make_augment: a run's data
    build.py         build_model by name (options a model ignores refused), whiten_first_conv,
                     first_layer_weights
    run.py           prepare_run (a TrainConfig -> data, model and Solver), train, evaluate
    run_folder.py    refuse a run folder that cannot hold the run (checked before anything is written)
    solver.py        Solver: the CS231n loop (keyword arguments and histories kept)
    solver_state.py  CheckpointState: the Solver's state_dict, save, load and resume
    interrupts.py    Ctrl-C deferred to the end of a step
    solver_options.py  SolverOptions: the Solver's keywords, frozen and checked
    callbacks.py     what the loop does besides training: progress bar, metrics log,
                     checkpoints, early stopping, time budget
    tensorboard.py   TensorBoard: event files of a run (scalars, filters, histograms, hparams),
                     written with tensorboardX (the tensorboard extra), imported only when used
    optim.py         update rules next_w, config = rule(w, dw, config), and their defaults
    schedules.py     learning-rate multipliers per fractional epoch
    tricks.py        Lookahead, EMA, patch whitening, test-time augmentation
    progress.py      the progress bar (tqdm on a terminal, quiet otherwise)

May import models, nn, ops, data, io (checkpoint, atomic writes), checks, viz and
gradcheck; never cli or sweep, which import it.
"""

from . import optim, schedules
from .callbacks import Callback
from .config import TrainConfig, UserError
from .solver import Solver, TrainingDiverged
from .tensorboard import TensorBoard

__all__ = ["Callback", "Solver", "TensorBoard", "TrainConfig", "TrainingDiverged", "UserError", "optim", "schedules"]
