"""TensorBoard: the event files, read back with TensorBoard's own reader, hold the Solver's values.

The run is solver_run's small network (a conv of six 3x3 filters, batch norm, a linear layer) on
96 images, 6 steps an epoch, trained with plain SGD under a cosine schedule, so that each step's
learning rate is known in closed form and each update's gradient is (w_before - w_after) / lr.
"""

from __future__ import annotations

import io
import re
import sys

import numpy as np
import pytest

from numcnn import viz
from numcnn.io import load_checkpoint
from numcnn.train import TensorBoard, schedules
from numcnn.train.callbacks import Callback
from solver_run import make_run

STEPS_PER_EPOCH = 6  # solver_run: 96 training images, batches of 16
LR = 0.05
HPARAMS = {"lr": LR, "hidden": (3, 4), "optimizer": "sgd", "augment": True, "left_out": None}
EXTRA = 'pip install "numcnn[tensorboard]"'


@pytest.fixture
def accumulator():
    """TensorBoard's EventAccumulator class (every event kept); skips without the writer or the reader."""
    pytest.importorskip("tensorboardX", reason=f"tensorboardX writes the event files: {EXTRA}")
    reader = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="tensorboard reads the event files back: pip install tensorboard",
    )
    return reader.EventAccumulator


def _read(accumulator, folder):
    kinds = ("scalars", "images", "histograms", "tensors", "compressedHistograms", "audio")
    return accumulator(str(folder), size_guidance={kind: 0 for kind in kinds}).Reload()


def _scalars(events, tag) -> tuple[list[int], np.ndarray]:
    """(steps, values as the float32 they were stored as) of a scalar tag."""
    found = events.Scalars(tag)
    return [e.step for e in found], np.array([e.value for e in found], dtype=np.float32)


def _raw_steps(folder, tag) -> list[int]:
    """The steps of every event of `tag` in every event file of `folder`, in the order written (no purge)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    steps = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            steps += [event.step for value in event.summary.value if value.tag == tag]
    return steps


def _session_hparams(events) -> dict:
    """The HParams dashboard's session of a run: name -> value."""
    from tensorboard.plugins.hparams import metadata

    content = events.PluginTagToContent("hparams")[metadata.SESSION_START_INFO_TAG]
    values = metadata.parse_session_start_info_plugin_data(content).hparams
    return {name: getattr(value, value.WhichOneof("kind")) for name, value in values.items()}


class Snapshot(Callback):
    """Copies of what TensorBoard is given: the weights after every update (step 0: the initial
    ones) and, at each epoch end, the gradients of the epoch's last update."""

    def __init__(self):
        self.params, self.grads = {}, {}

    def on_train_begin(self, solver):
        self.params[solver.step] = {k: np.array(v) for k, v in solver.model.params.items()}

    def on_step_end(self, solver):
        self.params[solver.step] = {k: np.array(v) for k, v in solver.model.params.items()}

    def on_epoch_end(self, solver):
        self.grads[solver.step] = {k: np.array(v) for k, v in solver.last_grads.items()}


class StopAt(Callback):
    """Stops training after `step` updates, as the time budget or Ctrl-C would."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, solver):
        solver.stop_training = solver.step >= self.step


def _sgd_run(folder, epochs, callbacks, **options):
    """solver_run's network, plain SGD under a cosine schedule over `epochs` epochs."""
    return make_run(
        folder,
        epochs,
        update_rule="sgd",
        optim_config={"learning_rate": LR},
        lr_decay=1.0,
        schedule=schedules.cosine(epochs),
        callbacks=callbacks,
        **options,
    )


@pytest.fixture
def two_epochs(tmp_path, accumulator):
    snapshot = Snapshot()
    solver = _sgd_run(tmp_path / "run", 2, [snapshot, TensorBoard(tmp_path / "run" / "tb", hparams=HPARAMS)])
    solver.train()
    return solver, snapshot, _read(accumulator, tmp_path / "run" / "tb")


def test_the_step_scalars_are_the_solvers_losses_and_learning_rates(two_epochs):
    solver, _, events = two_epochs
    steps, losses = _scalars(events, "train/loss")
    assert steps == list(range(1, 2 * STEPS_PER_EPOCH + 1))
    np.testing.assert_array_equal(losses, np.float32(solver.loss_history))
    steps, rates = _scalars(events, "train/learning_rate")
    expected = [LR * schedules.cosine(2)((step - 1) / STEPS_PER_EPOCH) for step in steps]  # before each update
    assert steps == list(range(1, 2 * STEPS_PER_EPOCH + 1)) and rates[0] == np.float32(LR)
    np.testing.assert_allclose(rates, expected, rtol=1e-6)


