"""numcnn.vision against scipy.ndimage and scikit-image, where they compute the same thing."""

import numpy as np
import pytest

from numcnn import vision

try:
    import scipy.ndimage as scipy_ndimage
except ImportError:
    scipy_ndimage = None
requires_scipy = pytest.mark.skipif(scipy_ndimage is None, reason="scipy is not installed: nothing to compare against")

try:
    from skimage.transform import pyramid_gaussian
except ImportError:
    pyramid_gaussian = None
requires_skimage = pytest.mark.skipif(
    pyramid_gaussian is None, reason="scikit-image is not installed (pip install scikit-image)"
)

RNG = np.random.default_rng(0)
GRAY = RNG.random((23, 31))
COLOUR = RNG.random((20, 17, 3))


def test_grayscale_is_itu_r_601_and_uint8_is_scaled():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    np.testing.assert_allclose(vision.to_grayscale(rgb), [[0.299, 0.587, 0.114]])
    np.testing.assert_array_equal(vision.to_grayscale(GRAY), GRAY)


def test_gamma_correct():
    np.testing.assert_allclose(vision.gamma_correct(np.array([[0.25, 1.0]]), 2.0, alpha=0.5), [[0.03125, 0.5]])
    for gamma, alpha in ((float("nan"), 1.0), (float("inf"), 1.0), (2.0, float("nan"))):
        with pytest.raises(ValueError, match="must be a (positive )?finite number"):
            vision.gamma_correct(np.array([[0.5]]), gamma, alpha)
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        vision.gamma_correct(np.array([[2.0]]), 2.0)


@requires_scipy
@pytest.mark.parametrize("kernel_shape", [(3, 3), (4, 3), (2, 5)])
def test_convolve_and_correlate_match_scipy(kernel_shape):
    kernel = RNG.random(kernel_shape)
    np.testing.assert_allclose(
        vision.convolve(GRAY, kernel), scipy_ndimage.convolve(GRAY, kernel, mode="reflect"), atol=1e-13
    )
    np.testing.assert_allclose(
        vision.correlate(GRAY, kernel), scipy_ndimage.correlate(GRAY, kernel, mode="reflect"), atol=1e-13
    )
    from scipy.signal import convolve2d

    for mode in ("full", "valid"):
        np.testing.assert_allclose(vision.convolve(GRAY, kernel, mode), convolve2d(GRAY, kernel, mode), atol=1e-13)


def test_convolution_flips_the_kernel_and_correlation_does_not():
    impulse = np.zeros((5, 5))
    impulse[2, 2] = 1.0
    kernel = np.arange(9.0).reshape(3, 3)
    np.testing.assert_array_equal(vision.convolve(impulse, kernel, boundary="constant")[1:4, 1:4], kernel)
    np.testing.assert_array_equal(vision.correlate(impulse, kernel, boundary="constant")[1:4, 1:4], kernel[::-1, ::-1])


@requires_scipy
def test_sobel_matches_scipy():
    gx, gy, magnitude, orientation = vision.sobel(GRAY)
    np.testing.assert_allclose(gx, scipy_ndimage.sobel(GRAY, axis=1), atol=1e-13)
    np.testing.assert_allclose(gy, scipy_ndimage.sobel(GRAY, axis=0), atol=1e-13)
    np.testing.assert_allclose(magnitude, np.hypot(gx, gy))
    ramp = np.tile(np.arange(8.0), (8, 1))  # brighter to the right: gx > 0, orientation 0
    gx, gy, _, orientation = vision.sobel(ramp)
    assert np.all(gx[:, 1:-1] == 8.0) and np.allclose(orientation[:, 1:-1], 0.0)


@requires_scipy
@pytest.mark.parametrize("boundary", ["reflect", "mirror", "nearest", "wrap", "constant"])
def test_gaussian_blur_matches_scipy(boundary):
    np.testing.assert_allclose(
        vision.gaussian_blur(GRAY, 1.7, boundary), scipy_ndimage.gaussian_filter(GRAY, 1.7, mode=boundary), atol=1e-14
    )
    np.testing.assert_allclose(
        vision.gaussian_blur(COLOUR, 1.2, boundary),
        scipy_ndimage.gaussian_filter(COLOUR, (1.2, 1.2, 0), mode=boundary),
        atol=1e-14,
    )
    assert vision.gaussian_kernel(2.0).sum() == pytest.approx(1.0) and len(vision.gaussian_kernel(2.0)) == 17


@requires_scipy
def test_laplacian_of_gaussian_matches_scipy():
    np.testing.assert_allclose(
        vision.laplacian_of_gaussian(GRAY, 2.0), scipy_ndimage.gaussian_laplace(GRAY, 2.0), atol=1e-14
    )


