"""CS231n's optim.py: update rules next_w, config = rule(w, dw, config=None).

sgd_momentum here is the assignment's: v = mu*v - lr*dw; w += v, with the
learning rate inside the velocity. It matches torch.optim.SGD only at a
constant learning rate; numcnn.train.optim.sgd_momentum is PyTorch's form and
matches it under any schedule. The other rules are numcnn.train.optim's.
"""

import numpy as np

from ...train.optim import adagrad, adam, adamw, nesterov, rmsprop, sgd

__all__ = ["sgd", "sgd_momentum", "rmsprop", "adam", "nesterov", "adagrad", "adamw"]


def sgd_momentum(w, dw, config=None):
    """SGD with momentum, the assignment's form. config: learning_rate (1e-2), momentum (0.9), velocity (zeros).

    v = momentum * v - learning_rate * dw; next_w = w + v.
    """
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("velocity", np.zeros_like(w))
    v = config["momentum"] * v - config["learning_rate"] * dw
    config["velocity"] = v
    return (w + v).astype(w.dtype, copy=False), config