def test_accuracies_at_each_evaluation_and_the_loss_of_each_epoch(two_epochs):
    solver, _, events = two_epochs
    evaluated = [1, STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]  # after step 1, then at each epoch end
    for tag, history in (("accuracy/train", solver.train_acc_history), ("accuracy/val", solver.val_acc_history)):
        steps, values = _scalars(events, tag)
        assert steps == evaluated, tag
        np.testing.assert_array_equal(values, np.float32(history), err_msg=tag)
    steps, best = _scalars(events, "accuracy/best_val")
    assert steps == evaluated and best[-1] == np.float32(solver.best_val_acc)
    np.testing.assert_array_equal(best, np.float32(np.maximum.accumulate(solver.val_acc_history)))
    steps, epoch_losses = _scalars(events, "epoch/loss")
    assert steps == evaluated[1:]
    by_epoch = np.reshape(solver.loss_history, (2, STEPS_PER_EPOCH)).mean(axis=1)
    np.testing.assert_array_equal(epoch_losses, np.float32(by_epoch))


def test_histograms_of_every_weight_and_gradient_at_each_epoch_end(two_epochs):
    solver, snapshot, events = two_epochs
    names = list(solver.model.params)
    assert {f"weights/{n}" for n in names} | {f"gradients/{n}" for n in names} == set(events.Tags()["histograms"])
    for step in (STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH):
        for kind, arrays in (("weights", snapshot.params[step]), ("gradients", snapshot.grads[step])):
            for name in names:
                (histogram,) = [h.histogram_value for h in events.Histograms(f"{kind}/{name}") if h.step == step]
                array = arrays[name]
                assert histogram.num == array.size, (kind, name)
                assert (histogram.min, histogram.max) == (float(array.min()), float(array.max())), (kind, name)
                assert histogram.sum == pytest.approx(float(array.sum(dtype=np.float64)), rel=1e-6, abs=1e-9)


def test_the_gradients_logged_are_those_of_the_epochs_last_update(two_epochs):
    """SGD: w_after = w_before - lr * grad, so the update itself says what its gradient was."""
    _, snapshot, _ = two_epochs
    for step, grads in snapshot.grads.items():
        rate = LR * schedules.cosine(2)((step - 1) / STEPS_PER_EPOCH)
        for name, grad in grads.items():
            before, after = snapshot.params[step - 1][name], snapshot.params[step][name]
            # float32 weights round an update to their spacing (a bias before batch norm barely moves)
            resolution = np.spacing(np.maximum(np.abs(before), np.abs(after))) / rate
            assert np.all(np.abs((before - after) / rate - grad) <= 1e-3 * np.abs(grad) + resolution), name


def test_the_first_layers_filters_as_one_image(two_epochs):
    from PIL import Image

    _, snapshot, events = two_epochs
    images = events.Images("filters/first_layer")
    assert [image.step for image in images] == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    for image in images:
        # six 3x3 filters tile a 3x3 grid with 1-pixel gaps: 3 * 3 + 2 pixels a side
        assert (image.width, image.height) == (11, 11)
        pixels = np.asarray(Image.open(io.BytesIO(image.encoded_image_string)).convert("RGB"))
        filters = snapshot.params[image.step]["0.weight"]  # (6, 3, 3, 3): three channels, in colour
        expected = np.round(viz.visualize_grid(filters.transpose(0, 2, 3, 1), ubound=255.0)).astype(np.uint8)
        np.testing.assert_array_equal(pixels, expected)


def test_the_hyper_parameters_are_the_runs_session(two_epochs):
    _, _, events = two_epochs
    assert _session_hparams(events) == {"lr": LR, "hidden": "3,4", "optimizer": "sgd", "augment": True}


def test_a_resumed_run_continues_the_steps_and_writes_none_twice(tmp_path, accumulator):
    """A stop at step 8 (inside epoch 2), then a resume to 3 epochs: each step's events once."""
    folder = tmp_path / "run"
    _sgd_run(folder, 3, [StopAt(8), TensorBoard(folder / "tb", hparams=HPARAMS)]).train()
    resumed = _sgd_run(folder, 3, [TensorBoard(folder / "tb", hparams=HPARAMS)])
    assert resumed.step == 8
    resumed.train()
    assert len(list((folder / "tb").glob("events.out.tfevents.*"))) == 2  # one file per session
    assert _raw_steps(folder / "tb", "train/loss") == list(range(1, 3 * STEPS_PER_EPOCH + 1))
    assert _raw_steps(folder / "tb", "accuracy/val") == [1, 6, 8, 12, 18]  # 8: the stop's partial epoch
    assert _raw_steps(folder / "tb", "epoch/loss") == [6, 12, 18]
    assert _raw_steps(folder / "tb", "weights/0.weight") == [6, 12, 18]
    events = _read(accumulator, folder / "tb")
    steps, losses = _scalars(events, "train/loss")
    np.testing.assert_array_equal(losses, np.float32(resumed.loss_history))  # the checkpoint's and this session's
    assert len(_raw_steps(folder / "tb", "_hparams_/session_start_info")) == 1
    assert _session_hparams(events)["lr"] == LR


