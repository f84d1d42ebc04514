import json
import zipfile

import numpy as np
import pytest

from numcnn import models, nn
from numcnn.checkpoint import CheckpointError, load_checkpoint, restore_model, save_checkpoint


def _classifier(seed=0, width=4):
    nn.manual_seed(seed)
    return models.Classifier(models.build("resnet20", widths=(width, width, width)), reg=1e-3)


def test_round_trip_rebuilds_the_model_and_the_state(tmp_path):
    model = _classifier()
    state = {"epoch": 3, "history": [0.5, 0.25], "configs": {"w": {"velocity": np.arange(3.0), "t": 7}}}
    save_checkpoint(tmp_path / "c.npz", model, state)
    checkpoint = load_checkpoint(tmp_path / "c.npz")
    assert checkpoint.state["epoch"] == 3 and checkpoint.state["history"] == [0.5, 0.25]
    np.testing.assert_array_equal(checkpoint.state["configs"]["w"]["velocity"], np.arange(3.0))
    rebuilt = models.load_model(tmp_path / "c.npz")
    for (name, a), (_, b) in zip(model.state_arrays().items(), rebuilt.state_arrays().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert rebuilt.reg == 1e-3


@pytest.mark.parametrize("make", [
    lambda: models.ThreeLayerConvNet(input_dim=(3, 8, 8), num_filters=2, hidden_dim=5),
    lambda: models.FullyConnectedNet([6, 5], input_dim=4, normalization="batchnorm"),
    lambda: models.TwoLayerNet(input_dim=4, hidden_dim=3),
])
def test_the_assignments_models_round_trip(tmp_path, make):
    model = make()
    if getattr(model, "bn_params", None):
        model.bn_params[0].update(running_mean=np.ones(6), running_var=np.full(6, 2.0))
    save_checkpoint(tmp_path / "m.npz", model)
    state = np.random.get_state()
    rebuilt = models.load_model(tmp_path / "m.npz")
    assert np.array_equal(np.random.get_state()[1], state[1])  # rebuilding leaves np.random alone
    for name, value in model.params.items():
        np.testing.assert_array_equal(rebuilt.params[name], value)
    if getattr(model, "bn_params", None):
        np.testing.assert_array_equal(rebuilt.bn_params[0]["running_var"], np.full(6, 2.0))


def test_a_checkpoint_of_another_model_is_refused_before_anything_changes(tmp_path):
    save_checkpoint(tmp_path / "c.npz", _classifier(width=4))
    other = _classifier(seed=1, width=8)
    before = other.state_arrays()
    with pytest.raises(CheckpointError, match="c.npz: it holds a Classifier"):
        restore_model(load_checkpoint(tmp_path / "c.npz"), other)
    for name, value in other.state_arrays().items():
        np.testing.assert_array_equal(value, before[name])


def test_a_newer_format_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "c.npz", models.TwoLayerNet(input_dim=2, hidden_dim=2))
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    header = json.loads(arrays["__header__"].tobytes())
    header["version"] = 99
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match="written by a newer numcnn \\(format version 99\\)"):
        load_checkpoint(path)


def test_a_header_without_a_version_is_called_corrupted(tmp_path):
    path = save_checkpoint(tmp_path / "c.npz", models.TwoLayerNet(input_dim=2, hidden_dim=2))
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    header = json.loads(arrays["__header__"].tobytes())
    del header["version"]
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match="corrupted checkpoint header: no valid format version"):
        load_checkpoint(path)


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "not_zip", "method"])
def test_damaged_files_raise_one_clear_error_naming_the_file(tmp_path, damage):
    path = save_checkpoint(tmp_path / "c.npz", _classifier())
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":  # corrupt bytes inside an array: the zip CRC catches it
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64]) + data[middle + 64:])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "method":  # an unknown compression method in the central directory: NotImplementedError
        entry = data.index(b"PK\x01\x02")
        path.write_bytes(data[:entry + 10] + b"\x63\x00" + data[entry + 12:])
    else:
        path.write_text("hello")
    with pytest.raises(CheckpointError, match=str(path.name)):
        load_checkpoint(path)


def test_a_crash_while_writing_keeps_the_old_checkpoint_and_leaves_no_debris(tmp_path):
    path = save_checkpoint(tmp_path / "c.npz", models.TwoLayerNet(input_dim=2, hidden_dim=2), {"epoch": 1})

    def crash(file, **arrays):
        file.write(b"half a zip")
        raise OSError("disk full")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(np, "savez", crash)
        with pytest.raises(OSError, match="disk full"):
            save_checkpoint(path, models.TwoLayerNet(input_dim=2, hidden_dim=2), {"epoch": 2})
    assert load_checkpoint(path).state["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]


def test_nothing_in_a_checkpoint_can_run_code(tmp_path):
    path = save_checkpoint(tmp_path / "c.npz", models.TwoLayerNet(input_dim=2, hidden_dim=2))
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            with archive.open(name) as member:
                assert member.read(6) == b"\x93NUMPY"  # plain arrays only, no pickles
    with np.load(path, allow_pickle=False) as archive:
        assert all(archive[name].dtype != object for name in archive.files)
