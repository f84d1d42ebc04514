import errno
import io
import json
import os
import zipfile

import numpy as np
import pytest

from numcnn import models, nn
from numcnn.io import (
    CheckpointError,
    WriteError,
    load_checkpoint,
    restore_model,
    save_checkpoint,
)


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


@pytest.mark.parametrize(
    "make",
    [
        lambda: models.ThreeLayerConvNet(input_dim=(3, 8, 8), num_filters=2, hidden_dim=5),
        lambda: models.FullyConnectedNet([6, 5], input_dim=4, normalization="batchnorm"),
        lambda: models.TwoLayerNet(input_dim=4, hidden_dim=3),
    ],
)
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
        path.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64]) + data[middle + 64 :])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "method":  # an unknown compression method in the central directory: NotImplementedError
        entry = data.index(b"PK\x01\x02")
        path.write_bytes(data[: entry + 10] + b"\x63\x00" + data[entry + 12 :])
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


def _tiny_checkpoint(tmp_path):
    model = models.TwoLayerNet(input_dim=2, hidden_dim=2)
    return save_checkpoint(tmp_path / "c.npz", model, {"epoch": 1, "velocity": np.arange(3.0), "done": np.bool_(True)})


def _flips(data: bytes, stride: int, every_bit: bool) -> list[tuple[int, int]]:
    """(position, bit) pairs: every stride-th byte (all bits, or one cycling through the 8), and
    every bit of each zip entry's flag bytes (a flipped bit 0 there means "encrypted")."""
    flags = [i + 6 for i in range(len(data)) if data.startswith(b"PK\x03\x04", i)]
    flags += [i + 8 for i in range(len(data)) if data.startswith(b"PK\x01\x02", i)]
    flips = {(p, b) for p in range(0, len(data), stride) for b in (range(8) if every_bit else [p // stride % 8])}
    return sorted(flips | {(p, b) for p in flags for b in range(8)})


def _assert_every_flip_loads_identically_or_names_the_file(tmp_path, stride, every_bit):
    path = _tiny_checkpoint(tmp_path)
    data, good = path.read_bytes(), load_checkpoint(path)
    damaged = tmp_path / "damaged.npz"
    outcomes = {"loaded": 0, "refused": 0}
    for position, bit in _flips(data, stride, every_bit):
        damaged.write_bytes(data[:position] + bytes([data[position] ^ (1 << bit)]) + data[position + 1 :])
        try:
            loaded = load_checkpoint(damaged)
        except CheckpointError as error:
            assert "damaged.npz" in str(error) and "\n" not in str(error), (position, bit, str(error))
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1  # a flip in a field nothing reads (a time stamp): identical content
        assert loaded.model_spec == good.model_spec and loaded.state["epoch"] == 1, (position, bit)
        for key, value in good.model_arrays.items():
            np.testing.assert_array_equal(loaded.model_arrays[key], value, err_msg=f"{position}, {bit}")
        np.testing.assert_array_equal(loaded.state["velocity"], np.arange(3.0))
    assert outcomes["refused"] > outcomes["loaded"] > 0


def test_flipped_bits_anywhere_load_identically_or_raise_checkpoint_error(tmp_path):
    # one bit of every fourth byte and every bit of the flag bytes: about a second
    _assert_every_flip_loads_identically_or_names_the_file(tmp_path, stride=4, every_bit=False)


@pytest.mark.slow
def test_every_bit_of_every_byte_flipped_loads_identically_or_raises_checkpoint_error(tmp_path):
    _assert_every_flip_loads_identically_or_names_the_file(tmp_path, stride=1, every_bit=True)


def _rewrite(path, header=None, **replace):
    """Rewrite a checkpoint with another JSON header (raw text) or other arrays, as a valid archive."""
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    if header is not None:
        arrays["__header__"] = np.frombuffer(header.encode(), np.uint8)
    arrays.update(replace)
    np.savez(path, **arrays)
    return path


def _header_with(path, **changes) -> str:
    with np.load(path) as archive:
        header = json.loads(archive["__header__"].tobytes())
    header.update(changes)
    return json.dumps(header)


@pytest.mark.parametrize(
    "make_header",
    [
        lambda path: "[1, 2, 3]",
        lambda path: '"just a string"',
        lambda path: json.dumps({k: v for k, v in json.loads(_header_with(path)).items() if k != "model"}),
        lambda path: _header_with(path, model=[1, 2]),
        lambda path: _header_with(path, model={"type": ["unhashable"], "config": None}),
        lambda path: _header_with(path, model={"type": "TwoLayerNet", "config": [1]}),
        lambda path: _header_with(path, model_arrays="params.W1"),
        lambda path: _header_with(path, model_arrays=[["params.W1"]]),
        lambda path: _header_with(path, state={"velocity": {"__array__": ["state.velocity"]}}),
        lambda path: _header_with(path, state={"velocity": {"__array__": {"a": 1}}}),
        lambda path: _header_with(path, version=True),
        lambda path: _header_with(path, format=["numcnn-checkpoint"]),
        lambda path: _header_with(path, state=json.loads("[" * 500 + "]" * 500)),
        lambda path: "[" * 100_000 + "]" * 100_000,
        lambda path: '{"a":' * 100_000 + "1" + "}" * 100_000,
    ],
    ids=[
        "list",
        "string",
        "no-model",
        "model-list",
        "type-unhashable",
        "config-list",
        "arrays-string",
        "arrays-nested",
        "reference-list",
        "reference-object",
        "version-bool",
        "format-list",
        "state-500-deep",
        "100000-deep-list",
        "100000-deep-object",
    ],
)
def test_a_valid_archive_with_a_bad_header_raises_checkpoint_error(tmp_path, make_header):
    path = _tiny_checkpoint(tmp_path)
    _rewrite(path, make_header(path))
    with pytest.raises(CheckpointError, match="c.npz: (corrupted checkpoint header|not a numcnn checkpoint)"):
        models.load_model(path)


@pytest.mark.parametrize("dtype", [np.complex128, np.bool_, "datetime64[s]", "timedelta64[s]", "U3", "S3", "V8"])
def test_model_arrays_that_are_not_real_numbers_are_refused(tmp_path, dtype):
    path = _tiny_checkpoint(tmp_path)
    with np.load(path) as archive:
        W1 = archive["model/params.W1"]
    _rewrite(path, **{"model/params.W1": np.zeros(W1.shape, dtype)})
    with pytest.raises(CheckpointError, match=r"c.npz: (model )?array '.*W1.*' holds .* values"):
        models.load_model(path)


def test_an_array_header_promising_more_bytes_than_present_is_refused_before_allocating(tmp_path):
    path = _tiny_checkpoint(tmp_path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    lie = io.BytesIO()  # an intact zip (right CRC) whose array header claims 8 TB
    np.lib.format.write_array_header_1_0(lie, {"descr": "<f8", "fortran_order": False, "shape": (10**10, 10**2)})
    members["model/params.W1.npy"] = lie.getvalue() + np.zeros(4).tobytes()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(
        CheckpointError,
        match=r"c.npz: corrupted checkpoint: array 'model/params.W1.npy' "
        r"of shape \(10000000000, 100\) does not match its 32 bytes",
    ):
        load_checkpoint(path)


def test_a_malformed_array_header_is_a_checkpoint_error_not_a_token_error(tmp_path):
    # members over 4 KiB: NumPy used to parse the header before zipfile reached the CRC
    path = save_checkpoint(tmp_path / "c.npz", models.TwoLayerNet(input_dim=64, hidden_dim=32))
    data = path.read_bytes()
    path.write_bytes(data.replace(b"'descr'", b"'''scr'", 1))  # an unterminated string: tokenize.TokenError
    with pytest.raises(CheckpointError, match="c.npz: not a readable numcnn checkpoint .*Bad CRC-32"):
        load_checkpoint(path)


def test_a_full_disk_while_saving_is_one_line_and_keeps_the_previous_checkpoint(tmp_path):
    model = models.TwoLayerNet(input_dim=2, hidden_dim=2)
    path = save_checkpoint(tmp_path / "last.npz", model, {"epoch": 1})

    def full_disk(file, **arrays):
        file.write(b"PK\x03\x04 part of a zip")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(np, "savez", full_disk)
        with pytest.raises(WriteError) as caught:
            save_checkpoint(path, model, {"epoch": 2})
    assert str(caught.value) == f"cannot write {path}: No space left on device; the previous file is kept"
    assert load_checkpoint(path).state["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.npz"]


def test_checkpoints_get_the_permissions_the_umask_allows(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "c.npz", models.TwoLayerNet(input_dim=2, hidden_dim=2))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def numcnn_imports(package_dir):
    """Every numcnn module (or name) the files of numcnn/<package> import, relative imports resolved."""
    import ast
    from pathlib import Path

    package = ["numcnn", Path(package_dir).name]
    found = set()
    for path in Path(package_dir).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package[: len(package) + 1 - node.level] if node.level else [])
                module = ".".join(p for p in (base, node.module) if p)
                if node.module is None:  # from .. import ops
                    found.update(f"{module}.{alias.name}" for alias in node.names)
                elif module.startswith("numcnn"):
                    found.add(module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names if alias.name.startswith("numcnn"))
    return found


def test_io_imports_numpy_checks_and_the_standard_library_only():
    """The file format knows nothing of models: numcnn.models registers the codec it uses."""
    from pathlib import Path

    import numcnn.io

    imported = numcnn_imports(Path(numcnn.io.__file__).parent)
    assert imported <= {"numcnn.io", "numcnn.io.atomic", "numcnn.io.checkpoint", "numcnn.checks"}, imported


def test_write_checkpoint_stores_a_spec_and_arrays_it_never_reads(tmp_path):
    from numcnn.io import write_checkpoint

    spec = {"type": "Anything", "config": {"width": 3}, "modules": None}
    write_checkpoint(tmp_path / "c.npz", spec, {"w": np.arange(6.0).reshape(2, 3)}, {"epoch": 1})
    checkpoint = load_checkpoint(tmp_path / "c.npz")
    assert checkpoint.model_spec == spec and checkpoint.state == {"epoch": 1}
    np.testing.assert_array_equal(checkpoint.model_arrays["w"], np.arange(6.0).reshape(2, 3))
    with pytest.raises(CheckpointError, match="cannot rebuild a 'Anything'"):
        models.load_model(tmp_path / "c.npz")
