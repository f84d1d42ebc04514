"""Every backward pass, fast and naive, refuses a dout of the wrong shape with the same one-line message."""

import re

import numpy as np
import pytest

from numcnn import ops
from numcnn.checks import same_shape, upstream_gradient

rng = np.random.default_rng(0)
X4 = rng.normal(size=(2, 4, 6, 6))
X2 = rng.normal(size=(3, 5))
ONES4 = np.ones(4)

# name -> forward(x) returning (out, cache) for the fast and the naive twin (same signatures)
FORWARDS = {
    "linear": (lambda f: f(X2, rng.normal(size=(5, 7)), np.zeros(7)), X2),
    "relu": (lambda f: f(X4), X4),
    "leaky_relu": (lambda f: f(X4, 0.1), X4),
    "gelu": (lambda f: f(X4), X4),
    "conv2d": (lambda f: f(X4, rng.normal(size=(3, 4, 3, 3)), np.zeros(3), pad=1), X4),
    "conv_transpose2d": (lambda f: f(X4, rng.normal(size=(4, 3, 3, 3)), np.zeros(3), stride=2), X4),
    "max_pool2d": (lambda f: f(X4, 2), X4),
    "avg_pool2d": (lambda f: f(X4, 3), X4),
    "global_avg_pool": (lambda f: f(X4), X4),
    "adaptive_avg_pool2d": (lambda f: f(X4, 4), X4),
    "batchnorm": (lambda f: f(X4, ONES4, np.zeros(4), np.zeros(4), np.ones(4), True)[:2], X4),
    "layernorm": (lambda f: f(X2, np.ones(5), np.zeros(5)), X2),
    "groupnorm": (lambda f: f(X4, ONES4, np.zeros(4), 2), X4),
    "instancenorm": (lambda f: f(X4, ONES4, np.zeros(4)), X4),
    "local_response_norm": (lambda f: f(X4, 3), X4),
    "dropout": (lambda f: f(X4, 0.5, True, np.random.default_rng(1))[:2], X4),
}
CASES = [(name, suffix) for name in FORWARDS for suffix in ("", "_naive")]


@pytest.mark.parametrize("name, suffix", CASES, ids=[name + suffix for name, suffix in CASES])
def test_backward_names_the_forward_outputs_shape(name, suffix):
    make, _ = FORWARDS[name]
    out, cache = make(getattr(ops, f"{name}_forward{suffix}"))
    backward = getattr(ops, f"{name}_backward{suffix}")
    wrong = np.ones(out.shape[:-1] + (out.shape[-1] + 1,))
    expected = re.escape(f"dout must have the forward output's shape {out.shape}, got shape {wrong.shape}")
    with pytest.raises(ValueError, match=f"^{expected}$"):
        backward(wrong, cache)
    backward(np.ones_like(out), cache)  # the right shape passes


def test_upstream_gradient_converts_and_checks_axes_first():
    dout = upstream_gradient([[1.0, 2.0]], "dout", (1, 2))
    assert isinstance(dout, np.ndarray) and dout.dtype == np.float64
    with pytest.raises(ValueError, match=r"^dout must have 4 dimensions, got shape \(1, 2\)$"):
        upstream_gradient(dout, "dout", (1, 2, 1, 1), ndim=4)
    with pytest.raises(ValueError, match=r"^dout is an empty batch"):
        upstream_gradient(np.ones((0, 2)), "dout", (0, 2))


def test_same_shape_says_whose_shape_it_wants():
    array = np.zeros((2, 3))
    assert same_shape(array, "w", [2, 3]) is array
    with pytest.raises(ValueError, match=r"^w must have shape \(3, 2\), got shape \(2, 3\)$"):
        same_shape(array, "w", (3, 2))
    with pytest.raises(ValueError, match=r"^w must have the cache's shape \(3,\), got shape \(2, 3\)$"):
        same_shape(array, "w", (3,), whose="the cache's")
