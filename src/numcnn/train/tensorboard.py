"""TensorBoard: a run's event files, so that runs and sweeps compare in the tool people already use.

    solver = Solver(model, data, checkpoint_dir="runs/r1",
                    callbacks=[TensorBoard("runs/r1/tensorboard", hparams={"lr": 1e-3, "width": 8})])
    tensorboard --logdir runs          # every run folder's tensorboard/ is one run there

`numcnn train --tensorboard` adds one, writing RUN_FOLDER/tensorboard/ with the run's options as
its hyper-parameters. What is written, by tag; the global step is solver.step, the number of
updates so far (the step an update ends is the step its values are written at):

    train/loss             the step's minibatch loss (solver.loss_history), every `scalars_every` steps
    train/learning_rate    the learning rate of that step's update (solver.last_learning_rate)
    accuracy/train         at every evaluation (after step 1, at each epoch end, at a stop inside
    accuracy/val             an epoch): solver.train_acc_history, val_acc_history and best_val_acc
    accuracy/best_val
    epoch/loss             at each epoch end: the mean loss over its updates (metrics.jsonl's loss)
    filters/first_layer    every `histograms_every` epochs: the first layer's weights as one image,
                           tiled as filters.png tiles them (build.first_layer_weights: a convolution's
                           filters, or the assignment's W1 as images); colour for 3 channels, else gray
    weights/NAME           the same epochs: a histogram of each parameter (model.params[NAME])
    gradients/NAME         ... and of the gradient of the epoch's last update, as it was applied
                           (after grad_clip: solver.last_grads)
    _hparams_/session_start_info
                           `hparams` as the HParams dashboard's session; its metrics are the scalars
                           above, whose last values are the run's final ones

The file is flushed at each epoch end and at a stop inside an epoch, and closed when training
ends. Each session writes its own file (events.out.tfevents.TIME.HOST.stepSTEP: the step it starts
at), which TensorBoard reads in name order. A resumed run's steps continue from the checkpoint's:
the writer starts with TensorBoard's purge marker at the first step it will write, so the events
a killed session wrote after its last checkpoint (steps that are trained again) are hidden; a
clean stop writes nothing past its checkpoint, so no step is written twice.

Workers: the Solver and its callbacks run on rank 0 only (local workers and MPI ranks run the
steps they are sent, never the loop), as for metrics.jsonl, so a run has one writer. It is opened
when training begins, after local workers are started, so no forked worker inherits it.

tensorboardX writes the files (neither TensorFlow nor PyTorch is needed); it is imported when a
TensorBoard is made, and its absence is an ImportError naming the extra that installs it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import checks, viz
from .build import first_layer_weights
from .callbacks import Callback

__all__ = ["EXTRA", "TensorBoard"]

EXTRA = 'pip install "numcnn[tensorboard]"'
EVENT_FILES = "events.out.tfevents.*"  # tensorboardX's (and TensorFlow's) event file names


def summary_writer_class():
    """tensorboardX's SummaryWriter, imported only now: numcnn's core needs NumPy alone."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ImportError(f"TensorBoard event files are written with tensorboardX, which is missing: {EXTRA}") from None
    return SummaryWriter


def hparam_value(value):
    """A value the HParams dashboard shows: numbers, strings and booleans as they are, a sequence
    as '512,256', None (an option left to its default) left out, anything else as its str."""
    if isinstance(value, np.generic):  # a NumPy number would be shown as no value at all
        value = value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


