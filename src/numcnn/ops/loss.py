"""Classification losses: softmax cross-entropy and multiclass SVM (hinge).

Both take scores (N, C) and integer labels y (N,), return the loss averaged
over the batch and its gradient dscores (N, C), as CS231n's loss functions do.

Softmax cross-entropy, with optional label smoothing eps (PyTorch's
CrossEntropyLoss(label_smoothing=eps): the target is (1 - eps) on the true
class plus eps / C spread over all classes):

    p = softmax(s) = exp(s - max s) / sum exp(s - max s)    (stable for |s| ~ 1e4)
    q = (1 - eps) * onehot(y) + eps / C
    loss = -(1/N) sum_n sum_c q[n, c] * log p[n, c]
    dscores = (p - q) / N

Multiclass SVM with margin 1 (Weston-Watkins, CS231n's svm_loss):

    loss = (1/N) sum_n sum_{c != y_n} max(0, s[n, c] - s[n, y_n] + 1)
    dscores[n, c] = 1[margin > 0] / N,  dscores[n, y_n] = -(number of positive margins) / N
"""

from __future__ import annotations

import numpy as np

from ..checks import batch_array, labels, probability


def _arguments(scores, y, label_smoothing=0.0):
    scores = batch_array(scores, "scores", ndim=2)
    y = labels(y, "y", scores.shape[0], scores.shape[1])
    return scores, y, probability(label_smoothing, "label_smoothing")


def log_softmax(scores: np.ndarray) -> np.ndarray:
    """log p for each row, computed from shifted scores so exp never overflows."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_loss(scores, y, label_smoothing=0.0):
    """Returns loss (float) and dscores (N, C)."""
    scores, y, label_smoothing = _arguments(scores, y, label_smoothing)
    N, C = scores.shape
    log_p = log_softmax(scores)
    target = np.full_like(scores, label_smoothing / C)
    target[np.arange(N), y] += 1.0 - label_smoothing
    loss = -np.sum(target * log_p) / N
    dscores = (np.exp(log_p) - target) / N
    return float(loss), dscores


def svm_loss(scores, y):
    """Returns loss (float) and dscores (N, C)."""
    scores, y, _ = _arguments(scores, y)
    N = scores.shape[0]
    rows = np.arange(N)
    margins = np.maximum(0.0, scores - scores[rows, y][:, None] + 1.0)
    margins[rows, y] = 0.0
    loss = margins.sum() / N
    positive = (margins > 0).astype(scores.dtype)
    positive[rows, y] = -positive.sum(axis=1)
    return float(loss), positive / N


def softmax_loss_naive(scores, y, label_smoothing=0.0):
    """One sample at a time, as CS231n's softmax_loss_naive."""
    scores, y, label_smoothing = _arguments(scores, y, label_smoothing)
    N, C = scores.shape
    loss, dscores = 0.0, np.zeros_like(scores)
    for n in range(N):
        shifted = scores[n] - np.max(scores[n])
        log_norm = np.log(sum(np.exp(s) for s in shifted))
        for c in range(C):
            target = label_smoothing / C + (1.0 - label_smoothing) * (c == y[n])
            log_p = shifted[c] - log_norm
            loss -= target * log_p
            dscores[n, c] = (np.exp(log_p) - target) / N
    return float(loss / N), dscores


def svm_loss_naive(scores, y):
    """Loop version of svm_loss (CS231n's svm_loss_naive): same signature, same loss and dscores.

    scores (N, C), y (N,) integer labels. Loops over samples n and classes c other than y[n]:

        margin = scores[n, c] - scores[n, y[n]] + 1
        if margin > 0:  loss += margin / N,  dscores[n, c] += 1 / N,  dscores[n, y[n]] -= 1 / N

    Returns the loss averaged over the batch (a float) and dscores (N, C). Raises
    ValueError for scores that are not a non-empty 2-d float array, or y that is not (N,)
    integer labels in [0, C).
    """
    scores, y, _ = _arguments(scores, y)
    N, C = scores.shape
    loss, dscores = 0.0, np.zeros_like(scores)
    for n in range(N):
        for c in range(C):
            if c == y[n]:
                continue
            margin = scores[n, c] - scores[n, y[n]] + 1.0
            if margin > 0:
                loss += margin
                dscores[n, c] += 1.0 / N
                dscores[n, y[n]] -= 1.0 / N
    return float(loss / N), dscores
