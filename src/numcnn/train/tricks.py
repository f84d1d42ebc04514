"""Training tricks behind fast, accurate CIFAR-10 runs, as reusable parts.

    Lookahead(k, alpha)      every k steps the weights move a fraction alpha from a slow copy
                             towards the fast ones, and training continues from there; alpha
                             may follow training's progress, as airbench's does
    FreezeAfter(pattern, e)  parameters trained for e epochs, then frozen (airbench's whitening bias)
    AlternatingFlip(seed)    a fixed random half of the training images mirrored, and every
                             image mirrored in every other epoch (airbench's flips)
    EMA(decay)               an exponential moving average of the weights, swapped in for
                             every evaluation: best_val_acc, best_params and best.npz are
                             the averaged weights'

Lookahead and EMA keep their state in state_dict() / load_state_dict(), which
the Solver stores in its checkpoints, so a resumed run continues exactly;
FreezeAfter and AlternatingFlip need none (they follow the epoch).
    patch_whitening(w, X)    first-layer filters that whiten image patches (airbench)
    tta_scores(model, X)     class scores averaged over flipped and translated copies

Label smoothing is softmax_loss(..., label_smoothing) (Classifier's
label_smoothing=), warm-up + decay schedules live in numcnn.train.schedules,
Nesterov with decoupled weight decay is optim.nesterov with
decoupled_weight_decay, and frozen or slower parameters are the Solver's
frozen= and lr_scale= options.
"""

from __future__ import annotations

import numpy as np

from .callbacks import Callback


class Lookahead(Callback):
    """Zhang et al. 2019: slow <- slow + alpha * (fast - slow) every k steps; fast <- slow.

    alpha: a number in (0, 1], or a function of training's progress p = step / total steps
    (in [0, 1]) giving one. start_epoch: the slow copy is taken at the first k-th step of
    that epoch (0: the first step). buffers: batch norm's running statistics are averaged
    too. at_epoch_end: after each epoch's last step the fast weights become the slow ones,
    so that every evaluation (and the final model) sees the slow weights.

    airbench94's schedule: Lookahead(5, lambda p: 1 - 0.95**5 * p**3, start_epoch=3,
    buffers=True, at_epoch_end=True): an average that follows the weights closely at
    first and remembers more (about 4.4 of its updates) at the end.
    """

    def __init__(self, k: int = 5, alpha=0.5, start_epoch: int = 0, buffers: bool = False, at_epoch_end: bool = False):
        if k < 1 or not (callable(alpha) or 0.0 < alpha <= 1.0):
            raise ValueError(f"Lookahead needs k >= 1 and 0 < alpha <= 1 (or a function), got k={k}, alpha={alpha}")
        self.k, self.alpha, self.start_epoch = k, alpha, start_epoch
        self.buffers, self.at_epoch_end = buffers, at_epoch_end
        self.slow = None

    def _weights(self, model) -> dict:
        """The arrays averaged: parameters, and with buffers=True the float buffers as 'buffer:NAME'."""
        weights = dict(model.params)
        if self.buffers and getattr(model, "buffers", None) is not None:
            weights.update({f"buffer:{k}": v for k, v in model.buffers.items() if np.asarray(v).dtype.kind == "f"})
        return weights

    def _assign(self, model, name: str, value) -> None:
        if name.startswith("buffer:"):
            model.buffers[name[len("buffer:") :]] = value.astype(model.buffers[name[len("buffer:") :]].dtype)
        else:
            model.params[name] = value.astype(model.params[name].dtype, copy=True)

    def on_step_end(self, solver) -> None:
        model = solver.model
        step_epoch = (solver.step - 1) // solver.batches_per_epoch  # the epoch of the step just taken
        starts = self.start_epoch == 0 or solver.step % self.k == 0  # airbench copies at a k-th step
        if self.slow is None and step_epoch >= self.start_epoch and starts:
            self.slow = {name: np.array(value, copy=True) for name, value in self._weights(model).items()}
            return
        if self.slow is not None and solver.step % self.k == 0:
            total = max(solver.num_epochs * solver.batches_per_epoch, 1)
            alpha = self.alpha(solver.step / total) if callable(self.alpha) else self.alpha
            weights = self._weights(model)
            for name, slow in self.slow.items():
                slow += alpha * (weights[name] - slow)
                self._assign(model, name, slow)
        if self.slow is not None and self.at_epoch_end and solver.step_in_epoch == 0:
            for name, slow in self.slow.items():
                self._assign(model, name, slow)

    def state_dict(self) -> dict:
        """The slow weights (none before the first step)."""
        return {"slow": self.slow}

    def load_state_dict(self, state: dict) -> None:
        slow = state.get("slow")
        self.slow = None if slow is None else {name: np.array(value, copy=True) for name, value in slow.items()}


class FreezeAfter(Callback):
    """Train the parameters matching a glob pattern for `epochs` epochs, then freeze them.

    airbench trains its whitening layer's bias for 3 epochs: FreezeAfter("whiten.bias", 3).
    A resumed run freezes them again when its epoch begins.
    """

    def __init__(self, pattern: str, epochs: int):
        if epochs < 0:
            raise ValueError(f"epochs must be at least 0, got {epochs}")
        self.pattern, self.epochs = pattern, epochs

    def on_epoch_begin(self, solver) -> None:
        if solver.epoch >= self.epochs:
            solver.freeze(self.pattern)


