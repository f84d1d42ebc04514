"""Files made to break the loaders: crafted pickles, bombs, hostile archive members, damaged bytes."""

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from fake_data import cifar_arrays, write_cifar_python

from numcnn.data import DataError, load_cifar10
from numcnn.data.safe_pickle import safe_load


class RawBufferObjectArray:
    """Pickles as numpy.ndarray(shape, dtype('O'), buffer): an object array of pointers read from the file."""

    def __reduce__(self):
        return (np.ndarray, ((2,), np.dtype("O"), b"\x41" * 16))


class ReducesTo:
    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return (self.function, self.args)


def _batch(labels, data=None):
    data = np.zeros((2, 3072), np.uint8) if data is None else data
    return pickle.dumps({b"batch_label": b"x", b"labels": labels, b"data": data}, protocol=2)


def test_an_object_array_of_raw_pointers_is_refused_not_built(tmp_path):
    """Unfixed, this segfaults: run the loaders in a child process and read its exit and message."""
    folder = write_cifar_python(tmp_path, cifar_arrays())
    (folder / "data_batch_2").write_bytes(_batch(RawBufferObjectArray()))
    script = textwrap.dedent(f"""
        import numpy as np
        from numcnn.data import DataError, load_cifar10
        from numcnn.compat.cs231n.data_utils import get_CIFAR10_data, load_CIFAR_batch
        for call in (lambda: load_cifar10({str(tmp_path)!r}),
                     lambda: load_CIFAR_batch({str(folder / "data_batch_2")!r}),
                     lambda: get_CIFAR10_data(root={str(tmp_path)!r})):
            try:
                result = call()
                print("LOADED", result)
            except DataError as error:
                print("REFUSED", error)
        """)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, f"the loader crashed (exit {child.returncode}): {child.stderr[-500:]}"
    lines = child.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("REFUSED") and "data_batch_2" in line for line in lines), lines
    assert "raw-buffer" in lines[0] or "'O8'" in lines[0]
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "numcnn.cli",
            "train",
            "--dataset",
            "cifar10",
            "--data-dir",
            str(tmp_path),
            "--epochs",
            "1",
            "--quiet",
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 2 and "data_batch_2: refusing to load a pickle" in cli.stderr, (cli.returncode, cli.stderr)
    assert "Traceback" not in cli.stderr


@pytest.mark.parametrize(
    "payload, message",
    [
        (ReducesTo(np.ndarray, (2,), np.dtype("u1"), b"ab"), "raw-buffer constructor"),  # even of a plain dtype
        (np.zeros(2, dtype=[("a", "u1"), ("b", "u1")]), "dtype 'V2'"),  # structured
        (np.zeros(2, dtype="V3"), "dtype 'V3'"),  # void
        (np.array([1, "a"], dtype=object), "dtype 'O8'"),  # objects, even from a list
        (ReducesTo(bytearray, 10**12), "builtin.*bytearray"),  # a terabyte on request
        (ReducesTo(set, [1]), "builtin.*set"),
    ],
)
def test_only_plain_data_and_numeric_arrays_are_built(payload, message):
    with pytest.raises(DataError, match=f"^batch: refusing to load a pickle that .*{message}"):
        safe_load(pickle.dumps({b"labels": payload}, protocol=2), "batch")


class DtypeWithState:
    """Pickles as numpy.dtype('u2') followed by BUILD with the given state."""

    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        return (np.dtype, ("u2", False, True), self.state)


def test_a_dtype_made_structured_by_its_pickled_state_is_refused():
    plain = safe_load(pickle.dumps(DtypeWithState((3, ">", None, None, None, -1, -1, 0)), protocol=2), "f")
    assert plain == np.dtype(">u2")
    fields = (3, "|", None, ("a", "b"), {"a": (np.dtype("u1"), 0), "b": (np.dtype("u1"), 1)}, 2, 1, 16)
    with pytest.raises(DataError, match="f: refusing .* gives dtype 'u2' a structured or sub-array state"):
        safe_load(pickle.dumps(DtypeWithState(fields), protocol=2), "f")


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_real_arrays_and_scalars_still_load_at_every_protocol(protocol):
    value = {
        "W": np.arange(6.0).reshape(2, 3),
        "F": np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)),
        "s": np.float32(1.5),
        "big_endian": np.arange(3, dtype=">u2"),
        "names": [b"a", "b"],
        "t": (1, 2.5),
    }
    loaded = safe_load(pickle.dumps(value, protocol=protocol), "f", encoding="latin1")
    for key in ("W", "F", "big_endian"):
        np.testing.assert_array_equal(loaded[key], value[key])
        assert loaded[key].dtype == value[key].dtype and loaded[key].flags.writeable
    assert loaded["s"] == np.float32(1.5) and loaded["names"] == [b"a", "b"] and loaded["t"] == (1, 2.5)


