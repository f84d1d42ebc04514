"""CS231n's get_CIFAR10_data: the assignment's preprocessed splits."""

from __future__ import annotations

import numpy as np

from .cifar import load_cifar10


def get_CIFAR10_data(
    num_training=49000,
    num_validation=1000,
    num_test=1000,
    subtract_mean=True,
    root=None,
    dtype=np.float32,
    download: bool = False,
):
    """X_train (num_training, 3, 32, 32) and the rest, as the assignment prepares them.

    Validation images are the num_validation after the first num_training
    training images; test images are the first num_test. With subtract_mean
    the training set's mean image is subtracted from every split. root as
    in load_cifar10 (default: $NUMCNN_DATA/cifar10); download=True fetches
    the official release there if it is missing. The assignment used
    float64; dtype=np.float64 gives exactly that.
    """
    X_train, y_train, X_test, y_test, _ = load_cifar10(root, download=download)
    if num_training + num_validation > len(X_train):
        raise ValueError(
            f"num_training + num_validation must be at most {len(X_train)}, got {num_training} + {num_validation}"
        )
    mask = slice(num_training, num_training + num_validation)
    X_val, y_val = X_train[mask].astype(dtype), y_train[mask]
    X_train, y_train = X_train[:num_training].astype(dtype), y_train[:num_training]
    X_test, y_test = X_test[:num_test].astype(dtype), y_test[:num_test]
    if subtract_mean:
        mean_image = X_train.mean(axis=0)
        X_train -= mean_image
        X_val -= mean_image
        X_test -= mean_image
    to_nchw = lambda X: np.ascontiguousarray(X.transpose(0, 3, 1, 2))
    return {
        "X_train": to_nchw(X_train),
        "y_train": y_train,
        "X_val": to_nchw(X_val),
        "y_val": y_val,
        "X_test": to_nchw(X_test),
        "y_test": y_test,
    }