class AlternatingFlip(Callback):
    """airbench's flips: a random half of the training images mirrored once (fixed by seed),
    then the whole set mirrored in every odd epoch, so that each image is seen both ways
    in every two epochs (random flips repeat one side about half the time).

    It mirrors solver.X_train in place, at the start of each epoch that needs it.
    """

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.mirrored = None  # is X_train the mirror of the pre-flipped set now? (None: not pre-flipped yet)

    def on_train_begin(self, solver) -> None:
        if self.mirrored is None:  # a fresh Solver's X_train: pre-flip its fixed half
            half = np.random.default_rng(self.seed).random(len(solver.X_train)) < 0.5
            solver.X_train[half] = solver.X_train[half][..., ::-1]
            self.mirrored = False

    def on_epoch_begin(self, solver) -> None:
        wanted = solver.epoch % 2 == 1
        if wanted != self.mirrored:
            solver.X_train[...] = solver.X_train[..., ::-1].copy()
            self.mirrored = wanted


class EMA(Callback):
    """An exponential moving average of the parameters (and running statistics).

    average <- d * average + (1 - d) * weights after every `every` steps, with
    d = min(decay, (1 + n) / (10 + n)) after n updates: early on, the average
    follows the weights closely instead of remembering the random start.
    swap() exchanges the averaged and the live weights (to evaluate the
    average, then swap back; the Solver does so for every evaluation);
    apply() makes the average the model's.
    """

    def __init__(self, decay: float = 0.999, every: int = 1):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        self.decay, self.every = decay, every
        self.average = None
        self.updates = 0

    def _state(self, model) -> dict:
        state = dict(model.params)
        buffers = getattr(model, "buffers", None)
        if buffers is not None:
            state.update(
                {f"buffer:{k}": v for k, v in buffers.items() if np.issubdtype(np.asarray(v).dtype, np.floating)}
            )
        return state

    def _set(self, model, name, value) -> None:
        if name.startswith("buffer:"):
            model.buffers[name[len("buffer:") :]] = value
        else:
            model.params[name] = value

    def on_step_end(self, solver) -> None:
        state = self._state(solver.model)
        if self.average is None:
            self.average = {name: np.array(value, dtype=np.float64) for name, value in state.items()}
            return
        if solver.step % self.every:
            return
        self.updates += 1
        decay = min(self.decay**self.every, (1 + self.updates) / (10 + self.updates))
        for name, value in state.items():
            self.average[name] *= decay
            self.average[name] += (1.0 - decay) * value

    def state_dict(self) -> dict:
        """The average (none before the first step) and the number of updates, which sets the decay."""
        return {"average": self.average, "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        average = state.get("average")
        self.average = None if average is None else {k: np.array(v, dtype=np.float64) for k, v in average.items()}
        self.updates = int(state["updates"])

    def swap(self, model) -> None:
        """Exchange the live weights with the averaged ones (call twice to undo)."""
        if self.average is None:  # nothing averaged yet: the live weights are the average
            return
        for name, value in self._state(model).items():
            averaged = self.average[name].astype(np.asarray(value).dtype)
            self.average[name] = np.array(value, dtype=np.float64)
            self._set(model, name, averaged)

    def apply(self, model) -> None:
        """Make the averaged weights the model's."""
        for name, value in self._state(model).items():
            self._set(model, name, self.average[name].astype(np.asarray(value).dtype))


def image_patches(X: np.ndarray, size: int) -> np.ndarray:
    """All size x size patches of images (N, C, H, W) as rows (n_patches, C*size*size)."""
    from numpy.lib.stride_tricks import sliding_window_view

    windows = sliding_window_view(X, (size, size), axis=(2, 3))  # (N, C, H', W', s, s)
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(-1, X.shape[1] * size * size)


def patch_whitening(X: np.ndarray, size: int = 2, eps: float = 5e-4) -> np.ndarray:
    """Filters (2*C*size*size, C, size, size) that whiten size x size patches of X (airbench).

    The patch second-moment matrix's eigenvectors, each divided by the square
    root of its eigenvalue (+ eps), and their negatives: a first conv layer
    with these weights maps patches to decorrelated, unit-variance features.
    """
    X = np.asarray(X, dtype=np.float64)
    patches = image_patches(X, size)
    covariance = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    filters = (eigenvectors / np.sqrt(eigenvalues + eps)).T.reshape(-1, X.shape[1], size, size)
    return np.concatenate([filters, -filters])


def tta_scores(model, X: np.ndarray, mode: str = "flip", batch_size: int = 256, shift: int = 2) -> np.ndarray:
    """Class scores averaged over test-time views.

    mode 'none': the images; 'flip': and their mirror images; 'flip-translate':
    also each shifted by `shift` pixels up-left and down-right (edges
    reflected), airbench's six views.
    """
    if mode not in ("none", "flip", "flip-translate"):
        raise ValueError(f"mode must be 'none', 'flip' or 'flip-translate', got {mode!r}")

    def scores(images):
        return np.concatenate([model.loss(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])

    views = [X]
    if mode != "none":
        views.append(X[..., ::-1])
    if mode == "flip-translate":
        padded = np.pad(X, ((0, 0), (0, 0), (shift, shift), (shift, shift)), mode="reflect")
        H, W = X.shape[2:]
        for top, left in ((0, 0), (2 * shift, 2 * shift)):
            moved = padded[:, :, top : top + H, left : left + W]
            views += [moved, moved[..., ::-1]]
    return sum(scores(np.ascontiguousarray(v)) for v in views) / len(views)
