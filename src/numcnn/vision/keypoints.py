"""SIFT's first stage: difference-of-Gaussian keypoints (Lowe 2004, sections 3-4).

In each octave the image is blurred to sigma_k = sigma0 * 2**(k/s), k =
0..s+2; neighbouring blurs are subtracted (DoG, an approximation of the
scale-normalized Laplacian of Gaussian); a pixel whose DoG value is larger
(or smaller) than its 26 neighbours in space and scale, beyond the contrast
threshold, and not on an edge (principal-curvature ratio of the 2x2
Hessian below r) is a keypoint. The next octave starts from the blur at
2*sigma0, halved. Keypoints are returned as (row, col, sigma) in the input
image's coordinates, sigma in pixels of the input.
"""

from __future__ import annotations

import numpy as np

from .filters import gaussian_blur
from .image import as_float_image, to_grayscale


def _extrema(dog: np.ndarray, threshold: float) -> np.ndarray:
    """(scale, row, col) of interior points that beat all 26 neighbours, |D| > threshold."""
    from numpy.lib.stride_tricks import sliding_window_view

    cubes = sliding_window_view(dog, (3, 3, 3))  # (S-2, H-2, W-2, 3, 3, 3)
    centre = dog[1:-1, 1:-1, 1:-1]
    flat = cubes.reshape(cubes.shape[:3] + (27,))
    others = np.delete(flat, 13, axis=3)
    is_max = centre > others.max(axis=3)
    is_min = centre < others.min(axis=3)
    found = (is_max | is_min) & (np.abs(centre) > threshold)
    return np.argwhere(found) + 1


def dog_keypoints(
    img,
    sigma0: float = 1.6,
    scales: int = 3,
    octaves: int | None = None,
    contrast_threshold: float = 0.03,
    edge_ratio: float = 10.0,
) -> list[tuple[float, float, float]]:
    """Keypoints (row, col, sigma) of a grayscale or colour image (values in [0, 1] or uint8).

    contrast_threshold applies to |DoG| (Lowe's 0.03 for [0, 1] images, with
    OpenCV's refinement of dividing by the number of scales); edge_ratio is r.
    """
    gray = to_grayscale(as_float_image(img))
    if octaves is None:
        octaves = max(1, int(np.log2(min(gray.shape))) - 3)
    k = 2.0 ** (1.0 / scales)
    threshold = contrast_threshold / scales
    keypoints = []
    base, factor = gaussian_blur(gray, sigma0), 1.0
    for _ in range(octaves):
        if min(base.shape) < 8:
            break
        sigmas = [sigma0 * k**i for i in range(scales + 3)]
        blurred = [base] + [gaussian_blur(base, np.sqrt(s * s - sigma0 * sigma0)) for s in sigmas[1:]]
        dog = np.stack([b - a for a, b in zip(blurred, blurred[1:])])
        for scale, row, col in _extrema(dog, threshold):
            d = dog[scale]
            dxx = d[row, col + 1] + d[row, col - 1] - 2 * d[row, col]
            dyy = d[row + 1, col] + d[row - 1, col] - 2 * d[row, col]
            dxy = (d[row + 1, col + 1] - d[row + 1, col - 1] - d[row - 1, col + 1] + d[row - 1, col - 1]) / 4
            trace, det = dxx + dyy, dxx * dyy - dxy * dxy
            if det <= 0 or trace * trace / det >= (edge_ratio + 1) ** 2 / edge_ratio:
                continue  # an edge, or a saddle: poorly localized
            keypoints.append((row * factor, col * factor, sigmas[scale] * factor))
        base = blurred[scales][::2, ::2]  # the blur at 2*sigma0, halved
        factor *= 2.0
    return keypoints