def test_a_container_inside_itself_is_refused():
    looped = []
    looped.append(looped)
    with pytest.raises(DataError, match="inside itself"):
        safe_load(pickle.dumps({b"labels": looped}), "f")


@pytest.mark.parametrize(
    "labels, message",
    [
        (["cat", "dog"], "labels must be a list of integer labels 0..9, got str 'cat'"),
        ({1: 2, 3: 4}, "labels must be a list of integer labels 0..9, got a dict"),
        ([2**80, 1], "label 1208925819614629174706176 out of range 0..9"),
        ([[1, 2], [3, 4]], "labels must be a list of integer labels 0..9, got list"),
        ([1.9, 2.0], "labels must be a list of integer labels 0..9, got float 1.9"),
        (np.array([1.0, 2.0]), "refusing to load a pickle that asks for dtype 'f8'"),
        (np.array([[1, 2]]), "labels must be a list of integer labels 0..9, got a int64 array of shape \\(1, 2\\)"),
        (b"\x01\x02", "labels must be a list of integer labels 0..9, got a bytes"),
    ],
)
def test_cifar_labels_of_the_wrong_kind_are_refused_not_converted(tmp_path, labels, message):
    folder = write_cifar_python(tmp_path, cifar_arrays())
    (folder / "data_batch_3").write_bytes(_batch(labels))
    with pytest.raises(DataError, match=f"data_batch_3: {message}"):
        load_cifar10(tmp_path)


@pytest.mark.parametrize(
    "content, message",
    [
        (
            {b"data": [[0] * 3072] * 2, b"labels": [0, 1]},
            "data must be a uint8 array of rows of 3072 values, got a list",
        ),
        ([1, 2], "not a CIFAR-10 batch"),
    ],
)
def test_cifar_batches_of_the_wrong_shape_name_what_was_expected(tmp_path, content, message):
    folder = write_cifar_python(tmp_path, cifar_arrays())
    (folder / "test_batch").write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(DataError, match=f"test_batch: {message}"):
        load_cifar10(tmp_path)


@pytest.mark.parametrize("meta", [[b"cat"] * 10, {b"label_names": [b"cat"] * 3}, {b"label_names": [1] * 10}])
def test_a_batches_meta_that_is_not_ten_names_is_refused(tmp_path, meta):
    folder = write_cifar_python(tmp_path, cifar_arrays())
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    with pytest.raises(DataError, match="batches.meta: expected a dict whose b'label_names' is a list of 10"):
        load_cifar10(tmp_path)


def _idx_header(*shape, ndim=None):
    return (0x800 + (ndim or len(shape))).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in shape)


def test_a_gzip_bomb_idx_file_is_refused_after_a_bounded_read(tmp_path):
    import gzip
    import tracemalloc

    from numcnn.data import read_idx

    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_header(10, 28, 28) + bytes(64 << 20), compresslevel=1))  # 64 MiB inflated
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"header promises \(10, 28, 28\) = 7840 values, the file holds more"):
            read_idx(path, 3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


@pytest.mark.parametrize(
    "shape, message",
    [
        ((2**22, 2**22, 2**20), r"declares \(4194304, 4194304, 1048576\) = 18446744073709551616 values, more than"),
        ((60000, 28, 28), r"a gzip file of \d+ bytes cannot inflate to that many"),
    ],
)
def test_idx_sizes_are_checked_before_reading(tmp_path, shape, message):
    import gzip

    from numcnn.data import read_idx

    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(_idx_header(*shape) + bytes(100)))
    with pytest.raises(DataError, match=f"images.gz: .*{message}"):
        read_idx(path, 3)


def test_corrupted_deflate_data_in_an_idx_gz_is_one_data_error(tmp_path):
    import gzip

    from numcnn.data import read_idx

    rng = np.random.default_rng(0)
    good = gzip.compress(_idx_header(50, 28, 28) + rng.integers(0, 4, 50 * 784, dtype=np.uint8).tobytes())
    errors = set()
    for position in range(12, len(good) - 8, max(1, len(good) // 200)):  # the deflate stream, not the gzip header
        damaged = bytearray(good)
        damaged[position] ^= 0x01
        (tmp_path / "x.gz").write_bytes(bytes(damaged))
        try:
            read_idx(tmp_path / "x.gz", 3)
        except DataError as error:
            assert str(error).startswith(f"{tmp_path / 'x.gz'}: ") and "\n" not in str(error)
            errors.add(str(error).split("(truncated or not gzip?): ")[-1].split(":")[0])
    assert "error" in errors  # zlib.error: invalid code lengths, distance too far back, ...
