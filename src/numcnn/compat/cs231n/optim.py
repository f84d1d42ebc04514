"""CS231n's optim.py: update rules next_w, config = rule(w, dw, config=None)."""

from ...optim import adagrad, adam, adamw, nesterov, rmsprop, sgd, sgd_momentum

__all__ = ["sgd", "sgd_momentum", "rmsprop", "adam", "nesterov", "adagrad", "adamw"]