@requires_scipy
def test_difference_of_gaussians():
    dog = vision.difference_of_gaussians(GRAY, [1.0, 1.6, 2.56])
    assert dog.shape == (2,) + GRAY.shape
    np.testing.assert_allclose(
        dog[0], scipy_ndimage.gaussian_filter(GRAY, 1.0) - scipy_ndimage.gaussian_filter(GRAY, 1.6), atol=1e-14
    )
    with pytest.raises(ValueError, match="increasing"):
        vision.difference_of_gaussians(GRAY, [2.0, 1.0])


@requires_skimage
@pytest.mark.parametrize("image", [RNG.random((32, 32)), RNG.random((37, 29)), RNG.random((20, 18, 3))])
def test_gaussian_pyramid_matches_skimage(image):
    ours = vision.gaussian_pyramid(image, 3)
    theirs = list(pyramid_gaussian(image, max_layer=3, channel_axis=-1 if image.ndim == 3 else None))
    assert [o.shape for o in ours] == [t.shape for t in theirs]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, atol=1e-13)


@pytest.mark.parametrize("image", [RNG.random((32, 32)), RNG.random((37, 29)), RNG.random((21, 18, 3))])
def test_laplacian_pyramid_reconstructs_exactly(image):
    bands = vision.laplacian_pyramid(image, 3)
    assert len(bands) == 4 and bands[-1].shape[:2] == vision.gaussian_pyramid(image, 3)[-1].shape[:2]
    np.testing.assert_allclose(vision.reconstruct(bands), image, atol=1e-14)


def test_dog_keypoints_find_blobs_of_known_size():
    size = 128
    rows, cols = np.mgrid[:size, :size]
    blobs = [(40, 40, 3.0), (85, 90, 6.0), (30, 100, 4.0)]  # within the detectable scales (sigma0 2**(1/s) and up)
    image = sum(np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * s * s)) for r, c, s in blobs)
    keypoints = vision.dog_keypoints(image)
    for r, c, s in blobs:
        near = [(kr, kc, ks) for kr, kc, ks in keypoints if np.hypot(kr - r, kc - c) <= 1.5]
        assert near, f"no keypoint at the blob ({r}, {c})"
        assert any(0.7 * s <= ks <= 1.3 * s for _, _, ks in near), (s, near)
    flat = np.full((64, 64), 0.5)
    assert vision.dog_keypoints(flat) == []
    edge = np.tile(np.r_[np.zeros(32), np.ones(32)], (64, 1))  # a straight edge: rejected by the edge test
    assert all(abs(c - 32) > 3 for _, c, _ in vision.dog_keypoints(edge))


def test_fft_filters_split_the_image_and_keep_the_right_frequencies():
    for shape in ("ideal", "gaussian"):
        low = vision.fft_filter(COLOUR, 0.1, "lowpass", shape)
        high = vision.fft_filter(COLOUR, 0.1, "highpass", shape)
        np.testing.assert_allclose(low + high, COLOUR, atol=1e-12)
    x = np.arange(64)  # whole periods in the window (3 and 19 cycles): no leakage between frequencies
    slow, fast = np.sin(2 * np.pi * 3 / 64 * x), np.sin(2 * np.pi * 19 / 64 * x)
    image = np.tile(slow + fast, (64, 1))
    np.testing.assert_allclose(vision.fft_filter(image, 0.1, "lowpass")[0], slow, atol=1e-10)
    np.testing.assert_allclose(vision.fft_filter(image, 0.1, "highpass")[0], fast, atol=1e-10)
    magnitude = vision.fft_magnitude(image)
    assert magnitude.shape == (64, 64) and np.unravel_index(magnitude.argmax(), magnitude.shape)[0] == 32


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: vision.gaussian_blur(np.zeros((3, 4, 5, 6)), 1.0), r"must be an \(H, W\) or \(H, W, C\) image"),
        (lambda: vision.sobel(np.zeros((3, 32, 32))), "is it \\(C, H, W\\)\\? transpose it"),
        (lambda: vision.gaussian_blur(np.array([[np.nan, 0.0]]), 1.0), "NaN or infinite"),
        (lambda: vision.gaussian_blur(GRAY, 0.0), "sigma must be positive"),
        (lambda: vision.convolve(GRAY, np.ones((40, 3)), "valid"), "larger than the image"),
        (lambda: vision.fft_filter(GRAY, 0.1, "bandpass"), "kind must be 'lowpass' or 'highpass'"),
        (lambda: vision.gaussian_pyramid(np.zeros((4, 4)), 5), "cannot be halved 5 times"),
    ],
)
def test_bad_inputs_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
