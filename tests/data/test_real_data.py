"""The real CIFAR-10 and MNIST files beside the project (../shared/data), when they are there."""

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from numcnn.data import folder, load_cifar10, load_mnist

SHARED = Path(os.environ.get("NUMCNN_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
requires_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"the shared real datasets are not at {SHARED}")

MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


@requires_shared
def test_real_mnist_files_are_the_official_release():
    for name, md5 in MNIST_MD5.items():
        assert hashlib.md5(gzip.decompress((SHARED / "mnist" / f"{name}.gz").read_bytes())).hexdigest() == md5
    X_train, y_train, X_test, y_test, _ = load_mnist(SHARED / "mnist")
    assert X_train.shape == (60000, 28, 28, 1) and X_test.shape == (10000, 28, 28, 1)
    assert list(y_train[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.bincount(y_test).sum() == 10000 and X_train.mean() == pytest.approx(33.32, abs=0.05)


# Decoding 60,000 JPEGs takes a minute or two; the decoded arrays are kept in the project's own
# (git-ignored) cache folder between test runs, never in the user's ~/.cache/numcnn.
PROJECT_CACHE = Path(__file__).resolve().parents[2] / ".test-cache"


@requires_shared
def test_real_cifar10_counts_and_channel_means(monkeypatch):
    monkeypatch.setenv("NUMCNN_DATA", str(PROJECT_CACHE))
    load_cifar10(SHARED / "cifar10-jpeg.tar.gz")  # decodes once, or reads the cache
    monkeypatch.setattr(folder, "_decode_all", lambda *a: pytest.fail("decoded again: the cache was not used"))
    X_train, y_train, X_test, y_test, classes = load_cifar10(SHARED / "cifar10-jpeg.tar.gz")
    assert X_train.shape == (50000, 32, 32, 3) and X_test.shape == (10000, 32, 32, 3)
    assert list(np.bincount(y_train)) == [5000] * 10 and list(np.bincount(y_test)) == [1000] * 10
    assert classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    means = X_train.reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(means, [125.27, 122.93, 113.86], atol=0.01)  # the data README's figures
    np.testing.assert_allclose(X_train.reshape(-1, 3).std(axis=0), [62.53, 61.91, 66.46], atol=0.01)
