"""The data of a training run: a named dataset loaded, split and normalized, and its augmentation.

raw = load_raw("digits")                 # uint8 (N, H, W, C) train and test images, labels, classes
prepared = prepare(raw, val_size=0.1)    # float (N, C, H, W) splits, normalized with training statistics
augment = make_augment("standard", "digits", prepared.input_shape)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import data
from .config import AUGMENTS, DATASETS, UserError


@dataclass
class Prepared:
    """A dataset ready to train on: normalized float splits, the class names and the normalization.

    Attributes:
        X_train: Training images (N, C, H, W), normalized per channel.
        y_train: Their integer labels (N,).
        X_val: Validation images, normalized as the training ones.
        y_val: Their labels.
        X_test: Test images, normalized as the training ones.
        y_test: Their labels.
        classes: The class names, indexed by label.
        mean: The per-channel mean (C,) subtracted (the training split's, unless given).
        std: The per-channel standard deviation (C,) divided by (computed: at least 1e-3).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: list
    mean: np.ndarray
    std: np.ndarray

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.X_train.shape[1:])


def load_raw(dataset: str, path=None, data_dir=None, download=False, image_size=None):
    """uint8 (N, H, W, C) train and test images, labels and class names of a named dataset.

    image_size=N (folders only): every image resized and center-cropped to N x N."""
    if dataset not in DATASETS:
        raise UserError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    if image_size is not None and dataset != "folder":
        raise UserError(f"--image-size resizes your own images (--dataset folder PATH), not {dataset}")
    if dataset == "digits":
        return data.load_digits()
    if dataset in ("mnist", "fashion"):
        root = data_dir or (data.data_dir() / dataset)
        return data.load_mnist(root, kind=dataset, download=download)
    if dataset == "cifar10":
        return data.load_cifar10(data_dir, download=download)
    if path is None:
        raise UserError("--dataset folder needs a path: --dataset folder PATH")
    root = Path(path)
    if data.folder.is_archive(root) or (root / "train").is_dir() and (root / "test").is_dir():
        X_train, y_train, classes = data.load_image_folder(root, "train", image_size=image_size)
        X_test, y_test, test_classes = data.load_image_folder(root, "test", image_size=image_size)
        if test_classes != classes:
            raise UserError(f"{root}: train/ and test/ have different classes")
        return X_train, y_train, X_test, y_test, classes
    X, y, classes = data.load_image_folder(root, image_size=image_size)
    if not 0 < round(0.2 * len(X)) < len(X):
        raise UserError(
            f"{root}: {len(X)} image(s) are too few to hold out a test set (a fifth of them): "
            f"give the folder at least 3 images, or train/ and test/ subfolders"
        )
    X_train, y_train, X_test, y_test = data.train_val_split(X, y, 0.2, seed=0)  # a fixed test split
    return X_train, y_train, X_test, y_test, classes


def prepare(raw, val_size=0.1, seed=0, mean=None, std=None) -> Prepared:
    """Float (N, C, H, W) splits normalized per channel with the training split's statistics."""
    X_train, y_train, X_test, y_test, classes = raw
    X_train, X_test = data.to_float_nchw(X_train), data.to_float_nchw(X_test)
    N = len(X_train)
    count = round(val_size * N) if 0 < val_size < 1 else val_size
    if not 0 < count < N:
        raise UserError(
            f"--val-size {val_size} leaves no images for training or for validation out of the {N} "
            f"training images: give a fraction in (0, 1) or a count from 1 to {N - 1}"
        )
    X_train, y_train, X_val, y_val = data.train_val_split(X_train, y_train, val_size, seed=seed)
    if mean is None:
        mean, std = data.channel_stats(X_train)
        std = np.maximum(std, 1e-3)
    normalize = data.Normalize(mean, std)
    return Prepared(
        normalize(X_train),
        y_train,
        normalize(X_val),
        y_val,
        normalize(X_test),
        y_test,
        list(classes),
        np.asarray(mean),
        np.asarray(std),
    )


def make_augment(kind: str, dataset: str, input_shape):
    """The batch augmentation for a dataset: 'standard' flips natural images but never digits."""
    if kind == "none":
        return None
    _, H, W = input_shape
    crop = data.RandomCrop((H, W), padding=max(1, H // 8), padding_mode="reflect")
    flip = data.RandomHorizontalFlip()
    digits_like = dataset in ("digits", "mnist")
    chosen = {
        "crop": [crop],
        "flip": [flip],
        "cutout": [crop, data.Cutout(max(2, H // 4))] + ([] if digits_like else [flip]),
        "standard": [crop] + ([] if digits_like else [flip]),
    }
    if kind not in chosen:
        raise UserError(f"unknown augmentation {kind!r}; choose from {', '.join(AUGMENTS)}")
    return data.Compose(chosen[kind])
