# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Convolution as image processing
#
# A convolutional layer slides small grids of weights over an image and takes a weighted sum at every
# position. Long before CNNs learned their weights, image processing wrote such grids by hand: to blur, to find
# edges, to build multi-scale pyramids, to find keypoints. `numcnn.vision` implements these classical filters
# on top of numcnn's own convolution, `numcnn.ops.conv2d_forward`, so this notebook is also a tour of what a
# convolution can do with weights that nobody trained.
#
# Images here are `(H, W)` grayscale or `(H, W, 3)` colour arrays with values in $[0, 1]$ (uint8 images are
# scaled on the way in), the layout image libraries use; `numcnn.vision` turns them into the `(1, C, H, W)`
# arrays `conv2d_forward` takes. The photo is one of the two that ship with scikit-learn, the ones
# `numcnn demo` uses. Every property claimed below is checked with an `assert`.

# %%
import numcnn  # before NumPy: it sets how long OpenBLAS's idle threads spin, read when NumPy loads

# isort: split
# %matplotlib inline
import os

import matplotlib.pyplot as plt
import numpy as np

from numcnn import ops, vision
from numcnn.demos import bundled_photos

SHORT = os.environ.get("NUMCNN_DOCS_SHORT") == "1"  # a smaller photo: the site's build and the tests
SIZE = 256 if SHORT else 512
print("numcnn", numcnn.__version__, "| short build" if SHORT else "| full size")


def show(images, titles, cmap="gray", size=3.2, **imshow):
    """A row of images with titles, axes hidden."""
    fig, axes = plt.subplots(1, len(images), figsize=(size * len(images), size))
    for ax, image, title in zip(np.atleast_1d(axes), images, titles):
        ax.imshow(image, cmap=cmap, **imshow)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    plt.show()


# %% [markdown]
# ## Pixels: grayscale and gamma
#
# Grayscale is a weighted sum of the three channels at each pixel; ITU-R BT.601's luma weights green most,
# since the eye is most sensitive to it:
#
# $$ Y = 0.299\,R + 0.587\,G + 0.114\,B . $$
#
# That is exactly a convolution with one 1x1 filter over three input channels, a layer with weights of shape
# `(1, 3, 1, 1)`.

# %%
photo = bundled_photos(size=SIZE)[0]  # uint8 (SIZE, SIZE, 3)
gray = vision.to_grayscale(photo)  # float64 (SIZE, SIZE), values in [0, 1]

