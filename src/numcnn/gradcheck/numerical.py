"""Numerical gradients and gradient checks, with CS231n's names and signatures.

The centred difference (f(x + h) - f(x - h)) / 2h has error O(h^2); in
float64 with h around 1e-5 a correct analytic gradient agrees to a relative
error of about 1e-7 or better. Always check in float64: in float32 the
rounding error of f swamps the difference.

    eval_numerical_gradient(f, x)            gradient of a scalar f at x
    eval_numerical_gradient_array(f, x, df)  gradient of sum(f(x) * df): a backward pass
    grad_check_sparse(f, x, analytic_grad)   spot checks at random coordinates
    rel_error(x, y)                          max |x - y| / max(1e-8, |x| + |y|)
    check_op(forward, backward, *args)       an op pair, every input, in one call

The evaluators perturb x in place, one coordinate at a time, and restore it.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable

import numpy as np


def rel_error(x, y) -> float:
    """The largest elementwise relative error, as CS231n defines it."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def centred_difference(f: Callable, x: np.ndarray, index, h: float):
    """(f(x + h e), f(x - h e)) for the unit vector e at index; x is always restored, even if f raises."""
    old = x[index]
    try:
        x[index] = old + h
        plus = np.array(f(x), copy=True)
        x[index] = old - h
        minus = np.array(f(x), copy=True)
    finally:
        x[index] = old
    return plus, minus


def eval_numerical_gradient(f: Callable, x: np.ndarray, verbose: bool = False, h: float = 1e-5) -> np.ndarray:
    """Gradient of the scalar f at x by centred differences (x is perturbed in place and restored)."""
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        f_plus, f_minus = centred_difference(f, x, index, h)
        grad[index] = (f_plus - f_minus) / (2 * h)
        if verbose:
            print(index, grad[index])
    return grad


def eval_numerical_gradient_array(f: Callable, x: np.ndarray, df: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Gradient of sum(f(x) * df) at x: what a backward pass given dout = df returns.

    x is perturbed in place and restored.
    """
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        plus, minus = centred_difference(f, x, index, h)
        grad[index] = np.sum((plus - minus) * df) / (2 * h)
    return grad


def grad_check_sparse(
    f: Callable,
    x: np.ndarray,
    analytic_grad: np.ndarray,
    num_checks: int = 10,
    h: float = 1e-5,
    rng: np.random.Generator | None = None,
    verbose: bool = True,
) -> list[float]:
    """Compare analytic_grad with centred differences at num_checks random coordinates.

    Prints one line per check, as CS231n's version does, and returns the
    relative errors.
    """
    rng = np.random.default_rng() if rng is None else rng
    errors = []
    for _ in range(num_checks):
        index = tuple(int(rng.integers(n)) for n in x.shape)
        f_plus, f_minus = centred_difference(f, x, index, h)
        numerical = float((f_plus - f_minus) / (2 * h))
        analytic = analytic_grad[index]
        error = abs(numerical - analytic) / max(1e-12, abs(numerical) + abs(analytic))
        errors.append(float(error))
        if verbose:
            print(f"numerical: {numerical:f} analytic: {analytic:f}, relative error: {error:e}")
    return errors


def _frozen(value):
    """A copy of a random generator, so every call of the op draws the same numbers."""
    return copy.deepcopy(value) if isinstance(value, np.random.Generator) else value


def check_op(
    forward: Callable, backward: Callable, *args, h: float = 1e-5, seed: int = 0, **kwargs
) -> dict[str, float]:
    """Check an op pair's analytic gradients against numerical ones, in float64.

    forward(*args, **kwargs) must return (out, cache, ...) and backward(dout,
    cache) the gradients of the leading array arguments in order (dx, dw, db
    for a convolution; dx, dgamma, dbeta for a norm). dout is drawn from a
    standard normal with `seed`. Returns {argument name: relative error};
    gradients that are None (no bias) are skipped. A numpy Generator among
    the arguments is copied before each call so dropout masks stay fixed.
    """
    args = [a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in args]
    run = lambda values: forward(*[_frozen(v) for v in values], **kwargs)
    out, cache = run(args)[:2]
    # A stream of its own: dout drawn from default_rng(seed) would equal inputs drawn
    # the same way, and a dout that is affine in a norm's input has zero gradient.
    dout = np.random.default_rng((seed, 0x5EED)).standard_normal(out.shape)
    grads = backward(dout, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    names = list(inspect.signature(forward).parameters)
    array_positions = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    errors = {}
    for position, grad in zip(array_positions, grads):
        if grad is None:
            continue

        def f(value, position=position):
            values = list(args)
            values[position] = value
            return run(values)[0]

        numerical = eval_numerical_gradient_array(f, args[position], dout, h=h)
        name = names[position] if position < len(names) else f"arg{position}"
        errors[name] = rel_error(numerical, grad)
    return errors


def check_loss(loss_fn: Callable, scores: np.ndarray, y: np.ndarray, h: float = 1e-5, **kwargs) -> float:
    """Relative error of a loss function's dscores against centred differences, in float64."""
    scores = np.array(scores, dtype=np.float64)
    _, dscores = loss_fn(scores, y, **kwargs)
    numerical = eval_numerical_gradient(lambda s: loss_fn(s, y, **kwargs)[0], scores, h=h)
    return rel_error(numerical, dscores)
