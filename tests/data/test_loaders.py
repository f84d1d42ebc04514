import gzip
import os
import pickle
import zipfile

import numpy as np
import pytest
from fake_data import (
    cifar_arrays,
    idx_bytes,
    tar_folder,
    write_cifar_binary,
    write_cifar_python,
    write_image_folder,
    write_mnist,
)

from numcnn.data import (
    DataError,
    DatasetNotFound,
    get_CIFAR10_data,
    load_cifar10,
    load_digits,
    load_image_folder,
    load_mnist,
)
from numcnn.data import folder as folder_module


def _expected_cifar(batches):
    images = [data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1) for data, _ in batches]
    return np.concatenate(images[:5]), np.concatenate([labels for _, labels in batches[:5]]), images[5], batches[5][1]


@pytest.mark.parametrize("writer", [write_cifar_python, write_cifar_binary])
def test_cifar10_both_official_releases(tmp_path, writer):
    batches = cifar_arrays()
    writer(tmp_path, batches)
    X_train, y_train, X_test, y_test, classes = load_cifar10(tmp_path)
    e_train, e_ytrain, e_test, e_ytest = _expected_cifar(batches)
    np.testing.assert_array_equal(X_train, e_train)
    np.testing.assert_array_equal(y_train, e_ytrain)
    np.testing.assert_array_equal(X_test, e_test)
    np.testing.assert_array_equal(y_test, e_ytest)
    assert X_train.dtype == np.uint8 and X_train.shape == (35, 32, 32, 3) and y_train.dtype == np.int64
    assert classes[0] == "airplane" and len(classes) == 10


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    folder = write_cifar_python(tmp_path, cifar_arrays())

    class Exploit:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": Exploit()}))
    with pytest.raises(DataError, match=r"data_batch_3: refusing to load a pickle that asks for (posix|os)\.system"):
        load_cifar10(tmp_path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda f: (f / "data_batch_2").write_bytes((f / "data_batch_2").read_bytes()[:200]),
            "data_batch_2: not a readable pickle",
        ),
        (lambda f: (f / "test_batch").unlink(), "test_batch: missing CIFAR-10 batch file"),
        (
            lambda f: (f / "data_batch_1").write_bytes(
                pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2, 3]})
            ),
            "3 labels for 2 images",
        ),
        (
            lambda f: (f / "data_batch_1").write_bytes(
                pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 12]})
            ),
            "data_batch_1: label 12 out of range",
        ),
    ],
)
def test_damaged_python_batches_name_the_file_and_problem(tmp_path, damage, message):
    folder = write_cifar_python(tmp_path, cifar_arrays())
    damage(folder)
    with pytest.raises((DataError, DatasetNotFound), match=message):
        load_cifar10(tmp_path)


def test_damaged_binary_batch(tmp_path):
    folder = write_cifar_binary(tmp_path, cifar_arrays())
    (folder / "data_batch_4.bin").write_bytes(b"\x00" * 3000)
    with pytest.raises(DataError, match="data_batch_4.bin: 3000 bytes is not a whole number of 3073-byte records"):
        load_cifar10(tmp_path)
    record = bytearray((folder / "data_batch_1.bin").read_bytes())
    (folder / "data_batch_4.bin").write_bytes(bytes([10]) + record[1:])  # a label byte of 10
    with pytest.raises(DataError, match="data_batch_4.bin: label 10 out of range 0..9"):
        load_cifar10(tmp_path)


def test_missing_cifar_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFound, match="Pass download=True .*or download https://www.cs.toronto.edu"):
        load_cifar10(tmp_path)


def test_cifar_from_image_folders_and_their_archive(tmp_path):
    for split in ("train", "test"):
        write_image_folder(tmp_path / "cifar" / split, classes=("bird", "cat"), per_class=2, size=(32, 32))
    X_train, y_train, X_test, _, classes = load_cifar10(tmp_path / "cifar")
    assert X_train.shape == (4, 32, 32, 3) and classes == ["bird", "cat"] and sorted(y_train) == [0, 0, 1, 1]
    folder_X, folder_y, _ = load_image_folder(tmp_path / "cifar", "train")
    order = np.random.default_rng(0).permutation(4)  # shuffled like the official batches, reproducibly
    np.testing.assert_array_equal(X_train, folder_X[order])
    np.testing.assert_array_equal(y_train, folder_y[order])
    archive = tar_folder(tmp_path / "cifar", tmp_path / "cifar.tar.gz")
    X_archive, *_ = load_cifar10(archive)
    np.testing.assert_array_equal(X_archive, X_train)


