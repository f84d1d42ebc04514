"""CS231n's data_utils.py: CIFAR-10 as the assignment loads it (safely: no pickle code runs)."""

from pathlib import Path

import numpy as np

from ...data import get_CIFAR10_data, load_cifar10
from ...data.cifar import _read_python_batch


def load_CIFAR_batch(filename):
    """One python-release batch: X float (10000, 32, 32, 3), Y (10000,)."""
    X, Y = _read_python_batch(Path(filename))
    return X.astype("float"), Y


def load_CIFAR10(ROOT):
    """Xtr, Ytr, Xte, Yte with float images (N, 32, 32, 3), from any CIFAR-10 layout numcnn reads."""
    X_train, y_train, X_test, y_test, _ = load_cifar10(ROOT)
    return X_train.astype("float"), y_train, X_test.astype("float"), y_test


__all__ = ["load_CIFAR_batch", "load_CIFAR10", "get_CIFAR10_data"]
