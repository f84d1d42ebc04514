"""scikit-learn's bundled handwritten digits: 1,797 8x8 images, no download needed."""

from __future__ import annotations

import numpy as np

from .loader import train_val_split


def load_digits(test_fraction: float = 0.2, seed: int = 0):
    """X_train uint8 (N, 8, 8, 1) scaled to 0..255, y_train int64, X_test, y_test, class names.

    The test split is a fixed stratified fraction (seed) of the 1,797 images.
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError("the digits dataset comes with scikit-learn: pip install scikit-learn") from None
    digits = sklearn_digits()
    X = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]  # pixels 0..16 -> 0..255
    y = digits.target.astype(np.int64)
    X_train, y_train, X_test, y_test = train_val_split(X, y, test_fraction, seed=seed)
    return X_train, y_train, X_test, y_test, [str(d) for d in range(10)]
