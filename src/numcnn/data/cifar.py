"""CIFAR-10 from either official release, or from an image-folder copy of it.

- python release (cifar-10-batches-py/): pickled dicts data_batch_1..5 and
  test_batch, read with a restricted unpickler (no code runs);
- binary release (cifar-10-batches-bin/): records of 1 label byte and 3072
  pixel bytes (1024 red, 1024 green, 1024 blue, each row-major 32x32);
- image folders train/<class>/*.png|jpg and test/<class>/..., as a folder
  or a .tar.gz (such as the JPEG copy numcnn's tests use), returned in a
  fixed random order like the official batches.

The official releases' .tar.gz are read in place, without unpacking; any of
these archives may also be the only one in the root folder.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from .download import download_and_extract
from .errors import DAMAGED_FILE_ERRORS, DataError, DatasetNotFound, data_dir, describe
from .folder import is_archive, load_image_folder, member_name
from .safe_pickle import safe_load

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PYTHON_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
PYTHON_MD5 = "c58f30108f718f92721af3b95e74349a"
RECORD = 1 + 32 * 32 * 3
OFFICIAL_FOLDERS = ("cifar-10-batches-py", "cifar-10-batches-bin")
MAX_BATCH_BYTES = 64 << 20  # the official batch files are 31 MB


def _rows_to_images(rows: np.ndarray) -> np.ndarray:
    """(N, 3072) rows of R, G, B planes -> (N, 32, 32, 3)."""
    return rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def read_python_batch(path: Path, content: bytes | None = None):
    """One python-release batch: a dict with b"data", uint8 (N, 3072), and b"labels", N ints 0..9.

    content: the file's bytes (read from `path` if None; an archive's member names it `path`).
    Returns images uint8 (N, 32, 32, 3) and labels int64 (N,); a file that is not such a batch
    raises DataError (DatasetNotFound if it is missing), naming the file.
    """
    if content is None:
        if not path.is_file():
            raise DatasetNotFound(f"{path}: missing CIFAR-10 batch file")
        content = path.read_bytes()
    batch = safe_load(content, str(path), dtypes={"u1", "i8", "i4"})
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{path}: not a CIFAR-10 batch (expected a dict with b'data' and b'labels' entries)")
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else f"a {type(data).__name__}"
        raise DataError(f"{path}: data must be a uint8 array of rows of 3072 values, got {got}")
    labels = _python_labels(batch[b"labels"], path)
    if len(labels) != len(data):
        raise DataError(f"{path}: {len(labels)} labels for {len(data)} images")
    return _rows_to_images(data), _check_labels(labels, path)


def _python_labels(labels, path) -> np.ndarray:
    """A batch's labels, a list of ints (or a 1-d integer array), as int64; anything else is refused
    rather than converted (floats would be truncated, strings or nested lists misread)."""
    expected = "a list of integer labels 0..9"
    if isinstance(labels, np.ndarray):
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise DataError(f"{path}: labels must be {expected}, got a {labels.dtype} array of shape {labels.shape}")
        labels = labels.tolist()
    if not isinstance(labels, (list, tuple)):
        raise DataError(f"{path}: labels must be {expected}, got a {type(labels).__name__}")
    for label in labels:
        if type(label) is not int and not isinstance(label, np.integer):
            raise DataError(f"{path}: labels must be {expected}, got {type(label).__name__} {label!r:.40}")
        if not 0 <= label < 10:
            raise DataError(f"{path}: label {str(label)[:40]} out of range 0..9")
    return np.array(labels, dtype=np.int64)


def _read_binary_batch(path: Path, content: bytes | None = None):
    """Records of a label byte and 3072 pixel bytes (content as in read_python_batch)."""
    if content is None:
        if not path.is_file():
            raise DatasetNotFound(f"{path}: missing CIFAR-10 batch file")
        content = path.read_bytes()
    raw = np.frombuffer(content, dtype=np.uint8).copy()  # writeable, as np.fromfile's was
    if raw.size == 0 or raw.size % RECORD:
        raise DataError(f"{path}: {raw.size} bytes is not a whole number of {RECORD}-byte records")
    records = raw.reshape(-1, RECORD)
    return _rows_to_images(records[:, 1:]), _check_labels(records[:, 0].astype(np.int64), path)


def _check_labels(y, source):
    if y.size and (y.min() < 0 or y.max() >= 10):
        raise DataError(f"{source}: label {y.max() if y.max() >= 10 else y.min()} out of range 0..9")
    return y


def load_cifar10(root=None, download: bool = False):
    """X_train uint8 (50000, 32, 32, 3), y_train int64, X_test, y_test and the class names.

    root: a folder holding cifar-10-batches-py/, cifar-10-batches-bin/, or
    train/ and test/ class folders; or an archive of one of these (the
    official .tar.gz releases are read without unpacking); or a folder holding
    one such archive. Default: the data folder ($NUMCNN_DATA or
    ~/.cache/numcnn)/cifar10. download=True fetches the official python
    release there and checks its md5.
    """
    root = Path(root) if root is not None else data_dir() / "cifar10"
    if is_archive(root):
        return _from_archive(root)
    for candidate in (root, root / "cifar-10-batches-py"):
        if (candidate / "data_batch_1").is_file():
            return _from_python(candidate)
    for candidate in (root, root / "cifar-10-batches-bin"):
        if (candidate / "data_batch_1.bin").is_file():
            return _from_binary(candidate)
    if (root / "train").is_dir() and (root / "test").is_dir():
        return _from_folders(root)
    archives = sorted(p for p in root.iterdir() if is_archive(p)) if root.is_dir() else []
    if len(archives) > 1:
        raise DataError(
            f"{root}: several archives could be CIFAR-10 ({', '.join(p.name for p in archives)}); "
            f"pass the one to read as the root"
        )
    if archives:
        return _from_archive(archives[0])
    if download:
        download_and_extract(PYTHON_URL, root, md5=PYTHON_MD5)
        return _from_python(root / "cifar-10-batches-py")
    raise DatasetNotFound(
        f"{root}: no CIFAR-10 found (cifar-10-batches-py/, cifar-10-batches-bin/, train/ and test/ folders, or an "
        f"archive of one). Pass download=True (--download on the command line), or download {PYTHON_URL} by hand "
        f"and put it in {root}"
    )


def _from_archive(path: Path):
    """An official release's .tar.gz (its batches read from the archive), or an archive of image folders."""
    files = _official_release_files(path)
    if files is None:
        return _from_folders(path)
    folder, names = files
    return (_from_python if folder.name == "cifar-10-batches-py" else _from_binary)(folder, names)


