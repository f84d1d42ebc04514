"""CS231n's data_utils.py: the datasets as the assignments load them, without running pickled code.

Pickles (CIFAR-10 batches, saved models, the ImageNet sample's label map)
go through numcnn's restricted unpickler, which builds plain data and NumPy
arrays only; a file that asks for anything else is refused, not executed.
"""

import zipfile
from pathlib import Path

import numpy as np

from ... import data
from ...data import DataError, DatasetNotFound, load_cifar10, read_python_batch
from ...data.errors import DAMAGED_FILE_ERRORS, describe
from ...data.safe_pickle import safe_load


def load_CIFAR_batch(filename):
    """One python-release batch: X float (10000, 32, 32, 3), Y (10000,)."""
    X, Y = read_python_batch(Path(filename))
    return X.astype("float"), Y


def load_CIFAR10(ROOT):
    """Xtr, Ytr, Xte, Yte with float images (N, 32, 32, 3), from any CIFAR-10 layout numcnn reads."""
    X_train, y_train, X_test, y_test, _ = load_cifar10(ROOT)
    return X_train.astype("float"), y_train, X_test.astype("float"), y_test


def get_CIFAR10_data(
    num_training=49000, num_validation=1000, num_test=1000, subtract_mean=True, root=None, download=False
):
    """The assignment's dict of float64 (N, 3, 32, 32) splits (numcnn.data's takes a dtype).

    root: where CIFAR-10 is, as in numcnn.data.load_cifar10 (default $NUMCNN_DATA/cifar10);
    download=True fetches the official release there if it is missing.
    """
    return data.get_CIFAR10_data(
        num_training, num_validation, num_test, subtract_mean, root=root, dtype=np.float64, download=download
    )


def load_tiny_imagenet(path, dtype=np.float32, subtract_mean=True):
    """TinyImageNet (or a subset in its layout) as a dict.

    path holds wnids.txt, words.txt, train/<wnid>/<wnid>_boxes.txt and
    train/<wnid>/images/, val/val_annotations.txt and val/images/, and
    test/images/ (with test/test_annotations.txt when test labels exist).
    Returns class_names (a list of names per class), X_train, y_train,
    X_val, y_val, X_test, y_test (None without annotations) with images
    (N, 3, 64, 64) of `dtype`, and mean_image (3, 64, 64), subtracted from
    every split when subtract_mean.
    """
    path = Path(path)
    for required in ("wnids.txt", "words.txt", "train", "val"):
        if not (path / required).exists():
            raise DatasetNotFound(f"{path}: not a TinyImageNet folder (no {required})")
    wnids = [line.strip() for line in (path / "wnids.txt").read_text().splitlines() if line.strip()]
    label = {wnid: i for i, wnid in enumerate(wnids)}
    words = dict(line.split("\t", 1) for line in (path / "words.txt").read_text().splitlines() if "\t" in line)
    class_names = [[w.strip() for w in words.get(wnid, wnid).split(",")] for wnid in wnids]

    train_files, y_train = [], []
    for wnid in wnids:
        boxes = path / "train" / wnid / f"{wnid}_boxes.txt"
        if not boxes.is_file():
            raise DatasetNotFound(f"{boxes}: missing; every class in wnids.txt needs its train/<wnid>/ folder")
        names = [line.split("\t")[0] for line in boxes.read_text().splitlines() if line.strip()]
        train_files += [path / "train" / wnid / "images" / name for name in names]
        y_train += [label[wnid]] * len(names)
    val = [
        line.split("\t")[:2] for line in (path / "val" / "val_annotations.txt").read_text().splitlines() if "\t" in line
    ]
    X_train = _read_images(train_files, dtype)
    X_val = _read_images([path / "val" / "images" / name for name, _ in val], dtype)
    y_val = _labels_of([wnid for _, wnid in val], label, path / "val" / "val_annotations.txt")
    test_names = (
        sorted(p.name for p in (path / "test" / "images").iterdir()) if (path / "test" / "images").is_dir() else []
    )
    X_test = _read_images([path / "test" / "images" / name for name in test_names], dtype)
    y_test = None
    annotations = path / "test" / "test_annotations.txt"
    if annotations.is_file():
        test_label = dict(line.split("\t")[:2] for line in annotations.read_text().splitlines() if "\t" in line)
        unlisted = [name for name in test_names if name not in test_label]
        if unlisted:
            raise DataError(f"{annotations}: no class for test image {unlisted[0]} ({len(unlisted)} unlisted)")
        y_test = _labels_of([test_label[name] for name in test_names], label, annotations)
    mean_image = X_train.mean(axis=0)
    if subtract_mean:
        X_train, X_val, X_test = X_train - mean_image, X_val - mean_image, X_test - mean_image
    return {
        "class_names": class_names,
        "X_train": X_train,
        "y_train": np.array(y_train, dtype=np.int64),
        "X_val": X_val,
        "y_val": y_val,
        "X_test": X_test,
        "y_test": y_test,
        "mean_image": mean_image,
    }


