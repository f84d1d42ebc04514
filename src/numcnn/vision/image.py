"""Images for numcnn.vision: checks and conversions shared by its functions.

Images are (H, W) grayscale or (H, W, C) colour arrays, uint8 (0..255) or
float. Every function returns float64; uint8 input is first scaled to
[0, 1], float input is used as it is.
"""

from __future__ import annotations

import numpy as np


def as_float_image(img, name: str = "img") -> np.ndarray:
    """A finite float64 (H, W) or (H, W, C) image; uint8 scaled to [0, 1]."""
    img = np.asarray(img)
    if img.ndim not in (2, 3):
        raise ValueError(f"{name} must be an (H, W) or (H, W, C) image, got shape {img.shape}")
    if img.ndim == 3 and img.shape[2] not in (1, 2, 3, 4):
        raise ValueError(
            f"{name} has {img.shape[2]} channels on its last axis; an (H, W, C) image has 1-4 "
            f"(is it (C, H, W)? transpose it)"
        )
    if min(img.shape[:2]) < 1:
        raise ValueError(f"{name} is empty: shape {img.shape}")
    if img.dtype == np.uint8:
        return img.astype(np.float64) / 255.0
    if img.dtype == bool or not np.issubdtype(img.dtype, np.number):
        raise ValueError(f"{name} must hold numbers (uint8 or float), got dtype {img.dtype}")
    img = img.astype(np.float64)
    if not np.all(np.isfinite(img)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return img


def to_nchw(img: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) -> (1, C, H, W) for numcnn.ops."""
    return (img[None, None] if img.ndim == 2 else img.transpose(2, 0, 1)[None]).copy()


def from_nchw(x: np.ndarray, like: np.ndarray) -> np.ndarray:
    """(1, C, H, W) -> the layout of `like` ((H, W) or (H, W, C))."""
    return x[0, 0] if like.ndim == 2 else x[0].transpose(1, 2, 0)


def to_grayscale(img) -> np.ndarray:
    """Luma by ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B (a grayscale image is returned as float)."""
    img = as_float_image(img)
    if img.ndim == 2:
        return img
    if img.shape[2] == 1:
        return img[..., 0]
    if img.shape[2] < 3:
        raise ValueError(f"to_grayscale needs RGB(A) images, got {img.shape[2]} channels")
    return img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114


def gamma_correct(img, gamma: float, alpha: float = 1.0) -> np.ndarray:
    """v' = alpha * v**gamma on a [0, 1] image: gamma > 1 darkens mid-tones, gamma < 1 brightens."""
    img = as_float_image(img)
    if not (np.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be a positive finite number, got {gamma!r}")
    if not np.isfinite(alpha):
        raise ValueError(f"alpha must be a finite number, got {alpha!r}")
    if img.min() < 0 or img.max() > 1:
        raise ValueError(f"gamma_correct needs values in [0, 1] (or uint8), got [{img.min():.3g}, {img.max():.3g}]")
    return alpha * img**gamma
