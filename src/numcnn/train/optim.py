"""Update rules, as in CS231n: next_w, config = rule(w, dw, config=None).

Each rule reads its hyper-parameters from `config` (filling in defaults on
the first call) and keeps its state there too (velocity, cache, m, v, t),
so a Solver holds one config per parameter. Defaults and key names are
the assignment's; sgd_momentum, nesterov, adagrad and adamw follow
torch.optim's definitions, and every rule reproduces torch.optim step for
step, also when the learning rate changes between steps (a schedule).

    sgd            w -= lr * dw
    sgd_momentum   b = mu*b + dw;               w -= lr*b           (torch SGD(momentum=mu))
    nesterov       b = mu*b + dw;               w -= lr*(dw + mu*b) (torch SGD(nesterov=True))
    rmsprop        c = rho*c + (1-rho)*dw^2;    w -= lr*dw/(sqrt(c) + eps)
    adagrad        s += dw^2;                   w -= lr*dw/(sqrt(s) + eps)
    adam           t += 1; m, v moving averages of dw, dw^2;
                   w -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)
    adamw          w *= 1 - lr*weight_decay, then adam

The SGD family also takes 'weight_decay' (PyTorch's coupled L2: dw += wd*w)
and 'decoupled_weight_decay' (w *= 1 - lr*wd before the step, as SGDW).
Updates return new arrays of w's dtype; the inputs are not modified.

CS231n's own momentum rule, v = mu*v - lr*dw; w += v, folds the learning
rate into the velocity: it equals PyTorch's (v = -lr*b) only while lr stays
constant, and drifts from it under a schedule, because the velocity keeps
old steps at the learning rates they were taken with. The assignment's form
is numcnn.compat.cs231n.optim.sgd_momentum.
"""

from __future__ import annotations

import numpy as np

# The hyper-parameters each rule fills in when its config leaves them out (adamw also takes adam's)
DEFAULTS = {
    "sgd": {"learning_rate": 1e-2},
    "sgd_momentum": {"learning_rate": 1e-2, "momentum": 0.9},
    "nesterov": {"learning_rate": 1e-2, "momentum": 0.9},
    "rmsprop": {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8},
    "adagrad": {"learning_rate": 1e-2, "epsilon": 1e-10},
    "adam": {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
    "adamw": {"learning_rate": 1e-3, "weight_decay": 1e-2},
}


def _setup(config, defaults):
    config = {} if config is None else config
    for key, value in defaults.items():
        config.setdefault(key, value)
    return config


def _sgd_weight_decay(w, dw, config):
    """PyTorch's coupled weight decay, then SGDW's decoupled shrink."""
    if config.get("weight_decay", 0.0):
        dw = dw + config["weight_decay"] * w
    if config.get("decoupled_weight_decay", 0.0):
        w = w * (1.0 - config["learning_rate"] * config["decoupled_weight_decay"])
    return w, dw


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent. config: learning_rate (1e-2)."""
    config = _setup(config, DEFAULTS["sgd"])
    w, dw = _sgd_weight_decay(w, dw, config)
    return (w - config["learning_rate"] * dw).astype(w.dtype, copy=False), config


def sgd_momentum(w, dw, config=None):
    """SGD with momentum, PyTorch's form: b = mu*b + dw; w -= lr*b.

    config: learning_rate (1e-2), momentum (0.9), momentum_buffer b (dw at the
    first step, as torch.optim.SGD). The buffer is in gradient units, so a
    new learning rate applies to the whole step at once.
    """
    config = _setup(config, DEFAULTS["sgd_momentum"])
    w, dw = _sgd_weight_decay(w, dw, config)
    buffer = config.get("momentum_buffer")
    buffer = dw.copy() if buffer is None else config["momentum"] * buffer + dw
    config["momentum_buffer"] = buffer
    return (w - config["learning_rate"] * buffer).astype(w.dtype, copy=False), config


def nesterov(w, dw, config=None):
    """Nesterov momentum, PyTorch's form. config: learning_rate (1e-2), momentum (0.9), velocity.

    It equals the look-ahead form of CS231n's notes (v = mu*v - lr*dw;
    w += -mu*v_prev + (1 + mu)*v) with v = -lr * velocity.
    """
    config = _setup(config, DEFAULTS["nesterov"])
    w, dw = _sgd_weight_decay(w, dw, config)
    buffer = config.get("velocity")
    buffer = dw.copy() if buffer is None else config["momentum"] * buffer + dw
    config["velocity"] = buffer
    step = dw + config["momentum"] * buffer
    return (w - config["learning_rate"] * step).astype(w.dtype, copy=False), config


def rmsprop(w, dw, config=None):
    """RMSProp. config: learning_rate (1e-2), decay_rate (0.99), epsilon (1e-8), cache (zeros)."""
    config = _setup(config, DEFAULTS["rmsprop"])
    cache = config.get("cache", np.zeros_like(w))
    cache = config["decay_rate"] * cache + (1 - config["decay_rate"]) * dw * dw
    config["cache"] = cache
    next_w = w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"])
    return next_w.astype(w.dtype, copy=False), config


def adagrad(w, dw, config=None):
    """Adagrad (torch.optim's defaults). config: learning_rate (1e-2), epsilon (1e-10), sum (zeros)."""
    config = _setup(config, DEFAULTS["adagrad"])
    total = config.get("sum", np.zeros_like(w)) + dw * dw
    config["sum"] = total
    next_w = w - config["learning_rate"] * dw / (np.sqrt(total) + config["epsilon"])
    return next_w.astype(w.dtype, copy=False), config


def adam(w, dw, config=None):
    """Adam with bias correction (t is incremented before use).

    config: learning_rate (1e-3), beta1 (0.9), beta2 (0.999), epsilon (1e-8),
    m, v (zeros), t (0).
    """
    config = _setup(config, {**DEFAULTS["adam"], "t": 0})
    b1, b2 = config["beta1"], config["beta2"]
    config["t"] += 1
    m = b1 * config.get("m", np.zeros_like(w)) + (1 - b1) * dw
    v = b2 * config.get("v", np.zeros_like(w)) + (1 - b2) * dw * dw
    config["m"], config["v"] = m, v
    m_hat = m / (1 - b1 ** config["t"])
    v_hat = v / (1 - b2 ** config["t"])
    next_w = w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"])
    return next_w.astype(w.dtype, copy=False), config


def adamw(w, dw, config=None):
    """Adam with decoupled weight decay (torch.optim.AdamW). config: adam's plus weight_decay (1e-2)."""
    config = _setup(config, DEFAULTS["adamw"])
    shrunk = w * (1 - config["learning_rate"] * config["weight_decay"])
    return adam(shrunk.astype(w.dtype, copy=False), dw, config)


UPDATE_RULES = {rule.__name__: rule for rule in (sgd, sgd_momentum, nesterov, rmsprop, adagrad, adam, adamw)}


def clip_grad_norm(grads: dict, max_norm: float) -> tuple[dict, float]:
    """Scale all gradients together so that their global L2 norm is at most max_norm.

    Returns the (possibly scaled) gradients and the norm before clipping, as
    torch.nn.utils.clip_grad_norm_ does.
    """
    total = float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values())))
    scale = max_norm / (total + 1e-6)
    if scale >= 1.0:
        return grads, total
    return {name: (g * scale).astype(g.dtype, copy=False) for name, g in grads.items()}, total
