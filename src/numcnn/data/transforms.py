"""Batch transforms for training images (N, C, H, W), driven by a numpy Generator.

Each transform is a callable transform(X, rng=None) -> new array, vectorized
over the batch, so it serves as the Solver's `augment` or a DataLoader's
`transform`:

    augment = Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), Cutout(8)])
    X_batch = augment(X_batch, rng=np.random.default_rng(0))

Inputs are never modified.
"""

from __future__ import annotations

import numpy as np

from ..checks import float_array, int_pair, probability


def _rng(rng):
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def to_float_nchw(X, scale: float = 1 / 255.0, dtype=np.float32) -> np.ndarray:
    """uint8 images (N, H, W, C) -> float (N, C, H, W) in [0, 1] (scale=1/255)."""
    X = np.asarray(X)
    if X.ndim != 4:
        raise ValueError(f"X must have shape (N, H, W, C), got {X.shape}")
    return np.ascontiguousarray(X.transpose(0, 3, 1, 2), dtype=dtype) * dtype(scale)


def channel_stats(X) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of images (N, C, H, W), in float64."""
    X = float_array(X, "X", ndim=4)
    return X.mean(axis=(0, 2, 3), dtype=np.float64), X.std(axis=(0, 2, 3), dtype=np.float64)


class Normalize:
    """(X - mean) / std per channel; compute mean and std on the training set (channel_stats)."""

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float64).reshape(1, -1, 1, 1)
        self.std = np.asarray(std, dtype=np.float64).reshape(1, -1, 1, 1)
        if np.any(self.std <= 0):
            raise ValueError(f"std must be positive, got {np.ravel(std)}")

    def __call__(self, X, rng=None):
        X = float_array(X, "X", ndim=4)
        if X.shape[1] != self.mean.shape[1]:
            raise ValueError(f"X has {X.shape[1]} channels, Normalize was given {self.mean.shape[1]}")
        return ((X - self.mean) / self.std).astype(X.dtype)


class RandomCrop:
    """Pad by `padding` (reflect or constant zeros), then crop `size` at a random place per image."""

    def __init__(self, size, padding: int = 0, padding_mode: str = "reflect"):
        self.size = int_pair(size, "size", minimum=1)
        self.padding = int(padding)
        if padding_mode not in ("reflect", "constant"):
            raise ValueError(f"padding_mode must be 'reflect' or 'constant', got {padding_mode!r}")
        self.padding_mode = padding_mode

    def __call__(self, X, rng=None):
        X = float_array(X, "X", ndim=4)
        rng = _rng(rng)
        p = self.padding
        padded = np.pad(X, ((0, 0), (0, 0), (p, p), (p, p)), mode=self.padding_mode) if p else X
        (ch, cw), (H, W) = self.size, padded.shape[2:]
        if ch > H or cw > W:
            raise ValueError(f"size {self.size} is larger than the padded images {(H, W)}")
        N = len(X)
        top = rng.integers(0, H - ch + 1, N)
        left = rng.integers(0, W - cw + 1, N)
        rows = (top[:, None] + np.arange(ch))[:, None, :, None]
        cols = (left[:, None] + np.arange(cw))[:, None, None, :]
        return padded[np.arange(N)[:, None, None, None], np.arange(X.shape[1])[None, :, None, None], rows, cols]


class RandomHorizontalFlip:
    """Mirror each image left-right with probability p."""

    def __init__(self, p: float = 0.5):
        self.p = probability(p, "p")

    def __call__(self, X, rng=None):
        X = float_array(X, "X", ndim=4)
        flip = _rng(rng).random(len(X)) < self.p
        return np.where(flip[:, None, None, None], X[..., ::-1], X)


class Cutout:
    """Zero a size x size square at a random centre in each image (DeVries & Taylor 2017).

    The square may hang over the border, as in the paper; p is the chance
    of cutting at all.
    """

    def __init__(self, size: int, p: float = 1.0, value: float = 0.0):
        self.size, self.p, self.value = int(size), probability(p, "p"), value

    def __call__(self, X, rng=None):
        X = float_array(X, "X", ndim=4)
        rng = _rng(rng)
        N, _, H, W = X.shape
        cy, cx = rng.integers(0, H, N), rng.integers(0, W, N)
        apply = rng.random(N) < self.p
        half = self.size // 2
        rows = np.abs(np.arange(H)[None, :] - cy[:, None]) <= half - (self.size % 2 == 0)
        rows &= np.arange(H)[None, :] >= cy[:, None] - half
        cols = np.abs(np.arange(W)[None, :] - cx[:, None]) <= half - (self.size % 2 == 0)
        cols &= np.arange(W)[None, :] >= cx[:, None] - half
        mask = (rows[:, :, None] & cols[:, None, :]) & apply[:, None, None]
        return np.where(mask[:, None], X.dtype.type(self.value), X)


class Compose:
    """Apply transforms in order, sharing one generator."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, X, rng=None):
        rng = _rng(rng)
        for transform in self.transforms:
            X = transform(X, rng=rng)
        return X