def _labels_of(wnids, label: dict, source: Path) -> np.ndarray:
    unknown = [wnid for wnid in wnids if wnid not in label]
    if unknown:
        raise DataError(f"{source}: class {unknown[0]!r} is not in wnids.txt")
    return np.array([label[wnid] for wnid in wnids], dtype=np.int64)


def _read_images(files, dtype) -> np.ndarray:
    """Images (N, 3, 64, 64); grayscale ones have their one channel repeated, as in the assignment."""
    from PIL import Image

    images = np.empty((len(files), 3, 64, 64), dtype=dtype)
    for i, file in enumerate(files):
        try:
            with Image.open(file) as img:
                pixels = np.asarray(img.convert("RGB"))
        except FileNotFoundError:
            raise DatasetNotFound(f"{file}: missing (listed in the dataset's annotations)") from None
        except Exception as error:  # Pillow raises many types on damaged files, and one for pixel bombs
            raise DataError(f"{file}: not a readable image ({describe(error)})") from None
        if pixels.shape != (64, 64, 3):
            raise DataError(f"{file}: TinyImageNet images are 64x64, got {pixels.shape[:2]}")
        images[i] = pixels.transpose(2, 0, 1)
    return images


def load_models(models_dir):
    """{file name: model} for every file in models_dir holding a pickled dict with a 'model' entry.

    As in the assignment, files that are not such pickles (a README, say)
    are skipped; so are pickles that ask to run code, which the assignment
    would have executed: each skip is printed with its reason.
    """
    models = {}
    for file in sorted(Path(models_dir).iterdir()):
        if not file.is_file():
            continue
        try:
            content = safe_load(file.read_bytes(), str(file), encoding="latin1")
            models[file.name] = content["model"]
        except (DataError, KeyError, TypeError, IndexError) as error:
            print(f"load_models: skipped {file.name}: {error if isinstance(error, DataError) else 'no model in it'}")
    return models


def load_imagenet_val(num=None, path=None):
    """X (num, 224, 224, 3) uint8, y (num,), class_names: the assignments' sample of ImageNet validation images.

    path: imagenet_val_25.npz (default: the data folder, $NUMCNN_DATA or
    ~/.cache/numcnn). Its label map is a pickled dict inside the archive,
    read with the restricted unpickler.
    """
    path = Path(path) if path is not None else data.data_dir() / "imagenet_val_25.npz"
    if not path.is_file():
        raise DatasetNotFound(
            f"{path}: missing; get imagenet_val_25.npz with the assignment's get_datasets script and put it there"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            X, y = archive["X"], archive["y"]
        class_names = _pickled_npz_member(path, "label_map").item()
    except DataError:
        raise
    except (*DAMAGED_FILE_ERRORS, KeyError, ValueError) as error:  # a damaged .npz, or one without X, y, label_map
        raise DataError(f"{path}: not the assignments' ImageNet sample ({describe(error)})") from None
    if not isinstance(class_names, dict) or X.ndim != 4 or len(X) != len(y):
        raise DataError(
            f"{path}: expected X (N, 224, 224, 3), y (N,) and a dict label_map, got X {X.shape}, "
            f"y {y.shape}, label_map {type(class_names).__name__}"
        )
    if num is not None:
        X, y = X[:num], y[:num]
    return X, y, class_names


def _pickled_npz_member(path: Path, name: str) -> np.ndarray:
    """An object array stored in an .npz (a pickle after the .npy header), through safe_load."""
    with zipfile.ZipFile(path) as archive, archive.open(f"{name}.npy") as member:
        version = np.lib.format.read_magic(member)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            raise DataError(f"{path}: {name}.npy has an unknown .npy format version {version}")
        read_header[version](member)
        # np.save pickles an object array as a list of its items, which is all that allow_objects lets in
        return safe_load(member.read(), f"{path}:{name}", encoding="latin1", allow_objects=True)


__all__ = [
    "load_CIFAR_batch",
    "load_CIFAR10",
    "get_CIFAR10_data",
    "load_tiny_imagenet",
    "load_models",
    "load_imagenet_val",
]