x = vision.as_float_image(photo).transpose(2, 0, 1)[None]  # (1, 3, H, W)
w = np.array([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)
as_conv, _ = ops.conv2d_forward(x, w, None)
print(
    "photo",
    photo.shape,
    photo.dtype,
    "| gray",
    gray.shape,
    gray.dtype,
    "| max difference from a 1x1 conv:",
    np.abs(as_conv[0, 0] - gray).max(),
)
assert np.abs(as_conv[0, 0] - gray).max() < 1e-12
show([photo, gray], ["photo", "grayscale (BT.601)"], vmin=0, vmax=1)

# %% [markdown]
# Gamma correction maps each value $v \in [0, 1]$ to $v^\gamma$. It keeps black and white where they are:
# $\gamma > 1$ darkens the mid-tones and $\gamma < 1$ brightens them. Cameras store roughly $v^{1/2.2}$ so that
# the 256 levels of a byte are spread evenly for the eye; raising to the power 2.2 undoes that.

# %%
gammas = [0.5, 1.0, 2.2]
corrected = [vision.gamma_correct(photo, g) for g in gammas]
show(corrected, [f"gamma {g}" for g in gammas], vmin=0, vmax=1)
means = [c.mean() for c in corrected]
print("mean value:", {g: round(float(m), 3) for g, m in zip(gammas, means)})
np.testing.assert_array_equal(corrected[1], vision.as_float_image(photo))  # gamma 1 changes nothing
assert means[0] > means[1] > means[2]  # brighter, unchanged, darker
assert vision.gamma_correct(np.array([[0.0, 1.0]]), 2.2).tolist() == [[0.0, 1.0]]

# %% [markdown]
# ## Correlation and convolution
#
# What a CNN layer computes, and what `conv2d_forward` computes, is *cross-correlation*: the kernel $k$ is laid
# over the image as it is,
#
# $$ (k \star I)[i, j] = \sum_{u, v} k[u, v]\, I[i + u, j + v] . $$
#
# Convolution proper flips the kernel first, $(k * I)[i, j] = \sum_{u, v} k[u, v]\, I[i - u, j - v]$, which
# makes it commutative and associative: blurring twice is one blur with the convolved kernels. For a learned
# layer the difference does not matter (it would learn the flipped weights); for hand-written kernels it does.
# The response to a single bright pixel (an impulse) shows it: convolution reproduces the kernel,
# correlation reproduces it upside down.

# %%
impulse = np.zeros((5, 5))
impulse[2, 2] = 1.0
kernel = np.arange(1.0, 10.0).reshape(3, 3)
convolved = vision.convolve(impulse, kernel, boundary="constant")[1:4, 1:4]
correlated = vision.correlate(impulse, kernel, boundary="constant")[1:4, 1:4]
print("kernel:\n", kernel, "\nconvolve(impulse):\n", convolved, "\ncorrelate(impulse):\n", correlated)
np.testing.assert_array_equal(convolved, kernel)
np.testing.assert_array_equal(correlated, kernel[::-1, ::-1])

# %% [markdown]
# ## Edges: the Sobel filter
#
# The Sobel kernels estimate the horizontal and vertical derivatives of the image: a difference across the
# pixel in one direction, smoothed with weights $(1, 2, 1)$ in the other.
#
# $$
# S_x = \begin{pmatrix} -1 & 0 & 1 \\ -2 & 0 & 2 \\ -1 & 0 & 1 \end{pmatrix}, \qquad S_y = S_x^\top, \qquad
# |\nabla I| \approx \sqrt{(S_x \star I)^2 + (S_y \star I)^2} .
# $$
#
# As a layer, that is a convolution with two 3x3 filters over one input channel, weights `(2, 1, 3, 3)`:
# one output channel per derivative. `vision.sobel` pads the border by reflection; doing the same by hand and
# calling `ops.conv2d_forward` gives the same numbers.

# %%
gx, gy, magnitude, orientation = vision.sobel(gray)

S_x = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
weights = np.stack([S_x, S_x.T])[:, None]  # (2, 1, 3, 3): two filters, one input channel
padded = np.pad(gray, 1, mode="symmetric")[None, None]  # (1, 1, H + 2, W + 2), the border reflected
derivatives, _ = ops.conv2d_forward(padded, weights, None)  # (1, 2, H, W)
print(
    "Sobel by conv2d_forward vs vision.sobel:",
    np.abs(derivatives[0, 0] - gx).max(),
    np.abs(derivatives[0, 1] - gy).max(),
)
np.testing.assert_allclose(derivatives[0, 0], gx, atol=1e-12)
np.testing.assert_allclose(derivatives[0, 1], gy, atol=1e-12)

show(
    [gx, gy, magnitude],
    ["d/dx (brighter to the right: white)", "d/dy (brighter downwards: white)", "gradient magnitude"],
)

# %% [markdown]
# On a ramp that brightens by 1 per pixel to the right, $S_x$ gives $1 + 2 + 1 = 4$ times the difference across
# two pixels, 8, and the orientation $\operatorname{atan2}(g_y, g_x)$ points right, 0 radians:

# %%
ramp = np.tile(np.arange(8.0), (8, 1))
ramp_gx, ramp_gy, _, ramp_orientation = vision.sobel(ramp)
print(ramp_gx[3], ramp_orientation[3])
assert np.all(ramp_gx[:, 1:-1] == 8.0) and np.allclose(ramp_gy, 0) and np.allclose(ramp_orientation[:, 1:-1], 0)

# %% [markdown]
# ## Blur: the Gaussian filter
#
# A Gaussian blur averages each pixel with its neighbours, weighted by
# $G_\sigma(u, v) = \frac{1}{2\pi\sigma^2} e^{-(u^2 + v^2) / 2\sigma^2}$, sampled out to $4\sigma$ and normalized
# to sum to 1. The 2-D Gaussian is the product of two 1-D ones, $G_\sigma(u, v) = g_\sigma(u)\, g_\sigma(v)$, so
# the blur is separable: a vertical pass with $g_\sigma$ and then a horizontal one, $2(2r + 1)$ multiply-adds
# per pixel instead of $(2r + 1)^2$. That is what `vision.gaussian_blur` does; the full 2-D kernel gives the
# same image.

# %%
sigmas = [1.0, 2.0, 4.0]
blurred = [vision.gaussian_blur(photo, s) for s in sigmas]
show([photo] + blurred, ["photo"] + [f"Gaussian blur, sigma {s:g}" for s in sigmas], vmin=0, vmax=1)

g = vision.gaussian_kernel(1.0)  # radius int(4 * sigma + 0.5) = 4: 9 taps
full = vision.convolve(gray, np.outer(g, g))  # one 9x9 kernel: 81 multiply-adds per pixel
separable = vision.gaussian_blur(gray, 1.0)  # two passes of 9 taps: 18
print(f"{len(g)} taps, sum {g.sum():.6f}; 2-D kernel vs two 1-D passes: {np.abs(full - separable).max():.1e}")
assert len(g) == 9 and abs(g.sum() - 1) < 1e-12
np.testing.assert_allclose(full, separable, atol=1e-12)

# %% [markdown]
# ## Pyramids
#
# A Gaussian pyramid blurs and halves the image again and again; each level keeps the coarser structure of the
# one before. The blur before each halving removes the detail that the coarser grid could not represent, which
# would otherwise alias into false patterns. (numcnn follows scikit-image's `pyramid_gaussian`: $\sigma = 2/3$,
# then bilinear resampling to half the size.)
#
# A Laplacian pyramid keeps what each halving throws away: level $i$ is Gaussian level $i$ minus level $i + 1$
# expanded back to its size, a band-pass image of the detail at that scale. The coarsest Gaussian level closes
# the pyramid. Since each band is defined as a difference, expanding and adding back up reconstructs the image
# exactly, to rounding, whatever the expansion does; the bands are the image split into scales.

# %%
LEVELS = 4
gaussians = vision.gaussian_pyramid(gray, LEVELS)
laplacians = vision.laplacian_pyramid(gray, LEVELS)
print("Gaussian levels:", [level.shape for level in gaussians])
print("Laplacian levels:", [level.shape for level in laplacians])
reconstructed = vision.reconstruct(laplacians)
print("reconstruction error:", np.abs(reconstructed - gray).max())
assert [level.shape for level in gaussians] == [(SIZE >> i, SIZE >> i) for i in range(LEVELS + 1)]
np.testing.assert_allclose(reconstructed, gray, atol=1e-12)


def side_by_side(levels, fill):
    """Pyramid levels next to each other on one canvas, top-aligned."""
    canvas = np.full((levels[0].shape[0], sum(level.shape[1] for level in levels)), fill)
    left = 0
    for level in levels:
        canvas[: level.shape[0], left : left + level.shape[1]] = level
        left += level.shape[1]
    return canvas


fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5))
top.imshow(side_by_side(gaussians, 1.0), cmap="gray", vmin=0, vmax=1)
top.set_title("Gaussian pyramid")
band_limit = np.percentile(np.abs(laplacians[0]), 99)  # a few extreme pixels would wash out the rest
bottom.imshow(side_by_side(laplacians[:-1], 0.0), cmap="RdBu_r", vmin=-band_limit, vmax=band_limit)
bottom.set_title("Laplacian pyramid: the band-pass levels (red brighter, blue darker than the coarser level)")
for ax in (top, bottom):
    ax.axis("off")
