"""MNIST and Fashion-MNIST in the IDX format, gzip-compressed or not.

An IDX file is a big-endian header (magic number 0x0000 08 DD, with DD the
number of dimensions, then one uint32 per dimension) followed by the raw
uint8 data. Images are 0x00000803 (N, 28, 28), labels 0x00000801 (N,).
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np

from .download import download_files
from .errors import DAMAGED_FILE_ERRORS, DataError, DatasetNotFound, data_dir, describe

MAX_IDX_BYTES = 1 << 31  # 2 GiB; the largest MNIST file is 47 MB
DEFLATE_MAX_RATIO = 1032  # deflate's best compression: one 258-byte match per 2 bits, at most

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CLASSES = {
    "mnist": [str(d) for d in range(10)],
    "fashion": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
}
# Official archives (gzip) and their md5 sums, as torchvision lists them
SOURCES = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
}


def read_idx(path, expected_ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes as an array, with magic number and size checked.

    The header's declared size is checked before any data is read (at most
    MAX_IDX_BYTES; for gzip, at most what deflate can inflate the file to),
    and data is read into an array of exactly that size: a file holding more
    is refused after one byte more, so a small gzip bomb costs no memory.
    """
    path = Path(path)
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
            shape = _idx_shape(path, f, expected_ndim)
            return _read_values(path, f, shape)
    except DataError:
        raise
    except (*DAMAGED_FILE_ERRORS, ValueError) as error:  # gzip.BadGzipFile is an OSError, bad deflate zlib.error
        raise DataError(f"{path}: cannot be read (truncated or not gzip?): {describe(error)}") from None


def _read_exactly(f, count: int) -> bytes:
    chunks, left = [], count
    while left and (chunk := f.read(left)):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _idx_shape(path: Path, f, expected_ndim: int) -> tuple[int, ...]:
    """The dimensions the header declares, checked against the magic number and the size limits."""
    head = _read_exactly(f, 4)
    if len(head) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({len(head)} bytes)")
    magic = int.from_bytes(head, "big")
    if magic != 0x800 + expected_ndim:
        raise DataError(
            f"{path}: wrong magic number {magic:#010x}; an IDX file of {expected_ndim}-d "
            f"unsigned bytes starts with {0x800 + expected_ndim:#010x}"
        )
    dims = _read_exactly(f, 4 * expected_ndim)
    if len(dims) < 4 * expected_ndim:
        raise DataError(f"{path}: the header stops after {4 + len(dims)} bytes; {4 + 4 * expected_ndim} expected")
    shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(expected_ndim))
    count = math.prod(shape)  # Python ints: 2^22 * 2^22 * 2^20 is 2^64, not 0
    if count > MAX_IDX_BYTES:
        raise DataError(
            f"{path}: the header declares {shape} = {count} values, more than the {MAX_IDX_BYTES} an IDX file may hold"
        )
    if path.suffix == ".gz" and count > DEFLATE_MAX_RATIO * path.stat().st_size:
        raise DataError(
            f"{path}: the header declares {shape} = {count} values, but a gzip file of "
            f"{path.stat().st_size} bytes cannot inflate to that many (truncated or forged)"
        )
    if path.suffix != ".gz" and count != path.stat().st_size - 4 - 4 * expected_ndim:
        raise DataError(
            f"{path}: the header promises {shape} = {count} values, "
            f"the file holds {path.stat().st_size - 4 - 4 * expected_ndim}"
        )
    return shape


def _read_values(path: Path, f, shape) -> np.ndarray:
    values = np.empty(math.prod(shape), np.uint8)
    view, filled = memoryview(values), 0
    while filled < len(values) and (n := f.readinto(view[filled:])):
        filled += n
    if filled < len(values):
        raise DataError(f"{path}: the header promises {shape} = {len(values)} values, the file holds {filled}")
    if f.read(1):
        raise DataError(f"{path}: the header promises {shape} = {len(values)} values, the file holds more")
    return values.reshape(shape)


def _find(root: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (root / name).is_file():
            return root / name
    return None


def load_mnist(root=None, kind: str = "mnist", download: bool = False):
    """MNIST (kind='mnist') or Fashion-MNIST (kind='fashion') from IDX files under root.

    Returns X_train uint8 (60000, 28, 28, 1), y_train int64, X_test, y_test, class names.
    With download=True, missing files are fetched (and checked) into root or the data folder.
    """
    if kind not in CLASSES:
        raise ValueError(f"kind must be 'mnist' or 'fashion', got {kind!r}")
    root = Path(root) if root is not None else data_dir() / kind
    paths = {key: _find(root, stem) for key, stem in FILES.items()}
    if any(p is None for p in paths.values()) and download:
        base, md5s = SOURCES[kind]
        download_files(base, md5s, root)
        paths = {key: _find(root, stem) for key, stem in FILES.items()}
    missing = [FILES[k] for k, p in paths.items() if p is None]
    if missing:
        base, md5s = SOURCES[kind]
        raise DatasetNotFound(
            f"{root}: missing {', '.join(missing)} (.gz or not). Pass download=True (--download on the "
            f"command line), or download {', '.join(md5s)} from {base} and put them in {root}"
        )
    X_train, X_test = read_idx(paths["train_images"], 3), read_idx(paths["test_images"], 3)
    y_train, y_test = read_idx(paths["train_labels"], 1), read_idx(paths["test_labels"], 1)
    for images, labels, split in ((X_train, y_train, "train"), (X_test, y_test, "test")):
        if len(images) != len(labels):
            raise DataError(
                f"{paths[split + '_labels']}: {len(labels)} labels for {len(images)} images "
                f"in {paths[split + '_images']}"
            )
        if labels.size and labels.max() >= 10:
            raise DataError(f"{paths[split + '_labels']}: label {labels.max()} out of range 0..9")
    return (
        X_train[..., None],
        y_train.astype(np.int64),
        X_test[..., None],
        y_test.astype(np.int64),
        list(CLASSES[kind]),
    )