def _official_release_files(path: Path):
    """(path/cifar-10-batches-py or -bin, {file name: bytes}) if the archive is an official release
    (its first member is that folder), else None. Each file may declare at most MAX_BATCH_BYTES."""
    if path.name.lower().endswith(".zip"):
        return None
    try:
        with tarfile.open(path) as archive:
            first = archive.next()
            top = member_name(first.name).split("/")[0] if first is not None and member_name(first.name) else None
            if top not in OFFICIAL_FOLDERS:
                return None
            files = {}
            for member in [first, *archive]:
                name = member_name(member.name)
                if not member.isfile() or name is None or name.rpartition("/")[0] != top:
                    continue
                if member.size > MAX_BATCH_BYTES:
                    raise DataError(
                        f"{path}: member {name} declares {member.size} bytes, more than the "
                        f"{MAX_BATCH_BYTES >> 20} MiB a CIFAR-10 batch file may have"
                    )
                files[name.rpartition("/")[2]] = archive.extractfile(member).read()
    except DataError:
        raise
    except (*DAMAGED_FILE_ERRORS, ValueError) as error:
        raise DataError(f"{path}: truncated or corrupted archive ({describe(error)})") from None
    return path / top, files


def _from_python(folder: Path, files: dict | None = None):
    """The python release in `folder`, or in `files` ({name: bytes}, from an archive; folder names them)."""
    read = _reader(folder, files)
    parts = [read_python_batch(folder / f"data_batch_{i}", read(f"data_batch_{i}")) for i in range(1, 6)]
    X_test, y_test = read_python_batch(folder / "test_batch", read("test_batch"))
    X_train, y_train = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    meta = read("batches.meta")
    classes = _python_class_names(folder / "batches.meta", meta) if meta is not None else list(CLASSES)
    return X_train, y_train, X_test, y_test, classes


def _reader(folder: Path, files: dict | None):
    """read(name) -> the file's bytes, or None if it is missing."""
    if files is not None:
        return files.get
    return lambda name: (folder / name).read_bytes() if (folder / name).is_file() else None


def _python_class_names(meta: Path, content: bytes) -> list[str]:
    """batches.meta: a dict whose b"label_names" is 10 names (bytes or str)."""
    meta_dict = safe_load(content, str(meta), dtypes=())
    names = meta_dict.get(b"label_names") if isinstance(meta_dict, dict) else meta_dict
    if not (
        isinstance(meta_dict, dict)
        and isinstance(names, list)
        and len(names) == 10
        and all(isinstance(n, (bytes, str)) for n in names)
    ):
        raise DataError(
            f"{meta}: expected a dict whose b'label_names' is a list of 10 class names, "
            f"got {type(names).__name__} {names!r:.60}"
        )
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]


def _from_binary(folder: Path, files: dict | None = None):
    read = _reader(folder, files)
    parts = [_read_binary_batch(folder / f"data_batch_{i}.bin", read(f"data_batch_{i}.bin")) for i in range(1, 6)]
    X_test, y_test = _read_binary_batch(folder / "test_batch.bin", read("test_batch.bin"))
    X_train, y_train = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    meta = read("batches.meta.txt")
    names = [line.strip() for line in meta.decode("utf-8", "replace").splitlines() if line.strip()] if meta else []
    if meta is not None and len(names) != 10:
        raise DataError(f"{folder / 'batches.meta.txt'}: expected 10 class names, one a line, got {len(names)}")
    return X_train, y_train, X_test, y_test, names or list(CLASSES)


def _from_folders(root: Path):
    """Image folders come sorted by class, the official batches in random order: shuffle
    (with a fixed seed) so that a contiguous slice, such as get_CIFAR10_data's last
    1,000 training images for validation, is a fair sample of all classes."""
    X_train, y_train, classes = load_image_folder(root, "train")
    X_test, y_test, test_classes = load_image_folder(root, "test")
    rng = np.random.default_rng(0)
    train_order, test_order = rng.permutation(len(X_train)), rng.permutation(len(X_test))
    X_train, y_train, X_test, y_test = (
        X_train[train_order],
        y_train[train_order],
        X_test[test_order],
        y_test[test_order],
    )
    if test_classes != classes:
        raise DataError(f"{root}: train/ and test/ have different classes: {classes} vs {test_classes}")
    for X, split in ((X_train, "train"), (X_test, "test")):
        if X.shape[1:] != (32, 32, 3):
            raise DataError(f"{root}/{split}: CIFAR-10 images are 32x32 RGB, got {X.shape[1:]}")
    return X_train, y_train, X_test, y_test, classes
