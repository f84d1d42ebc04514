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
# # Inside a ResNet trained on CIFAR-10
#
# This notebook trains He et al.'s ResNet-20 on CIFAR-10 with numcnn and then looks inside it: the filters of
# its first layer, what one image becomes on its way through the three stages, which classes it confuses, and
# the test images it gets most wrong.
#
# **Sizes.** Run as a notebook it trains the full-width network (16, 32 and 64 channels) for `EPOCHS = 5`
# epochs on 45,000 images: about five minutes an epoch on two cores (numcnn's ResNet-20 trains at 150-175
# images a second on the 2-core machine of BENCHMARKS.md), for a test accuracy far above chance but well short
# of the 91% that 160 epochs give. Built for the site or by the test suite (`NUMCNN_DOCS_SHORT=1`) it trains a
# network four times narrower for one epoch on 512 images, which takes seconds and learns little: the pictures
# then show an almost untrained network, and the checks below are those that hold for any network.
#
# **Data.** CIFAR-10 is read from numcnn's data folder (`$NUMCNN_DATA`, else `~/.cache/numcnn`) by
# `numcnn.data.load_cifar10`, in any of its layouts. Nothing is downloaded unless you set `DOWNLOAD = True`
# below (about 170 MB, checked against its published MD5). Without CIFAR-10 the notebook falls back to
# scikit-learn's 8x8 handwritten digits, so that it still runs.

# %%
import numcnn  # before NumPy: it sets how long OpenBLAS's idle threads spin, read when NumPy loads

# isort: split
# %matplotlib inline
import os
import time

import matplotlib.pyplot as plt
import numpy as np

from numcnn import data, models, nn, viz
from numcnn.models import Classifier
from numcnn.train import Solver, schedules
from numcnn.train.tricks import tta_scores

SHORT = os.environ.get("NUMCNN_DOCS_SHORT") == "1"  # seconds, not hours: the site's build and the tests
DOWNLOAD = False  # True: fetch CIFAR-10 into numcnn's data folder if it is not there
EPOCHS, WIDTH = (1, 4) if SHORT else (5, 16)
print("numcnn", numcnn.__version__, "| short build" if SHORT else "| full size", f"| {EPOCHS} epochs, width {WIDTH}")

# %% [markdown]
# ## The data
#
# `load_cifar10` returns uint8 images `(N, 32, 32, 3)`, int64 labels and the class names. A tenth of the
# training images is held out for validation (in the short build: 512 to train on, 128 to validate, and the
# first 256 test images). `to_float_nchw` scales the pixels to $[0, 1]$ and moves the channels first; each
# channel is then standardized with the training images' mean and standard deviation.

# %%
try:
    X_train_raw, y_train_raw, X_test_raw, y_test, classes = data.load_cifar10(download=DOWNLOAD)
    DATASET = "cifar10"
except data.DatasetNotFound as missing:
    print(f"CIFAR-10 is not here ({str(missing).split(':')[0]}): using scikit-learn's digits instead")
    X_train_raw, y_train_raw, X_test_raw, y_test, classes = data.load_digits()
    DATASET = "digits"

if SHORT:
    X_train_raw, y_train_raw = X_train_raw[:640], y_train_raw[:640]
    X_test_raw, y_test = X_test_raw[:256], y_test[:256]
X_train_raw, y_train, X_val_raw, y_val = data.train_val_split(X_train_raw, y_train_raw, 0.2 if SHORT else 0.1, seed=0)

X_train, X_val, X_test = (data.to_float_nchw(X) for X in (X_train_raw, X_val_raw, X_test_raw))
mean, std = data.channel_stats(X_train)
normalize = data.Normalize(mean, std)
X_train, X_val, X_test = normalize(X_train), normalize(X_val), normalize(X_test)
print(f"{DATASET}: train {X_train.shape}, val {X_val.shape}, test {X_test.shape}; classes {classes}")