def test_get_cifar10_data_prepares_the_assignments_splits(tmp_path):
    write_cifar_python(tmp_path, cifar_arrays(n_per_batch=10))
    data = get_CIFAR10_data(num_training=40, num_validation=5, num_test=6, root=tmp_path)
    assert data["X_train"].shape == (40, 3, 32, 32) and data["X_val"].shape == (5, 3, 32, 32)
    assert data["X_test"].shape == (6, 3, 32, 32) and data["X_train"].dtype == np.float32
    np.testing.assert_allclose(data["X_train"].mean(axis=0), 0, atol=1e-3)  # the mean image is subtracted
    X_train, y_train, *_ = load_cifar10(tmp_path)
    np.testing.assert_array_equal(data["y_val"], y_train[40:45])
    with pytest.raises(ValueError, match="num_training \\+ num_validation must be at most 50"):
        get_CIFAR10_data(num_training=49, num_validation=5, root=tmp_path)


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_idx_files(tmp_path, compress):
    arrays = write_mnist(tmp_path, compress=compress)
    X_train, y_train, X_test, y_test, classes = load_mnist(tmp_path)
    np.testing.assert_array_equal(X_train[..., 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte"])
    assert X_train.shape == (20, 28, 28, 1) and classes == [str(d) for d in range(10)]
    assert load_mnist(tmp_path, kind="fashion")[4][0] == "T-shirt/top"


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda f: (f / "train-images-idx3-ubyte.gz").write_bytes(
                gzip.compress(idx_bytes(np.zeros((5, 28)))[:8] + b"\0" * 40)
            ),
            "wrong magic number 0x00000802",
        ),
        (
            lambda f: (f / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(3)))),
            "3 labels for 10 images",
        ),
        (
            lambda f: (f / "train-images-idx3-ubyte.gz").write_bytes(
                gzip.compress(idx_bytes(np.zeros((20, 28, 28)))[:-5])
            ),
            "the header promises",
        ),
        (
            lambda f: (f / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b garbage"),
            "train-labels-idx1-ubyte.gz: cannot be read",
        ),
        (
            lambda f: (f / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.full(20, 11)))),
            "label 11 out of range",
        ),
        (lambda f: (f / "t10k-images-idx3-ubyte.gz").unlink(), "missing t10k-images-idx3-ubyte"),
    ],
)
def test_damaged_mnist_files_name_the_file_and_problem(tmp_path, damage, message):
    write_mnist(tmp_path)
    damage(tmp_path)
    with pytest.raises((DataError, DatasetNotFound), match=message):
        load_mnist(tmp_path)


def test_image_folder_classes_labels_grayscale_and_formats(tmp_path):
    images = write_image_folder(tmp_path / "rgb", classes=("zebra", "ant"), per_class=2)
    X, y, classes = load_image_folder(tmp_path / "rgb")
    assert classes == ["ant", "zebra"] and list(y) == [0, 0, 1, 1]
    np.testing.assert_array_equal(X[0], images[("ant", 0)])
    write_image_folder(tmp_path / "gray", classes=("a", "b"), per_class=2, mode="L", suffix=".bmp")
    X, _, _ = load_image_folder(tmp_path / "gray")
    assert X.shape == (4, 6, 5, 1)


def test_image_folder_errors_name_the_file(tmp_path):
    write_image_folder(tmp_path / "f", classes=("a", "b"), per_class=2)
    write_image_folder(tmp_path / "f", classes=("b",), per_class=1, size=(7, 5), seed=1, suffix=".jpg")
    with pytest.raises(DataError, match=r"b/000.jpg: image of size \(7, 5\)"):
        load_image_folder(tmp_path / "f", cache=False)
    (tmp_path / "g" / "a").mkdir(parents=True)
    (tmp_path / "g" / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="a/broken.png: not a readable image"):
        load_image_folder(tmp_path / "g")
    with pytest.raises(DatasetNotFound, match="no such folder"):
        load_image_folder(tmp_path / "nowhere")


