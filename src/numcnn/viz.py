"""Pictures of training: filter grids, training curves, feature maps, confusion matrices.

Every plotting function builds a matplotlib Figure directly (no pyplot, so
no global state and no display needed), returns it, and writes a PNG when
given `path`. visualize_grid is the assignment's and returns an image array.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


def new_figure(width: float, height: float):
    """A matplotlib Figure of width x height inches (100 dpi, constrained layout), without pyplot."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("numcnn.viz draws with matplotlib: pip install matplotlib") from None
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def finish_figure(figure, path):
    """Write figure as a PNG at path (parent folders made) when path is not None; return figure."""
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path)
    return figure


def visualize_grid(Xs, ubound=255.0, padding=1) -> np.ndarray:
    """Tile images (N, H, W, C) into one grid image, each scaled to [0, ubound] (CS231n's)."""
    Xs = np.asarray(Xs, dtype=float)
    N, H, W, C = Xs.shape
    grid_size = int(math.ceil(math.sqrt(N)))
    grid_height = H * grid_size + padding * (grid_size - 1)
    grid_width = W * grid_size + padding * (grid_size - 1)
    grid = np.zeros((grid_height, grid_width, C))
    for n in range(N):
        row, col = divmod(n, grid_size)
        image = Xs[n]
        low, high = image.min(), image.max()
        top, left = row * (H + padding), col * (W + padding)
        grid[top : top + H, left : left + W] = ubound * (image - low) / (high - low) if high > low else 0.0
    return grid


def vis_grid(Xs) -> np.ndarray:
    """CS231n's vis_grid: a grid of (N, H, W, C) images with 1-pixel borders, unscaled."""
    Xs = np.asarray(Xs, dtype=float)
    N, H, W, C = Xs.shape
    A = int(math.ceil(math.sqrt(N)))
    G = np.ones((A * H + A, A * W + A, C), Xs.dtype) * np.min(Xs)
    for n in range(N):
        y, x = divmod(n, A)
        G[y * H + y : (y + 1) * H + y, x * W + x : (x + 1) * W + x] = Xs[n]
    maxg, ming = G.max(), G.min()
    return (G - ming) / (maxg - ming) if maxg > ming else G


def vis_nn(rows) -> np.ndarray:
    """CS231n's vis_nn: a grid from a list of rows of (H, W, C) images."""
    N, D = len(rows), len(rows[0])
    H, W, C = rows[0][0].shape
    Xs = rows[0][0]
    G = np.ones((N * H + N, D * W + D, C), Xs.dtype)
    for y in range(N):
        for x in range(D):
            G[y * H + y : (y + 1) * H + y, x * W + x : (x + 1) * W + x] = rows[y][x]
    maxg, ming = G.max(), G.min()
    return (G - ming) / (maxg - ming) if maxg > ming else G


def _show(axes, image: np.ndarray, title: str | None = None):
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    axes.imshow(image.astype(np.uint8) if image.max() > 1.0 else image, cmap="gray", interpolation="nearest", vmin=0)
    axes.axis("off")
    if title:
        axes.set_title(title)


def filter_images(weights) -> np.ndarray:
    """Convolution filters w (F, C, KH, KW) as images (F, KH, KW, 3) in colour for C = 3, else
    (F, KH, KW, 1): the mean over the channels, in gray. visualize_grid tiles them."""
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 4:
        raise ValueError(f"weights must have shape (F, C, KH, KW), got {weights.shape}")
    return weights.transpose(0, 2, 3, 1) if weights.shape[1] == 3 else weights.mean(axis=1)[..., None]


def plot_filters(weights, path=None, title: str = "first-layer filters"):
    """A grid of convolution filters w (F, C, KH, KW): colour for C = 3, gray otherwise."""
    figure = new_figure(5, 5)
    _show(figure.add_subplot(1, 1, 1), visualize_grid(filter_images(weights)), title)
    return finish_figure(figure, path)