show = X_train_raw[:8].squeeze()
fig, axes = plt.subplots(1, 8, figsize=(12, 1.9))
for ax, image, label in zip(axes, show, y_train[:8]):
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
    ax.set_title(classes[label], fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## The network
#
# ResNet-20 for CIFAR (He et al., 2016, section 4.2): a 3x3 convolution with batch norm and ReLU, then three
# stages of three residual blocks each, at 32x32, 16x16 and 8x8 resolution with 16, 32 and 64 channels (the
# first block of stages 2 and 3 strides by 2 and projects its shortcut with a 1x1 convolution), then global
# average pooling and one linear layer. `models.build("resnet20")` makes it; `widths` scales the stages.

# %%
nn.manual_seed(0)
net = models.build(
    "resnet20", num_classes=len(classes), in_channels=X_train.shape[1], widths=(WIDTH, 2 * WIDTH, 4 * WIDTH)
)
for name, module in net.named_children():
    count = sum(p.size for _, p in module.named_parameters())
    print(f"{name:8} {type(module).__name__:16} {count:7,} parameters")
model = Classifier(net, reg=5e-4)  # the Solver's protocol; L2 on conv and linear weights
total = sum(p.size for p in model.params.values())
print(f"{total:,} parameters in all")
assert len([m for _, m in net.named_modules() if isinstance(m, nn.Conv2d)]) == 19 + 2  # 19 3x3 + 2 projections

# %% [markdown]
# ## Training
#
# SGD with Nesterov momentum 0.9, learning rate 0.1 warmed up linearly over the first epoch (half of it when
# there is only one) and then brought down to 0 along a cosine, batches of 64, weight decay $5 \cdot 10^{-4}$
# as an L2 term, and the usual augmentation for CIFAR: random crops of the image padded by 4 pixels, and
# horizontal flips (not for digits, where a flip changes the digit). The Solver evaluates on the validation
# images after the first step and after each epoch, and ends with the weights of the best evaluation.

# %%
_, H, W = X_train.shape[1:]
augment = [data.RandomCrop((H, W), padding=max(1, H // 8))] + (
    [data.RandomHorizontalFlip()] if DATASET == "cifar10" else []
)
solver = Solver(
    model,
    {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val},
    update_rule="nesterov",
    optim_config={"learning_rate": 0.1},
    schedule=schedules.warmup(min(1.0, EPOCHS / 2), EPOCHS, "cosine"),
    augment=data.Compose(augment),
    batch_size=64,
    num_epochs=EPOCHS,
    num_train_samples=1000,
    seed=0,
    verbose=not SHORT,
)
started = time.perf_counter()
solver.train()
seconds = time.perf_counter() - started
print(
    f"{solver.step} steps in {seconds:.0f} s ({solver.step * 64 / seconds:.0f} images/s); "
    f"best validation accuracy {solver.best_val_acc:.3f}"
)
assert np.isfinite(solver.loss_history).all()
assert np.mean(solver.loss_history[-3:]) < solver.loss_history[0]  # it learned something, even in seconds
viz.plot_history(solver)

# %% [markdown]
# ## The first layer's filters
#
# The stem's `WIDTH` filters have shape `(3, 3, 3)`: 3x3 pixels over the three colour channels, each scaled to
# the full grey range on its own and shown as a colour image. A network trained for long enough has, in its
# first layer, detectors of edges and colour contrasts; after a few seconds of training they still look
# like the random initialization. With 3x3 filters there is little room for the Gabor-like patterns that
# AlexNet's 11x11 filters show; look for colour-opponent pairs and oriented differences between neighbours.

# %%
first = model.params["stem.0.weight"]  # (WIDTH, C, 3, 3)
print("first-layer weights:", first.shape)
assert first.shape == (WIDTH, X_train.shape[1], 3, 3)
viz.plot_filters(first, title=f"stem: {WIDTH} filters of 3x3")

# %% [markdown]
# ## One image through the network
#
# `viz.plot_feature_maps` runs one image through the network in evaluation mode and shows the first eight
# channels after each top-level part: the stem, each of the three stages, and the global pooling. The
# resolution halves at stages 2 and 3 while the channels double: the maps trade where for what.

# %%
index = 0
print(f"test image {index}: {classes[y_test[index]]}")
maps = viz.feature_maps(net, X_test[index])
for name, activations in maps:
    print(f"{name:28} {activations.shape}")
shapes = {name.split()[0]: activations.shape for name, activations in maps}
side = X_train.shape[2]
assert shapes["stem"] == (WIDTH, side, side) and shapes["stage1"] == (WIDTH, side, side)
assert shapes["stage2"] == (2 * WIDTH, side // 2, side // 2) and shapes["stage3"] == (4 * WIDTH, side // 4, side // 4)

fig, ax = plt.subplots(figsize=(2, 2))
ax.imshow(X_test_raw[index].squeeze(), cmap="gray" if X_test_raw.shape[-1] == 1 else None)
ax.set_title(classes[y_test[index]])
ax.axis("off")
plt.show()
viz.plot_feature_maps(net, X_test[index])

# %% [markdown]
# ## What it confuses
#
# The confusion matrix counts, for each true class (a row), how often each class was predicted (a column);
# rows are normalized to sum to 1, so the diagonal is each class's recall. On CIFAR-10 the usual mistakes are
# between the animals (cats and dogs above all) and between the two kinds of vehicles on the road.

# %%
scores = tta_scores(model, X_test, "none")  # (N, classes) in evaluation mode, in batches
predicted = scores.argmax(axis=1)
accuracy = np.mean(predicted == y_test)
counts = viz.confusion_matrix(y_test, predicted, len(classes))
print(f"test accuracy {accuracy:.3f} on {len(y_test)} images")
assert counts.sum() == len(y_test) and (counts.sum(axis=1) == np.bincount(y_test, minlength=len(classes))).all()
assert np.trace(counts) / counts.sum() == accuracy
assert solver.check_accuracy(X_test, y_test) == accuracy  # the Solver's own count agrees
if not SHORT:  # five epochs of ResNet-20: far above chance (10%)
    assert accuracy > {"cifar10": 0.5, "digits": 0.9}[DATASET]
viz.plot_confusion_matrix(counts, classes)

# %% [markdown]
# ## The worst-classified test images
#
# The loss of one image is $-\log p_y$, the negative log of the probability the network gives its true class
# $y$, from the softmax of its scores $s$:
#
# $$ \ell = -\log \frac{e^{s_y}}{\sum_j e^{s_j}} = \log \sum_j e^{s_j} - s_y . $$
#
# The images with the highest loss are those the network is most confidently wrong about. Often the label is
# defensible but the picture is unusual: an odd angle, a close crop, an object on a background that belongs to
# another class.

# %%
shifted = scores - scores.max(axis=1, keepdims=True)  # the same softmax, without overflow
log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
losses = -log_probs[np.arange(len(y_test)), y_test]
worst = np.argsort(losses)[::-1][:12]
probs = np.exp(log_probs)
assert (losses[worst] >= np.delete(losses, worst).max()).all()  # the 12 highest
assert abs(losses.mean() - (-np.mean(log_probs[np.arange(len(y_test)), y_test]))) < 1e-12

fig, axes = plt.subplots(2, 6, figsize=(12, 5))
for ax, i in zip(axes.ravel(), worst):
    ax.imshow(X_test_raw[i].squeeze(), cmap="gray" if X_test_raw.shape[-1] == 1 else None)
    ax.set_title(
        f"true: {classes[y_test[i]]} ({probs[i, y_test[i]]:.2f})\n"
        f"said: {classes[predicted[i]]} ({probs[i, predicted[i]]:.2f})\nloss {losses[i]:.2f}",
        fontsize=8,
    )
    ax.axis("off")
fig.suptitle("Highest-loss test images: the true class and the prediction, with their probabilities")
plt.show()

# %% [markdown]
# ## Where to go from here
#
# - `numcnn train --model resnet20 --dataset cifar10 --epochs 30 ...` (see the README) trains the same network
#   from the command line with checkpoints, resume and the same pictures; `examples/resnet_cifar10.py` does it
#   from Python.
# - [Batch norm and a residual block](../batchnorm_residual/) builds the pieces of this network by hand.
# - [Convolution as image processing](../image_processing/) shows what hand-made filters do, for comparison
#   with the learned ones above.