plt.show()

# %% [markdown]
# ## Difference of Gaussians, and keypoints
#
# Subtracting two blurs, $G_{k\sigma} \star I - G_\sigma \star I$, keeps the structure between the two scales:
# a band-pass filter. It is close to the Laplacian of Gaussian, scaled by $\sigma^2$: since
# $\partial G / \partial \sigma = \sigma \nabla^2 G$,
#
# $$ G_{k\sigma} - G_\sigma \approx (k - 1)\,\sigma^2\, \nabla^2 G_\sigma , $$
#
# so the difference of Gaussians (DoG) is a cheap, scale-normalized blob detector. (`difference_of_gaussians`
# returns the finer blur minus the coarser, the negative of the left side.) With $k = 1.6$ the two agree up to
# a correlation of better than 0.99 when the Laplacian is taken at the geometric mean of the two scales:

# %%
k = 1.6
bands = vision.difference_of_gaussians(gray, [1.0, k, k**2, k**3])  # (3, H, W): blur(s_i) - blur(s_i+1)
for i, sigma in enumerate([1.0, k, k**2]):
    log = vision.laplacian_of_gaussian(gray, sigma * np.sqrt(k))
    r = np.corrcoef(bands[i].ravel(), (-(k - 1) * sigma**2 * log).ravel())[0, 1]
    print(f"sigma {sigma:.2f} -> {k * sigma:.2f}: correlation of DoG with (k - 1) sigma^2 LoG = {r:.5f}")
    assert r > 0.99

