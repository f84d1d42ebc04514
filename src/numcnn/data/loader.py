"""Minibatches and splits."""

from __future__ import annotations

import numpy as np

from ..checks import positive_int


def train_val_split(X, y, val_size, seed: int = 0, stratify: bool = True):
    """Split off a validation set: val_size images, or a fraction in (0, 1).

    With stratify, each class keeps its share; the split is fixed by seed.
    Returns X_train, y_train, X_val, y_val.
    """
    N = len(X)
    if len(y) != N:
        raise ValueError(f"X and y must have the same length, got {N} and {len(y)}")
    count = int(round(val_size * N)) if isinstance(val_size, float) and 0 < val_size < 1 else int(val_size)
    if not 0 < count < N:
        raise ValueError(f"val_size must leave both splits non-empty, got {val_size!r} for {N} samples")
    rng = np.random.default_rng(seed)
    if stratify:
        val = []
        classes, counts = np.unique(y, return_counts=True)
        shares = np.floor(counts * count / N).astype(int)
        shares[np.argsort(-(counts * count / N - shares))[: count - shares.sum()]] += 1  # largest remainders
        for cls, share in zip(classes, shares):
            members = np.flatnonzero(y == cls)
            val.append(rng.choice(members, share, replace=False))
        val = np.sort(np.concatenate(val))
    else:
        val = np.sort(rng.choice(N, count, replace=False))
    train = np.setdiff1d(np.arange(N), val)
    return X[train], y[train], X[val], y[val]


class DataLoader:
    """Iterate (X_batch, y_batch) over a dataset.

    shuffle: a new order each pass, from rng (a numpy Generator, or a seed);
    drop_last: skip a final short batch; transform: callable (X, rng) -> X
    applied to each batch (the augmentations in numcnn.data.transforms).
    """

    def __init__(
        self, X, y, batch_size: int = 64, shuffle: bool = False, drop_last: bool = False, rng=None, transform=None
    ):
        if len(X) != len(y):
            raise ValueError(f"X and y must have the same length, got {len(X)} and {len(y)}")
        self.X, self.y = X, y
        self.batch_size = positive_int(batch_size, "batch_size")
        self.shuffle, self.drop_last, self.transform = shuffle, drop_last, transform
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def __len__(self) -> int:
        full, rest = divmod(len(self.X), self.batch_size)
        return full if self.drop_last or not rest else full + 1

    def __iter__(self):
        order = self.rng.permutation(len(self.X)) if self.shuffle else np.arange(len(self.X))
        for i in range(len(self)):
            index = order[i * self.batch_size : (i + 1) * self.batch_size]
            X_batch = self.X[index]
            if self.transform is not None:
                X_batch = self.transform(X_batch, rng=self.rng)
            yield X_batch, self.y[index]