class TensorBoard(Callback):
    """Write the run's scalars, filters, histograms and hyper-parameters into `log_dir` (see above).

    Parameters
    ----------
    log_dir : the folder of this run's event files (made if missing); one folder per run, such as
        a run folder's tensorboard/.
    hparams : the run's options (name -> value, see hparam_value), or None for none.
    scalars_every : write train/loss and train/learning_rate every this many steps (default 1).
    histograms_every : write the filter image and the histograms every this many epochs (default 1).
    """

    def __init__(self, log_dir, hparams: dict | None = None, scalars_every: int = 1, histograms_every: int = 1):
        self.summary_writer = summary_writer_class()  # refused here, before any training
        self.log_dir = Path(log_dir)
        self.hparams = {k: hparam_value(v) for k, v in hparams.items()} if hparams is not None else None
        self.scalars_every = checks.positive_int(scalars_every, "scalars_every")
        self.histograms_every = checks.positive_int(histograms_every, "histograms_every")
        self.writer = None

    # -- the loop's hooks -------------------------------------------------------------------
    def on_train_begin(self, solver) -> None:
        if self.writer is not None:  # the last train() ended in an exception (TrainingDiverged, ...)
            self.writer.close()
        first_events = not any(self.log_dir.glob(EVENT_FILES))
        # A file is named by the second it was opened in, and opened for writing: the step it starts
        # at keeps a resume in the same second from overwriting its predecessor's file, and sorts after it
        self.writer = self.summary_writer(
            str(self.log_dir), purge_step=solver.step + 1, filename_suffix=f".step{solver.step:010d}"
        )
        # TensorBoard keeps the first session it reads of a run: written once, by a fresh run or the
        # first session that logs (a resume may only change options a session does not record)
        if self.hparams is not None and (solver.step == 0 or first_events):
            self._write_hparams(solver.step)

    def on_step_end(self, solver) -> None:
        if solver.step % self.scalars_every == 0:
            self.writer.add_scalar("train/loss", solver.loss_history[-1], solver.step)
            self.writer.add_scalar("train/learning_rate", solver.last_learning_rate, solver.step)

    def on_evaluate(self, solver) -> None:
        self.writer.add_scalar("accuracy/train", solver.train_acc_history[-1], solver.step)
        self.writer.add_scalar("accuracy/val", solver.val_acc_history[-1], solver.step)
        self.writer.add_scalar("accuracy/best_val", solver.best_val_acc, solver.step)

    def on_epoch_end(self, solver) -> None:
        losses = solver.loss_history[-solver.batches_per_epoch :]
        self.writer.add_scalar("epoch/loss", float(np.mean(losses)), solver.step)
        if solver.epoch % self.histograms_every == 0:
            self._write_filters(solver)
            self._write_histograms(solver)
        self.writer.flush()

    def on_stop(self, solver) -> None:
        self.writer.flush()  # what was logged up to last.npz is on disk before anything else is done

    def on_train_end(self, solver) -> None:
        self.writer.close()
        self.writer = None

    # -- what is written ----------------------------------------------------------------------
    def _write_hparams(self, step: int) -> None:
        """The session's hyper-parameters only. The experiment summary that add_hparams also writes
        is left out: TensorBoard takes one run's for every run under --logdir, while without one it
        gathers every run's hyper-parameters and takes their scalars as the metrics; add_hparams'
        metric scalars and sub-folder per call are left out with it (the scalars above are the metrics)."""
        from tensorboardX.summary import hparams as hparams_summaries

        _, session_start, _ = hparams_summaries(self.hparams, {})
        self.writer.file_writer.add_summary(session_start, step)

    def _write_filters(self, solver) -> None:
        """The first layer's weights as one grid image (H, W, C) of uint8, as filters.png tiles them."""
        input_shape = solver.X_train.shape[1:] if np.ndim(solver.X_train) == 4 else None
        weights = first_layer_weights(solver.model, input_shape)
        if weights is None:
            return
        grid = viz.visualize_grid(viz.filter_images(weights), ubound=255.0)
        image = np.round(grid).astype(np.uint8)
        self.writer.add_image("filters/first_layer", image, solver.step, dataformats="HWC")

    def _write_histograms(self, solver) -> None:
        """Every parameter, and the gradient of the latest update where the model gave one."""
        for name, value in solver.model.params.items():
            self._histogram(f"weights/{name}", value, solver.step)
        for name, grad in solver.last_grads.items():
            self._histogram(f"gradients/{name}", grad, solver.step)

    def _histogram(self, tag: str, values, step: int) -> None:
        values = np.asarray(values)
        if values.size:  # tensorboardX refuses an empty array (a parameter of size 0 has no histogram)
            self.writer.add_histogram(tag, values, step)
