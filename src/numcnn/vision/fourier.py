"""Frequency-domain filters: keep the low frequencies (blur) or the high ones (detail).

Frequencies are in cycles per pixel (0 at the mean, 0.5 at Nyquist along an
axis); a filter's response depends on the radius r = sqrt(fy^2 + fx^2):

    ideal lowpass      1 where r <= cutoff, else 0
    gaussian lowpass   exp(-r^2 / (2 cutoff^2))
    highpass           1 - lowpass

so lowpass + highpass returns the image. Colour channels are filtered
independently.
"""

from __future__ import annotations

import numpy as np

from .image import as_float_image


def _response(shape, cutoff: float, kind: str, profile: str) -> np.ndarray:
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    radius = np.hypot(fy, fx)
    if profile == "ideal":
        low = (radius <= cutoff).astype(np.float64)
    elif profile == "gaussian":
        low = np.exp(-(radius**2) / (2 * cutoff**2))
    else:
        raise ValueError(f"shape must be 'ideal' or 'gaussian', got {profile!r}")
    if kind == "lowpass":
        return low
    if kind == "highpass":
        return 1.0 - low
    raise ValueError(f"kind must be 'lowpass' or 'highpass', got {kind!r}")


def fft_filter(img, cutoff: float, kind: str = "lowpass", shape: str = "ideal") -> np.ndarray:
    """The image with frequencies above (lowpass) or below (highpass) `cutoff` removed."""
    img = as_float_image(img)
    if not 0 < cutoff:
        raise ValueError(f"cutoff must be positive (cycles per pixel, at most ~0.71), got {cutoff!r}")
    response = _response(img.shape[:2], cutoff, kind, shape)
    if img.ndim == 3:
        response = response[..., None]
    spectrum = np.fft.fft2(img, axes=(0, 1))
    return np.real(np.fft.ifft2(spectrum * response, axes=(0, 1)))


def fft_magnitude(img) -> np.ndarray:
    """log(1 + |F|) of a grayscale image's spectrum, zero frequency at the centre, for display."""
    from .image import to_grayscale

    gray = to_grayscale(img)
    return np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(gray))))
