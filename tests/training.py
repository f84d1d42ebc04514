"""A minimal training loop for tests: Adam on any model with params and loss(X, y)."""

import numpy as np


def overfit(model, X, y, steps=200, lr=1e-3, batch_size=None, seed=0):
    """Train on (X, y) with Adam; return the final training accuracy (evaluation mode)."""
    rng = np.random.default_rng(seed)
    m = {k: np.zeros_like(v) for k, v in model.params.items()}
    v = {k: np.zeros_like(p) for k, p in model.params.items()}
    for t in range(1, steps + 1):
        batch = rng.choice(len(X), batch_size, replace=False) if batch_size else slice(None)
        _, grads = model.loss(X[batch], y[batch])
        for name, grad in grads.items():
            m[name] = 0.9 * m[name] + 0.1 * grad
            v[name] = 0.999 * v[name] + 0.001 * grad * grad
            step = lr * (m[name] / (1 - 0.9**t)) / (np.sqrt(v[name] / (1 - 0.999**t)) + 1e-8)
            model.params[name] = (model.params[name] - step).astype(model.params[name].dtype)
    return accuracy(model, X, y)


def accuracy(model, X, y):
    return float(np.mean(np.argmax(model.loss(X), axis=1) == y))