def test_steps_a_killed_session_logged_after_its_checkpoint_are_hidden(tmp_path, accumulator):
    """The first session's last.npz is put back to epoch 1's (as a kill before epoch 2's last.npz
    leaves it): the resume trains steps 7-12 again, and TensorBoard shows each step once."""

    class KeepEpochOne(Callback):
        def on_epoch_end(self, solver):
            if solver.epoch == 1:  # after Checkpointing, which runs first, wrote epoch 1's
                self.last = (folder / "last.npz").read_bytes()

    folder, keep = tmp_path / "run", KeepEpochOne()
    _sgd_run(folder, 2, [keep, TensorBoard(folder / "tb")]).train()
    (folder / "last.npz").write_bytes(keep.last)
    resumed = _sgd_run(folder, 2, [TensorBoard(folder / "tb")])
    assert resumed.step == STEPS_PER_EPOCH
    resumed.train()
    assert _raw_steps(folder / "tb", "train/loss") == list(range(1, 13)) + list(range(7, 13))  # written twice
    steps, losses = _scalars(_read(accumulator, folder / "tb"), "train/loss")
    assert steps == list(range(1, 13))  # shown once: the purge marker hides the killed session's 7-12
    np.testing.assert_array_equal(losses, np.float32(resumed.loss_history))


def test_with_workers_one_writer_logs_each_step_once(tmp_path, accumulator):
    """Only rank 0 runs the loop and its callbacks; the workers run the steps they are sent."""
    folder = tmp_path / "run"
    solver = _sgd_run(folder, 1, [TensorBoard(folder / "tb")], workers=2, worker_backend="threads")
    solver.train()
    assert len(list((folder / "tb").glob("events.out.tfevents.*"))) == 1
    steps, losses = _scalars(_read(accumulator, folder / "tb"), "train/loss")
    assert steps == list(range(1, STEPS_PER_EPOCH + 1))
    np.testing.assert_array_equal(losses, np.float32(solver.loss_history))


def test_log_every_n_steps_and_epochs(tmp_path, accumulator):
    folder = tmp_path / "run"
    _sgd_run(folder, 2, [TensorBoard(folder / "tb", scalars_every=4, histograms_every=2)]).train()
    events = _read(accumulator, folder / "tb")
    assert _scalars(events, "train/loss")[0] == [4, 8, 12]
    assert [h.step for h in events.Histograms("weights/0.weight")] == [12]
    assert [image.step for image in events.Images("filters/first_layer")] == [12]
    with pytest.raises(ValueError, match="scalars_every must be a positive int, got 0"):
        TensorBoard(folder / "tb", scalars_every=0)


def test_without_tensorboardx_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # `import tensorboardX` now fails
    with pytest.raises(ImportError, match=re.escape(EXTRA)):
        TensorBoard(tmp_path / "tb")


def test_numcnn_train_without_tensorboardx_is_one_line_before_any_run_folder(tmp_path, monkeypatch, capsys):
    from numcnn import cli

    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    assert cli.main(["train", "--tensorboard", "--epochs", "1", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert EXTRA in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def _train(capsys, *args) -> str:
    """`numcnn train ARGS` in this process (smallcnn, width 4, on the digits); its stdout."""
    from numcnn import cli

    assert cli.main(["train", "--width", "4", "--quiet", "--workers", "1", *map(str, args)]) == 0
    return capsys.readouterr().out


def test_numcnn_train_tensorboard_writes_the_run_folders_events(tmp_path, capsys, accumulator):
    """A first epoch without --tensorboard, a second with it (an option a resume may change),
    a third too: the events start where --tensorboard did, and the options are written once."""
    run = tmp_path / "r"
    _train(capsys, "--epochs", "1", "--out", run)
    assert not (run / "tensorboard").exists()
    out = _train(capsys, "--epochs", "2", "--out", run, "--resume", "--tensorboard")
    assert f"tensorboard/)\nview it in TensorBoard: tensorboard --logdir {tmp_path}" in out
    _train(capsys, "--epochs", "3", "--out", run, "--resume", "--tensorboard")
    state = load_checkpoint(run / "last.npz").state
    per_epoch = state["step"] // 3
    events = _read(accumulator, run / "tensorboard")
    steps, losses = _scalars(events, "train/loss")
    assert steps == list(range(per_epoch + 1, 3 * per_epoch + 1))
    np.testing.assert_array_equal(losses, np.float32(state["loss_history"][per_epoch:]))
    assert _scalars(events, "accuracy/val")[0] == [2 * per_epoch, 3 * per_epoch]
    np.testing.assert_array_equal(_scalars(events, "accuracy/val")[1], np.float32(state["val_acc_history"][-2:]))
    assert len(_raw_steps(run / "tensorboard", "_hparams_/session_start_info")) == 1
    options = state["metadata"]["options"]
    hparams = _session_hparams(events)
    assert hparams["model"] == options["model"] == "smallcnn" and hparams["width"] == options["width"] == 4
    assert hparams["optimizer"] == "adam" and hparams["seed"] == 0 and "epochs" not in hparams  # epochs may change
    assert events.Tags()["images"] == ["filters/first_layer"]
    summary = (run / "summary.json").read_text()
    assert f'"tensorboard": "{run / "tensorboard"}"' in summary


def test_tensorboard_needs_a_run_folder():
    from numcnn.train.config import TrainConfig, UserError
    from numcnn.train.run import tensorboard_callbacks

    with pytest.raises(UserError, match="--tensorboard writes into the run folder"):
        tensorboard_callbacks(TrainConfig(tensorboard=True), None)
