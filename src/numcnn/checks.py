"""Argument validators that every numcnn package uses (ops, nn, data, ...).

One public home for the checks, as scikit-learn's utils/validation.py is for
its estimators: each function takes the value and the argument's name,
returns the value converted (an ndarray, an int pair, a float) and raises
ValueError with one line that names the argument, what it got and what it
needs, so that a mistake in a notebook points at the line that made it:

    x = batch_array(x, "x", ndim=4)              # float32/float64, N >= 1
    stride = int_pair(stride, "stride", minimum=1)
    dout = upstream_gradient(dout, "dout", out.shape)

Imports numpy and the standard library only, so any package may import it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np


def float_array(value, name: str, ndim: int | Sequence[int] | None = None, integers_ok: bool = False) -> np.ndarray:
    """Return `value` as a floating-point ndarray, checking its number of axes.

    Lists are converted. Integer or boolean data (x, dout) is refused rather
    than silently cast, because integer pixels fed to a float layer are the
    most common silent bug in hand-written networks; parameters may be
    integers (integers_ok) and become float64, which the ops then cast to
    the input's dtype.
    """
    array = np.asarray(value)
    if integers_ok and (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        array = array.astype(np.float64)
    if array.dtype not in (np.float32, np.float64):
        # float16 sums lose digits after 2048 and overflow at 65504: refused like integers
        raise ValueError(f"{name} must be a floating-point array (float32 or float64), got dtype {array.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if array.ndim not in allowed:
            wanted = " or ".join(str(a) for a in allowed)
            raise ValueError(f"{name} must have {wanted} dimensions, got shape {array.shape}")
    return array


def optional_float_array(value, name: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """A per-feature parameter that may be None (no affine / no bias)."""
    if value is None:
        return None
    array = float_array(value, name, integers_ok=True)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{name} must have shape {shape}, got shape {array.shape}")
    return array.reshape(shape)


def int_pair(value, name: str, minimum: int = 0) -> tuple[int, int]:
    """An int or a pair of ints (height, width), each at least `minimum`."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return pair


def positive_int(value, name: str) -> int:
    """An int of at least 1 (a count: groups, size, num_groups); bools are refused.

    Returns the value as a plain int. Raises ValueError naming the argument for anything
    else, e.g. "groups must be a positive int, got 0".
    """
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _real(value, name: str, expected: str) -> float:
    """value as a float if it is a real number (bools are not), else ValueError saying `expected`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return float(value)


def finite_float(value, name: str) -> float:
    """Any real number but NaN and +-inf (e.g. a LeakyReLU slope, LRN's alpha and beta)."""
    number = _real(value, name, "a finite number")
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def probability(value, name: str) -> float:
    """A number in [0, 1] (NaN is not)."""
    number = _real(value, name, "a probability in [0, 1]")
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return number


def positive_float(value, name: str) -> float:
    """A number in (0, inf): an eps, LRN's k. NaN and inf are refused (an infinite eps zeroes the output)."""
    number = _real(value, name, "a positive number (finite)")
    if not (number > 0.0 and math.isfinite(number)):
        raise ValueError(f"{name} must be a positive number (finite), got {value!r}")
    return number


def nonnegative_float(value, name: str) -> float:
    """A number in [0, inf) (LRN's alpha: with k > 0 it keeps k + alpha * s positive)."""
    number = _real(value, name, "a non-negative number (finite)")
    if not (number >= 0.0 and math.isfinite(number)):
        raise ValueError(f"{name} must be a non-negative number (finite), got {value!r}")
    return number


def integer(value, name: str) -> int:
    """Any int (an axis index); bools are refused."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got {value!r}")
    return int(value)


def float_dtype(value, name: str = "dtype") -> np.dtype:
    """A dtype for parameters: float32 or float64, as the ops accept (float16 sums overflow at 65504)."""
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise ValueError(f"{name} must be float32 or float64, got {value!r}") from None
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be float32 or float64, got {dtype}")
    return dtype


def batch_array(value, name: str, ndim: int | Sequence[int] | None = None) -> np.ndarray:
    """Data with a batch axis first (x, dout, scores): float_array, refusing empty arrays.

    numcnn refuses an empty batch (N = 0) and any other zero-size axis
    rather than follow PyTorch, whose empty batches give empty outputs or
    NaN losses (a mean over no samples): an empty batch in a CNN is a
    slicing mistake, and a clear error at the op that received it is
    cheaper to debug than a NaN several layers later.
    """
    array = float_array(value, name, ndim)
    if array.size == 0:
        if array.shape[0] == 0:
            raise ValueError(
                f"{name} is an empty batch (shape {array.shape}); the ops need at least one sample (N >= 1)"
            )
        raise ValueError(f"{name} has a zero-size axis (shape {array.shape}); every axis must be at least 1")
    return array


def same_shape(array: np.ndarray, name: str, shape: Sequence[int], whose: str = "") -> np.ndarray:
    """array, checked to have exactly `shape`; `whose` says where that shape comes from.

    The message is "{name} must have {whose} shape {shape}, got shape {array.shape}",
    e.g. whose="the forward output's".
    """
    expected = tuple(int(size) for size in shape)
    if array.shape != expected:
        what = f"{whose} shape" if whose else "shape"
        raise ValueError(f"{name} must have {what} {expected}, got shape {array.shape}")
    return array


def upstream_gradient(dout, name: str, shape: Sequence[int], ndim: int | Sequence[int] | None = None) -> np.ndarray:
    """The gradient a backward pass receives: a batch_array of the forward output's shape.

    Parameters
    ----------
    dout : array-like
        d loss / d out, shape `shape` (the forward output's).
    name : str
        The argument's name in messages ("dout").
    shape : sequence of int
        The forward output's shape.
    ndim : int or sequence of int, optional
        Checked first, with batch_array's message, where the op wants a fixed number of axes.

    Returns
    -------
    np.ndarray
        dout as a float32/float64 array of shape `shape`.
    """
    return same_shape(batch_array(dout, name, ndim), name, shape, whose="the forward output's")


def labels(y, name: str, num_samples: int, num_classes: int) -> np.ndarray:
    """Integer class labels in [0, num_classes), one per sample."""
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if y.shape != (num_samples,):
        raise ValueError(f"{name} must have shape ({num_samples},), got shape {y.shape}")
    if num_samples and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes}), got values in [{y.min()}, {y.max()}]")
    return y
