"""Every numeric hyper-parameter of every op is checked at the boundary.

A bad value (NaN, inf, out of range, wrong type) raises ValueError whose
message starts with the argument's name, instead of a NaN output or a
TypeError deep inside NumPy.
"""

import numpy as np
import pytest

from numcnn import ops

NAN, INF = float("nan"), float("inf")
rng = np.random.default_rng(0)
X4 = rng.standard_normal((2, 4, 5, 5))
X2 = rng.standard_normal((3, 4))
W3 = rng.standard_normal((4, 4, 3, 3))
SCORES, Y = rng.standard_normal((3, 5)), np.array([0, 2, 4])

# (op, keyword -> call, bad values); the naive twin goes through the same checks
CASES = {
    "batchnorm eps": (
        lambda v: ops.batchnorm_forward(X4, None, None, None, None, True, eps=v),
        "eps",
        [0, -1e-5, NAN, INF, "1e-5", True],
    ),
    "batchnorm_naive eps": (
        lambda v: ops.batchnorm_forward_naive(X2, None, None, None, None, True, eps=v),
        "eps",
        [0, NAN, INF],
    ),
    "batchnorm momentum": (
        lambda v: ops.batchnorm_forward(X4, None, None, np.zeros(4), np.ones(4), True, momentum=v),
        "momentum",
        [-0.1, 1.5, NAN, INF, "0.1"],
    ),
    "layernorm eps": (lambda v: ops.layernorm_forward(X2, None, None, eps=v), "eps", [0, -1.0, NAN, INF]),
    "layernorm_naive eps": (lambda v: ops.layernorm_forward_naive(X2, None, None, eps=v), "eps", [0, NAN]),
    "groupnorm eps": (lambda v: ops.groupnorm_forward(X4, None, None, 2, eps=v), "eps", [0, NAN, INF]),
    "groupnorm_naive eps": (lambda v: ops.groupnorm_forward_naive(X4, None, None, 2, eps=v), "eps", [-1, NAN]),
    "groupnorm num_groups": (lambda v: ops.groupnorm_forward(X4, None, None, v), "num_groups", [0, -2, 2.0, NAN, True]),
    "instancenorm eps": (lambda v: ops.instancenorm_forward(X4, None, None, eps=v), "eps", [0, NAN, INF]),
    "instancenorm_naive eps": (lambda v: ops.instancenorm_forward_naive(X4, None, None, eps=v), "eps", [NAN]),
    "leaky_relu negative_slope": (
        lambda v: ops.leaky_relu_forward(X2, v),
        "negative_slope",
        [NAN, INF, -INF, "0.1", None],
    ),
    "leaky_relu_naive negative_slope": (lambda v: ops.leaky_relu_forward_naive(X2, v), "negative_slope", [NAN, INF]),
    "dropout p": (
        lambda v: ops.dropout_forward(X2, v, True, np.random.default_rng(0)),
        "p",
        [-0.1, 1.1, NAN, INF, "0.5"],
    ),
    "dropout_naive p": (lambda v: ops.dropout_forward_naive(X2, v, True, np.random.default_rng(0)), "p", [NAN]),
    "lrn size": (lambda v: ops.local_response_norm_forward(X4, v), "size", [0, -1, 2.5, NAN]),
    "lrn alpha": (lambda v: ops.local_response_norm_forward(X4, 3, alpha=v), "alpha", [-1e-4, NAN, INF, "1e-4"]),
    "lrn beta": (lambda v: ops.local_response_norm_forward(X4, 3, beta=v), "beta", [NAN, -INF]),
    "lrn k": (lambda v: ops.local_response_norm_forward(X4, 3, k=v), "k", [0, -1, NAN, INF]),
    "lrn_naive k": (lambda v: ops.local_response_norm_forward_naive(X4, 3, k=v), "k", [NAN, INF]),
    "softmax label_smoothing": (
        lambda v: ops.softmax_loss(SCORES, Y, label_smoothing=v),
        "label_smoothing",
        [-0.1, 1.5, NAN, INF, "0.1"],
    ),
    "softmax_naive label_smoothing": (
        lambda v: ops.softmax_loss_naive(SCORES, Y, label_smoothing=v),
        "label_smoothing",
        [NAN],
    ),
    "conv stride": (lambda v: ops.conv2d_forward(X4, W3, None, stride=v), "stride", [0, -1, 1.0, NAN, (1, 0)]),
    "conv pad": (lambda v: ops.conv2d_forward(X4, W3, None, pad=v), "pad", [-1, 1.5, NAN, "full"]),
    "conv dilation": (lambda v: ops.conv2d_forward(X4, W3, None, dilation=v), "dilation", [0, NAN, INF]),
    "conv groups": (lambda v: ops.conv2d_forward(X4, W3, None, groups=v), "groups", [0, -1, 1.0, NAN]),
    "conv_naive stride": (lambda v: ops.conv2d_forward_naive(X4, W3, None, stride=v), "stride", [0, NAN]),
    "conv_transpose output_padding": (
        lambda v: ops.conv_transpose2d_forward(X4, W3, None, stride=2, output_padding=v),
        "output_padding",
        [-1, 2, NAN, 0.5],
    ),
    "conv_transpose stride": (lambda v: ops.conv_transpose2d_forward(X4, W3, None, stride=v), "stride", [0, NAN]),
    "max_pool kernel_size": (lambda v: ops.max_pool2d_forward(X4, v), "kernel_size", [0, -2, 2.0, NAN, INF]),
    "max_pool stride": (lambda v: ops.max_pool2d_forward(X4, 2, stride=v), "stride", [0, NAN]),
    "max_pool pad": (lambda v: ops.max_pool2d_forward(X4, 2, pad=v), "pad", [-1, 2, NAN]),
    "max_pool dilation": (lambda v: ops.max_pool2d_forward(X4, 2, dilation=v), "dilation", [0, NAN]),
    "avg_pool kernel_size": (lambda v: ops.avg_pool2d_forward(X4, v), "kernel_size", [0, NAN]),
    "avg_pool_naive pad": (lambda v: ops.avg_pool2d_forward_naive(X4, 2, pad=v), "pad", [3, NAN]),
    "adaptive_avg_pool output_size": (
        lambda v: ops.adaptive_avg_pool2d_forward(X4, v),
        "output_size",
        [0, -1, NAN, 1.0],
    ),
}
PARAMS = [
    pytest.param(call, name, value, id=f"{label}={value!r}")
    for label, (call, name, values) in CASES.items()
    for value in values
]


@pytest.mark.parametrize("call, name, value", PARAMS)
def test_a_bad_hyperparameter_is_refused_by_name(call, name, value):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call(value)


def test_good_edge_values_are_accepted():
    """The bounds themselves, and a negative LeakyReLU slope as PyTorch allows."""
    ops.batchnorm_forward(X4, None, None, np.zeros(4), np.ones(4), True, momentum=1.0, eps=1e-30)
    ops.dropout_forward(X2, 1.0, True, np.random.default_rng(0))
    out, _ = ops.leaky_relu_forward(X2, -0.5)
    np.testing.assert_allclose(out, np.where(X2 > 0, X2, -0.5 * X2))
    ops.softmax_loss(SCORES, Y, label_smoothing=np.float32(1.0))