limit = np.abs(bands).max()
show(list(bands), [f"DoG, sigma {s:.2f} - {k * s:.2f}" for s in [1.0, k, k**2]], cmap="RdBu_r", vmin=-limit, vmax=limit)

# %% [markdown]
# SIFT's first stage (Lowe, 2004) looks for points where the DoG is larger or smaller than all 26 neighbours in
# position and scale, drops those of low contrast and those lying along an edge, and returns each with the scale
# at which it was found. `vision.dog_keypoints` does that; each circle below has the radius $\sqrt 2\,\sigma$ of
# its keypoint.

# %%
keypoints = vision.dog_keypoints(gray, contrast_threshold=0.04)
first = [(float(row), float(col), round(float(sigma), 2)) for row, col, sigma in keypoints[:3]]
print(len(keypoints), "keypoints; the first three (row, col, sigma):", first)
assert len(keypoints) > 10
assert all(0 <= row < SIZE and 0 <= col < SIZE and sigma >= 1.6 for row, col, sigma in keypoints)

fig, ax = plt.subplots(figsize=(6, 6))
ax.imshow(photo)
for row, col, sigma in keypoints:
    ax.add_patch(plt.Circle((col, row), np.sqrt(2) * sigma, fill=False, color="yellow", linewidth=0.7))
ax.set_title(f"DoG keypoints ({len(keypoints)})")
ax.axis("off")
plt.show()

# %% [markdown]
# ## The frequency domain
#
# The 2-D discrete Fourier transform writes the image as a sum of waves. Its magnitude, shown with the zero
# frequency at the centre and on a log scale, has most of its energy at low frequencies (smooth regions); the
# straight edges of the photo show up as lines through the centre, perpendicular to them.
#
# Filtering in the frequency domain multiplies the spectrum by a response $H(f)$ that depends on the radius
# $r = \sqrt{f_x^2 + f_y^2}$ in cycles per pixel: a low-pass keeps $r$ below a cutoff and a high-pass keeps the
# rest, $H_\text{high} = 1 - H_\text{low}$, so the two parts add back up to the image. The *ideal* low-pass
# (a sharp cutoff) rings: its kernel in space is a 2-D cousin of the sinc, $J_1(r)/r$ for a circular cutoff,
# whose ripples show up as halos along edges. The Gaussian low-pass does not ring: a Gaussian's transform is a
# Gaussian, with no ripples.

# %%
spectrum = vision.fft_magnitude(gray)
cutoff = 0.05  # cycles per pixel: waves longer than 20 pixels pass
ideal = vision.fft_filter(gray, cutoff, "lowpass", "ideal")
smooth = vision.fft_filter(gray, cutoff, "lowpass", "gaussian")
high = vision.fft_filter(gray, cutoff, "highpass", "gaussian")
show(
    [spectrum, np.clip(ideal, 0, 1), np.clip(smooth, 0, 1), np.clip(high + 0.5, 0, 1)],
    ["log(1 + |F|)", "ideal low-pass (rings)", "Gaussian low-pass", "Gaussian high-pass + 0.5"],
)
print("low-pass + high-pass vs the image:", np.abs(smooth + high - gray).max())
np.testing.assert_allclose(smooth + high, gray, atol=1e-12)

# %% [markdown]
# The two views of blurring meet: the Fourier transform of a Gaussian of standard deviation $\sigma$ pixels is a
# Gaussian of standard deviation $1 / (2\pi\sigma)$ cycles per pixel. So a Gaussian blur in space (with the
# periodic border the DFT assumes, `boundary="wrap"`) and a Gaussian low-pass with that cutoff are the same
# filter, up to the sampling and truncation of the spatial kernel.

# %%
for sigma in (2.0, 4.0):
    spatial = vision.gaussian_blur(gray, sigma, boundary="wrap")
    spectral = vision.fft_filter(gray, 1 / (2 * np.pi * sigma), "lowpass", "gaussian")
    print(f"sigma {sigma}: max difference {np.abs(spatial - spectral).max():.1e}")
    assert np.abs(spatial - spectral).max() < 1e-4

# %% [markdown]
# ## Where to go from here
#
# - [Classical vision](../../guide/vision/) describes `numcnn.vision`'s functions, their borders and the
#   libraries they are checked against (SciPy, scikit-image); `numcnn demo vision [IMAGE]` draws most of this
#   page for a photo of your own.
# - [Convolution](../../ops/convolution/) is the op underneath, with its maths and its loop version.
# - [Inside a ResNet trained on CIFAR-10](../resnet_inside/) shows the filters a network learns for itself.
