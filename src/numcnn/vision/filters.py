"""Linear filters on numcnn's conv2d: convolution, Sobel, Gaussian blur, LoG, DoG.

A CNN's "convolution" (numcnn.ops.conv2d_forward, torch's conv2d) is really
cross-correlation: out[i, j] = sum_{u,v} k[u, v] * img[i + u, j + v].
Convolution proper flips the kernel: out[i, j] = sum_{u,v} k[u, v] *
img[i - u, j - v]. convolve() flips, then calls conv2d; colour channels are
filtered independently with a grouped (depthwise) convolution.

Borders follow scipy.ndimage's names: 'reflect' (d c b a | a b c d |
d c b a), 'mirror' (d c b | a b c d | c b a), 'nearest', 'wrap', 'constant'.
"""

from __future__ import annotations

import numpy as np

from .. import ops
from .image import as_float_image, from_nchw, to_nchw

BOUNDARIES = {"reflect": "symmetric", "mirror": "reflect", "nearest": "edge", "wrap": "wrap", "constant": "constant"}


def _pad(x: np.ndarray, pads, boundary: str) -> np.ndarray:
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {', '.join(BOUNDARIES)}, got {boundary!r}")
    return np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]), mode=BOUNDARIES[boundary])


def _correlate(img, kernel, mode: str, boundary: str, centre: tuple[int, int]) -> np.ndarray:
    """Cross-correlation by ops.conv2d_forward, kernel tap `centre` over each pixel in mode 'same'."""
    img = as_float_image(img)
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2 or min(kernel.shape) < 1:
        raise ValueError(f"kernel must be a 2-d array, got shape {kernel.shape}")
    if not np.all(np.isfinite(kernel)):
        raise ValueError("kernel holds NaN or infinite values")
    kh, kw = kernel.shape
    x = to_nchw(img)
    if mode == "same":
        x = _pad(x, ((centre[0], kh - 1 - centre[0]), (centre[1], kw - 1 - centre[1])), boundary)
    elif mode == "full":
        x = _pad(x, ((kh - 1, kh - 1), (kw - 1, kw - 1)), "constant")
    elif mode != "valid":
        raise ValueError(f"mode must be 'same', 'valid' or 'full', got {mode!r}")
    if x.shape[2] < kh or x.shape[3] < kw:
        raise ValueError(f"kernel {kernel.shape} is larger than the image {img.shape[:2]} in mode 'valid'")
    C = x.shape[1]
    weights = np.broadcast_to(kernel, (C, 1, kh, kw))  # depthwise: each channel on its own
    out, _ = ops.conv2d_forward(x, weights, None, groups=C)
    return from_nchw(np.ascontiguousarray(out), img)


def convolve(img, kernel, mode: str = "same", boundary: str = "reflect") -> np.ndarray:
    """img (H, W) or (H, W, C) convolved with kernel (kh, kw), by ops.conv2d_forward.

    True convolution: the kernel is flipped in both axes before the
    correlation that ops.conv2d_forward (like every CNN layer) computes;
    correlate() leaves it as it is.

    mode 'same' (the image's size, borders filled by `boundary`; the kernel
    centred as scipy.ndimage.convolve centres it), 'valid' (only where the
    kernel fits) or 'full' (every overlap, zero borders), as in
    scipy.signal.convolve2d.
    """
    flipped = np.asarray(kernel, dtype=np.float64)[::-1, ::-1]
    kh, kw = flipped.shape[:2] if flipped.ndim == 2 else (1, 1)
    return _correlate(img, flipped, mode, boundary, ((kh - 1) // 2, (kw - 1) // 2))


def correlate(img, kernel, mode: str = "same", boundary: str = "reflect") -> np.ndarray:
    """What a CNN layer computes (scipy.ndimage.correlate's centring in mode 'same')."""
    kernel = np.asarray(kernel, dtype=np.float64)
    kh, kw = kernel.shape[:2] if kernel.ndim == 2 else (1, 1)
    return _correlate(img, kernel, mode, boundary, (kh // 2, kw // 2))


SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])  # as a correlation: d/dx


def sobel(img, boundary: str = "reflect"):
    """Sobel gradients of a grayscale image: (gx, gy, magnitude, orientation).

    gx grows with intensity to the right, gy downwards; orientation is
    atan2(gy, gx) in radians. Colour images are converted to grayscale first.
    """
    from .image import to_grayscale

    gray = to_grayscale(img)
    gx = correlate(gray, SOBEL_X, boundary=boundary)
    gy = correlate(gray, SOBEL_X.T, boundary=boundary)
    return gx, gy, np.hypot(gx, gy), np.arctan2(gy, gx)


def gaussian_kernel(sigma: float, radius: int | None = None, order: int = 0) -> np.ndarray:
    """The sampled 1-d Gaussian (order 0) or its second derivative (order 2), as scipy.ndimage builds it.

    radius defaults to int(4 * sigma + 0.5) (scipy's truncate=4); the Gaussian
    is normalized to sum 1.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma!r}")
    radius = int(4.0 * sigma + 0.5) if radius is None else int(radius)
    if radius < 0:
        raise ValueError(f"radius must be at least 0, got {radius}")
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    g /= g.sum()
    if order == 0:
        return g
    if order == 2:
        return g * (x * x - sigma * sigma) / sigma**4
    raise ValueError(f"order must be 0 or 2, got {order}")


def _separable(img, row_kernel, column_kernel, boundary):
    """Filter along columns (vertical kernel) then along rows (horizontal kernel)."""
    once = convolve(img, column_kernel[:, None], boundary=boundary)
    return convolve(once, row_kernel[None, :], boundary=boundary)


def gaussian_blur(img, sigma: float, boundary: str = "reflect") -> np.ndarray:
    """Blur with a Gaussian of standard deviation sigma, as two 1-d convolutions."""
    img = as_float_image(img)
    g = gaussian_kernel(sigma)
    return _separable(img, g, g, boundary)


def laplacian_of_gaussian(img, sigma: float, boundary: str = "reflect") -> np.ndarray:
    """d2/dx2 + d2/dy2 of the image blurred with sigma (scipy.ndimage.gaussian_laplace)."""
    img = as_float_image(img)
    g, d2 = gaussian_kernel(sigma), gaussian_kernel(sigma, order=2)
    return _separable(img, d2, g, boundary) + _separable(img, g, d2, boundary)


def difference_of_gaussians(img, sigmas, boundary: str = "reflect") -> np.ndarray:
    """Band-pass images blur(sigma_i) - blur(sigma_{i+1}) for increasing sigmas: (len(sigmas) - 1, ...)."""
    sigmas = [float(s) for s in sigmas]
    if len(sigmas) < 2 or any(b <= a for a, b in zip(sigmas, sigmas[1:])):
        raise ValueError(f"sigmas must be at least two increasing values, got {sigmas}")
    blurred = [gaussian_blur(img, s, boundary) for s in sigmas]
    return np.stack([a - b for a, b in zip(blurred, blurred[1:])])