def test_image_folder_cache_makes_the_second_load_a_file_read(tmp_path):
    write_image_folder(tmp_path / "f", per_class=4)
    first = load_image_folder(tmp_path / "f")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(folder_module, "_decode_all", lambda *a: pytest.fail("decoded again"))
        second = load_image_folder(tmp_path / "f")
    np.testing.assert_array_equal(first[0], second[0])
    write_image_folder(tmp_path / "f", classes=("new",), per_class=1)  # the key changes with the file list
    assert load_image_folder(tmp_path / "f")[2] == ["cat", "dog", "emu", "new"]
    image = sorted((tmp_path / "f" / "new").iterdir())[0]
    image.write_bytes(image.read_bytes() + b"\0")  # ... and with a file's size
    with pytest.MonkeyPatch.context() as patch:
        decoded = []
        original = folder_module._decode_all
        patch.setattr(folder_module, "_decode_all", lambda *a: decoded.append(1) or original(*a))
        load_image_folder(tmp_path / "f")
    assert decoded == [1]


def test_image_folder_from_zip_and_tar_archives(tmp_path):
    write_image_folder(tmp_path / "f" / "train", per_class=2)
    expected = load_image_folder(tmp_path / "f" / "train", cache=False)
    with zipfile.ZipFile(tmp_path / "f.zip", "w") as z:
        for path in sorted((tmp_path / "f").rglob("*.png")):
            z.write(path, path.relative_to(tmp_path / "f"))
    tar = tar_folder(tmp_path / "f", tmp_path / "f.tar.gz")
    for archive in (tmp_path / "f.zip", tar):
        X, y, classes = load_image_folder(archive, "train", cache=False)
        np.testing.assert_array_equal(X, expected[0])
        assert classes == expected[2]
    (tmp_path / "bad.tar.gz").write_bytes(tar.read_bytes()[:300])
    with pytest.raises(DataError, match="bad.tar.gz: truncated or corrupted archive"):
        load_image_folder(tmp_path / "bad.tar.gz", "train")


def test_digits_need_no_download():
    X_train, y_train, X_test, y_test, classes = load_digits()
    assert len(X_train) + len(X_test) == 1797 and X_train.shape[1:] == (8, 8, 1)
    assert X_train.dtype == np.uint8 and X_train.max() == 255 and set(np.unique(y_test)) == set(range(10))


def test_the_assignments_data_utils(tmp_path):
    from numcnn.compat.cs231n.data_utils import get_CIFAR10_data as assignment_data
    from numcnn.compat.cs231n.data_utils import load_CIFAR10, load_CIFAR_batch

    batches = cifar_arrays()
    folder = write_cifar_python(tmp_path, batches)
    Xtr, Ytr, Xte, Yte = load_CIFAR10(str(folder))
    assert Xtr.dtype == np.float64 and Xtr.shape == (35, 32, 32, 3) and Xte.shape == (7, 32, 32, 3)
    X, Y = load_CIFAR_batch(str(folder / "test_batch"))
    np.testing.assert_array_equal(X, Xte)
    assert assignment_data(num_training=30, num_validation=5, num_test=7, root=tmp_path)["X_val"].shape == (
        5,
        3,
        32,
        32,
    )


@pytest.mark.parametrize("writer", [write_cifar_python, write_cifar_binary])
def test_cifar10_arrays_are_writeable_from_folders_and_archives(tmp_path, writer):
    folder = writer(tmp_path / "root", cifar_arrays())
    archive = tar_folder(folder, tmp_path / "release.tar.gz", arcname=folder.name)
    for root in (tmp_path / "root", archive):
        X_train, y_train, X_test, y_test, _ = load_cifar10(root)
        assert all(a.flags.writeable for a in (X_train, y_train, X_test, y_test))
        X_test -= 1  # in place, as notebooks do
