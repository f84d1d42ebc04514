"""numcnn.vision: classical image processing built on numcnn's convolution.

    to_grayscale, gamma_correct                      pixel operations
    convolve, correlate, sobel, gaussian_kernel,     linear filters (ops.conv2d underneath)
    gaussian_blur, laplacian_of_gaussian, difference_of_gaussians
    gaussian_pyramid, laplacian_pyramid, reconstruct pyramids (exact reconstruction)
    dog_keypoints                                    SIFT's first stage
    fft_filter, fft_magnitude                        frequency-domain filters

Images are (H, W) or (H, W, C), uint8 (scaled to [0, 1]) or float; results
are float64.

Side room: may import numpy and numcnn.ops (the convolution); nothing above
ops, and nothing in ops, nn or models imports vision.
"""

from .filters import (
    convolve,
    correlate,
    difference_of_gaussians,
    gaussian_blur,
    gaussian_kernel,
    laplacian_of_gaussian,
    sobel,
)
from .fourier import fft_filter, fft_magnitude
from .image import as_float_image, gamma_correct, to_grayscale
from .keypoints import dog_keypoints
from .pyramids import gaussian_pyramid, laplacian_pyramid, reconstruct, resize

__all__ = [
    "to_grayscale",
    "gamma_correct",
    "convolve",
    "correlate",
    "sobel",
    "gaussian_kernel",
    "gaussian_blur",
    "laplacian_of_gaussian",
    "difference_of_gaussians",
    "gaussian_pyramid",
    "laplacian_pyramid",
    "reconstruct",
    "resize",
    "dog_keypoints",
    "fft_filter",
    "fft_magnitude",
    "as_float_image",
]
