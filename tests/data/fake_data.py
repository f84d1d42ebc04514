"""Small files in every real format, made by the tests themselves."""

import gzip
import pickle
import tarfile
from pathlib import Path

import numpy as np


def cifar_arrays(n_per_batch=7, seed=0):
    rng = np.random.default_rng(seed)
    batches = [
        (rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8), rng.integers(0, 10, n_per_batch)) for _ in range(6)
    ]
    return batches  # 5 training batches, then the test batch


def write_cifar_python(folder: Path, batches) -> Path:
    folder = folder / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name, (data, labels) in zip(names, batches):
        record = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in labels],
            b"data": data,
            b"filenames": [f"{i}.png".encode() for i in range(len(data))],
        }
        (folder / name).write_bytes(pickle.dumps(record, protocol=2))
    meta = {
        b"label_names": [
            c.encode()
            for c in ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        ]
    }
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def write_cifar_binary(folder: Path, batches) -> Path:
    folder = folder / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name, (data, labels) in zip(names, batches):
        records = np.concatenate([labels.astype(np.uint8)[:, None], data], axis=1)
        (folder / name).write_bytes(records.tobytes())
    return folder


def idx_bytes(array: np.ndarray) -> bytes:
    header = (0x800 + array.ndim).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(folder: Path, n_train=20, n_test=10, compress=True, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for name, array in arrays.items():
        data = idx_bytes(array)
        if compress:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


def write_image_folder(
    folder: Path, classes=("cat", "dog", "emu"), per_class=3, size=(6, 5), mode="RGB", suffix=".png", seed=0
):
    from PIL import Image

    rng = np.random.default_rng(seed)
    images = {}
    for cls in classes:
        (folder / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = size + ((3,) if mode == "RGB" else ())
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(pixels, mode).save(folder / cls / f"{i:03d}{suffix}")
            images[(cls, i)] = pixels
    return images


def tar_folder(source: Path, archive: Path, arcname: str = ".") -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname=arcname)
    return archive