def _history(history):
    """(loss per step, train acc per evaluation, val acc per evaluation) from a Solver or a metrics log."""
    if hasattr(history, "loss_history"):
        return list(history.loss_history), list(history.train_acc_history), list(history.val_acc_history)
    if isinstance(history, (str, Path)):
        history = [json.loads(line) for line in Path(history).read_text().splitlines() if line.strip()]
    records = list(history)
    return ([r["loss"] for r in records], [r["train_acc"] for r in records], [r["val_acc"] for r in records])


def plot_history(history, path=None):
    """The assignment's three panels: training loss, training accuracy, validation accuracy.

    history: a Solver, a list of metrics records, or the path of a metrics.jsonl.
    """
    losses, train_acc, val_acc = _history(history)
    figure = new_figure(8, 9)
    panels = figure.subplots(3, 1)
    panels[0].plot(losses, "o", markersize=2 if len(losses) > 100 else 4)
    panels[0].set(title="Training loss", xlabel="Iteration" if hasattr(history, "loss_history") else "Epoch")
    panels[1].plot(train_acc, "-o", label="train")
    panels[1].set(title="Training accuracy", xlabel="Epoch")
    panels[2].plot(val_acc, "-o", label="val", color="tab:orange")
    panels[2].set(title="Validation accuracy", xlabel="Epoch")
    for panel in panels:
        panel.grid(alpha=0.3)
    return finish_figure(figure, path)


def feature_maps(net, image) -> list[tuple[str, np.ndarray]]:
    """Activations (C, H, W) of every 4-d output along a Sequential network, for one image (C, H, W)."""
    net = getattr(net, "net", net)
    was_training = net.training
    net.eval()
    x = np.asarray(image, dtype=np.float32)[None]
    maps = []
    try:
        for name, module in net.named_children():
            x = module(x)
            if x.ndim == 4:
                maps.append((f"{name} ({type(module).__name__})", np.asarray(x[0])))
    finally:
        net.train(was_training)
    return maps


def plot_feature_maps(net, image, path=None, channels: int = 8):
    """The first `channels` maps of each stage of a network, one row per stage."""
    maps = feature_maps(net, image)
    if not maps:
        raise ValueError("the network has no stage with (N, C, H, W) output to show")
    figure = new_figure(1.4 * channels, 1.5 * len(maps) + 0.5)
    grid = figure.subplots(len(maps), channels, squeeze=False)
    for row, (name, activations) in enumerate(maps):
        for col in range(channels):
            axes = grid[row, col]
            axes.axis("off")
            if col < len(activations):
                axes.imshow(activations[col], cmap="viridis", interpolation="nearest")
        grid[row, 0].set_title(name, loc="left", fontsize=8)
    return finish_figure(figure, path)


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """counts[i, j]: how many samples of class i were predicted as j."""
    counts = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(counts, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return counts


def plot_confusion_matrix(counts, classes=None, path=None, normalize: bool = True):
    """A heat map of a confusion matrix, rows normalized to recall when normalize."""
    counts = np.asarray(counts)
    k = counts.shape[0]
    classes = list(classes) if classes is not None else [str(i) for i in range(k)]
    shown = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalize else counts
    figure = new_figure(1.0 + 0.55 * k, 0.8 + 0.5 * k)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    axes.set_xticks(range(k), classes, rotation=45, ha="right")
    axes.set_yticks(range(k), classes)
    axes.set(xlabel="predicted", ylabel="true", title="confusion matrix" + (" (row-normalized)" if normalize else ""))
    for i in range(k):
        for j in range(k):
            value = f"{shown[i, j]:.2f}" if normalize else str(shown[i, j])
            axes.text(
                j,
                i,
                value,
                ha="center",
                va="center",
                fontsize=7,
                color="white" if shown[i, j] > 0.6 * shown.max() else "black",
            )
    figure.colorbar(image, ax=axes, shrink=0.8)
    return finish_figure(figure, path)
