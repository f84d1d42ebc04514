"""Image pyramids: Gaussian (smooth, halve) and Laplacian (the detail each halving loses).

gaussian_pyramid follows skimage.transform.pyramid_gaussian: each level is
the previous one blurred with sigma = 2/3 ('reflect' borders) and resized to
ceil(n/2) pixels by linear interpolation at pixel centres. A Laplacian
level is a Gaussian level minus the next level expanded back to its size;
the coarsest Gaussian level closes the pyramid, so adding the levels back
up reconstructs the image exactly.
"""

from __future__ import annotations

import math

import numpy as np

from .filters import gaussian_blur
from .image import as_float_image


def _resize_axis(img: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Linear interpolation along one axis to `size` samples, pixel centres aligned (grid mode)."""
    n = img.shape[axis]
    coordinates = (np.arange(size) + 0.5) * (n / size) - 0.5
    coordinates = np.clip(coordinates, 0, n - 1)  # beyond the last centre: the edge value
    low = np.floor(coordinates).astype(int)
    high = np.minimum(low + 1, n - 1)
    t = (coordinates - low).reshape([-1 if a == axis else 1 for a in range(img.ndim)])
    return np.take(img, low, axis=axis) * (1 - t) + np.take(img, high, axis=axis) * t


def resize(img, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (H, W) or (H, W, C) image to shape (rows, columns)."""
    img = as_float_image(img)
    return _resize_axis(_resize_axis(img, shape[0], 0), shape[1], 1)


def _reduce(img: np.ndarray, sigma: float) -> np.ndarray:
    smoothed = gaussian_blur(img, sigma, boundary="reflect")
    return resize(smoothed, (math.ceil(img.shape[0] / 2), math.ceil(img.shape[1] / 2)))


def gaussian_pyramid(img, levels: int, sigma: float = 2.0 / 3.0) -> list[np.ndarray]:
    """[img, reduced once, reduced twice, ...]: levels + 1 images, halving in size."""
    img = as_float_image(img)
    if levels < 0:
        raise ValueError(f"levels must be at least 0, got {levels}")
    pyramid = [img]
    for _ in range(levels):
        if min(pyramid[-1].shape[:2]) < 2:
            raise ValueError(f"an image of {img.shape[:2]} cannot be halved {levels} times")
        pyramid.append(_reduce(pyramid[-1], sigma))
    return pyramid


def laplacian_pyramid(img, levels: int, sigma: float = 2.0 / 3.0) -> list[np.ndarray]:
    """levels band-pass images (finest first) and, last, the coarsest Gaussian level."""
    gaussians = gaussian_pyramid(img, levels, sigma)
    bands = [fine - resize(coarse, fine.shape[:2]) for fine, coarse in zip(gaussians, gaussians[1:])]
    return bands + [gaussians[-1]]


def reconstruct(laplacian: list[np.ndarray]) -> np.ndarray:
    """Invert laplacian_pyramid: expand the coarsest level and add back each band."""
    image = laplacian[-1]
    for band in reversed(laplacian[:-1]):
        image = band + resize(image, band.shape[:2])
    return image
