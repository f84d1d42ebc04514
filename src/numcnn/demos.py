"""Image processing with a CNN's convolution: the CS231n notebook's demo, on real photos.

Two filters written by hand as conv weights (3 input channels, 3x3):

    grayscale   0.3 R + 0.6 G + 0.1 B at the centre tap
    edges       [[1, 2, 1], [0, 0, 0], [-1, -2, -1]] on the blue channel (a horizontal
                Sobel filter), with bias 128 so that nothing is negative

applied with numcnn.ops.conv2d_forward (stride 1, pad 1) to two bundled
photos, shown as the notebook's 2 x 3 figure: originals, grayscale, edges.
"""

from __future__ import annotations

import numpy as np

from . import ops
from .viz import finish_figure, new_figure

IMAGE_SIZE = 200


def demo_filters() -> tuple[np.ndarray, np.ndarray]:
    """The notebook's weights w (2, 3, 3, 3) and bias b (2,)."""
    w = np.zeros((2, 3, 3, 3))
    w[0, 0, 1, 1], w[0, 1, 1, 1], w[0, 2, 1, 1] = 0.3, 0.6, 0.1
    w[1, 2] = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]
    return w, np.array([0.0, 128.0])


def bundled_photos(size: int = IMAGE_SIZE) -> list[np.ndarray]:
    """Two photos shipped with scikit-learn (or scikit-image's cat), centre-cropped square, resized."""
    from PIL import Image

    photos = []
    try:
        from sklearn.datasets import load_sample_images

        photos = list(load_sample_images().images)
    except ImportError:
        try:
            from skimage import data as skdata

            photos = [skdata.chelsea(), skdata.astronaut()]
        except ImportError:
            raise ImportError(
                "the demo's photos come with scikit-learn or scikit-image: pip install scikit-learn"
            ) from None
    squares = []
    for photo in photos[:2]:
        h, w = photo.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        crop = photo[top : top + side, left : left + side]
        squares.append(np.asarray(Image.fromarray(crop).resize((size, size), Image.BILINEAR)))
    return squares


def convolve_photos(photos) -> np.ndarray:
    """out (N, 2, H, W): grayscale and edge maps of photos (N, H, W, 3) by conv2d."""
    x = np.stack([p.transpose(2, 0, 1) for p in photos]).astype(np.float64)
    w, b = demo_filters()
    out, _ = ops.conv2d_forward(x, w, b, stride=1, pad=1)
    return np.ascontiguousarray(out)


def _normalized(image: np.ndarray) -> np.ndarray:
    """Scaled to 0..255 for display, as the notebook's imshow_no_ax does."""
    low, high = image.min(), image.max()
    return (255.0 * (image - low) / (high - low)).astype(np.uint8) if high > low else np.zeros_like(image, np.uint8)


def convolution_demo(path=None):
    """The 2 x 3 figure; returns (figure, conv output)."""
    photos = bundled_photos()
    out = convolve_photos(photos)
    figure = new_figure(9, 6)
    for row, photo in enumerate(photos):
        for col, (image, title) in enumerate(
            ((photo, "Original image"), (_normalized(out[row, 0]), "Grayscale"), (_normalized(out[row, 1]), "Edges"))
        ):
            axes = figure.add_subplot(2, 3, 3 * row + col + 1)
            axes.imshow(image, cmap="gray" if image.ndim == 2 else None)
            axes.axis("off")
            if row == 0:
                axes.set_title(title)
    finish_figure(figure, path)
    return figure, out


def _load_photo(path, width: int = 320) -> np.ndarray:
    """An image file (or scikit-learn's first sample photo) as uint8 RGB, `width` pixels wide."""
    from PIL import Image

    if path is None:
        image = Image.fromarray(bundled_photos(size=640)[0])
    else:
        try:
            image = Image.open(path).convert("RGB")
        except (OSError, ValueError) as error:
            from .data import DataError

            raise DataError(f"{path}: not a readable image ({error})") from None
    height = max(1, round(image.height * width / image.width))
    return np.asarray(image.resize((width, height), Image.BILINEAR))


def _side_by_side(levels) -> np.ndarray:
    """Pyramid levels next to each other on one canvas, top-aligned."""
    height = levels[0].shape[0]
    canvas = np.ones((height, sum(level.shape[1] for level in levels)) + levels[0].shape[2:])
    left = 0
    for level in levels:
        canvas[: level.shape[0], left : left + level.shape[1]] = level
        left += level.shape[1]
    return canvas


def vision_demo(image_path=None, path=None):
    """One figure of numcnn.vision on a photo; returns (figure, keypoints)."""
    from matplotlib.patches import Circle

    from . import vision

    photo = _load_photo(image_path)
    gray = vision.to_grayscale(photo)
    _, _, magnitude, _ = vision.sobel(gray)
    keypoints = vision.dog_keypoints(gray, contrast_threshold=0.04)
    panels = [
        (photo, "original"),
        (gray, "grayscale (ITU-R 601)"),
        (vision.gamma_correct(photo, 2.2), "gamma 2.2"),
        (magnitude / magnitude.max(), "Sobel magnitude"),
        (vision.gaussian_blur(photo, 3.0), "Gaussian blur, sigma 3"),
        (photo, f"DoG keypoints ({len(keypoints)})"),
        (_side_by_side(vision.gaussian_pyramid(gray, 3)), "Gaussian pyramid"),
        (np.clip(vision.fft_filter(gray, 0.05, "lowpass", "gaussian"), 0, 1), "low-pass (FFT, 0.05 cycles/px)"),
        (vision.fft_filter(gray, 0.05, "highpass", "gaussian") + 0.5, "high-pass (FFT) + 0.5"),
    ]
    figure = new_figure(12, 10)
    for index, (image, title) in enumerate(panels):
        axes = figure.add_subplot(3, 3, index + 1)
        axes.imshow(
            np.clip(image, 0, 1) if image.dtype != np.uint8 else image,
            cmap="gray" if image.ndim == 2 else None,
            vmin=0,
            vmax=1 if image.dtype != np.uint8 else 255,
        )
        axes.set_title(title, fontsize=9)
        axes.axis("off")
        if title.startswith("DoG"):
            for row, col, sigma in keypoints:
                axes.add_patch(Circle((col, row), np.sqrt(2) * sigma, fill=False, color="yellow", linewidth=0.6))
    finish_figure(figure, path)
    return figure, keypoints
