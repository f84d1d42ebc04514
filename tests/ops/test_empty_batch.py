"""Every op refuses an empty batch (N = 0), forward and backward, fast and naive, the same way.

The policy is stated in numcnn.ops's docstring: ValueError naming the
array ("x is an empty batch ...", "dout is an empty batch ..."), instead of
the AttributeError, reshape error or NaN loss an empty batch used to give.
"""

import numpy as np
import pytest

from numcnn import ops
from numcnn.ops.conv import Conv2dCache
from numcnn.ops.engine.geometry import window_geometry

rng = np.random.default_rng(0)
W3 = rng.standard_normal((4, 4, 3, 3))

# name -> (forward(x), backward(dout, cache) or None, the shape of one sample)
OPS = {
    "relu": (ops.relu_forward, ops.relu_backward, (4,)),
    "leaky_relu": (lambda x: ops.leaky_relu_forward(x, 0.1), ops.leaky_relu_backward, (4,)),
    "gelu": (ops.gelu_forward, ops.gelu_backward, (4,)),
    "dropout": (lambda x: ops.dropout_forward(x, 0.5, True, np.random.default_rng(0)), ops.dropout_backward, (4,)),
    "linear": (lambda x: ops.linear_forward(x, np.ones((4, 3)), np.zeros(3)), ops.linear_backward, (4,)),
    "batchnorm": (
        lambda x: ops.batchnorm_forward(x, np.ones(4), np.zeros(4), None, None, True)[:2],
        ops.batchnorm_backward,
        (4, 3, 3),
    ),
    "batchnorm_eval": (
        lambda x: ops.batchnorm_forward(x, None, None, np.zeros(4), np.ones(4), False)[:2],
        ops.batchnorm_backward,
        (4,),
    ),
    "layernorm": (lambda x: ops.layernorm_forward(x, None, None), ops.layernorm_backward, (4, 3)),
    "groupnorm": (lambda x: ops.groupnorm_forward(x, np.ones(4), np.zeros(4), 2), ops.groupnorm_backward, (4, 3, 3)),
    "instancenorm": (lambda x: ops.instancenorm_forward(x, None, None), ops.instancenorm_backward, (4, 3, 3)),
    "lrn": (lambda x: ops.local_response_norm_forward(x, 3), ops.local_response_norm_backward, (4, 3, 3)),
    "conv2d": (lambda x: ops.conv2d_forward(x, W3, np.zeros(4), pad=1), ops.conv2d_backward, (4, 5, 5)),
    "conv_transpose2d": (
        lambda x: ops.conv_transpose2d_forward(x, W3, np.zeros(4), stride=2),
        ops.conv_transpose2d_backward,
        (4, 5, 5),
    ),
    "max_pool2d": (lambda x: ops.max_pool2d_forward(x, 2), ops.max_pool2d_backward, (4, 4, 4)),
    "avg_pool2d": (lambda x: ops.avg_pool2d_forward(x, 2), ops.avg_pool2d_backward, (4, 4, 4)),
    "global_avg_pool": (ops.global_avg_pool_forward, ops.global_avg_pool_backward, (4, 4, 4)),
    "adaptive_avg_pool2d": (
        lambda x: ops.adaptive_avg_pool2d_forward(x, 3),
        ops.adaptive_avg_pool2d_backward,
        (4, 5, 5),
    ),
}
NAIVE = {
    "relu": (ops.relu_forward_naive, ops.relu_backward_naive),
    "leaky_relu": (lambda x: ops.leaky_relu_forward_naive(x, 0.1), ops.leaky_relu_backward_naive),
    "gelu": (ops.gelu_forward_naive, ops.gelu_backward_naive),
    "dropout": (
        lambda x: ops.dropout_forward_naive(x, 0.5, True, np.random.default_rng(0)),
        ops.dropout_backward_naive,
    ),
    "linear": (lambda x: ops.linear_forward_naive(x, np.ones((4, 3)), np.zeros(3)), ops.linear_backward_naive),
    "batchnorm": (
        lambda x: ops.batchnorm_forward_naive(x, np.ones(4), np.zeros(4), None, None, True)[:2],
        ops.batchnorm_backward_naive,
    ),
    "batchnorm_eval": (
        lambda x: ops.batchnorm_forward_naive(x, None, None, np.zeros(4), np.ones(4), False)[:2],
        ops.batchnorm_backward_naive,
    ),
    "layernorm": (lambda x: ops.layernorm_forward_naive(x, None, None), ops.layernorm_backward_naive),
    "groupnorm": (lambda x: ops.groupnorm_forward_naive(x, np.ones(4), np.zeros(4), 2), ops.groupnorm_backward_naive),
    "instancenorm": (lambda x: ops.instancenorm_forward_naive(x, None, None), ops.instancenorm_backward_naive),
    "lrn": (lambda x: ops.local_response_norm_forward_naive(x, 3), ops.local_response_norm_backward_naive),
    "conv2d": (lambda x: ops.conv2d_forward_naive(x, W3, np.zeros(4), pad=1), ops.conv2d_backward_naive),
    "conv_transpose2d": (
        lambda x: ops.conv_transpose2d_forward_naive(x, W3, np.zeros(4), stride=2),
        ops.conv_transpose2d_backward_naive,
    ),
    "max_pool2d": (lambda x: ops.max_pool2d_forward_naive(x, 2), ops.max_pool2d_backward_naive),
    "avg_pool2d": (lambda x: ops.avg_pool2d_forward_naive(x, 2), ops.avg_pool2d_backward_naive),
    "global_avg_pool": (ops.global_avg_pool_forward_naive, ops.global_avg_pool_backward_naive),
    "adaptive_avg_pool2d": (
        lambda x: ops.adaptive_avg_pool2d_forward_naive(x, 3),
        ops.adaptive_avg_pool2d_backward_naive,
    ),
}
CASES = [pytest.param(name, "fast", *OPS[name], id=f"{name}") for name in OPS] + [
    pytest.param(name, "naive", *NAIVE[name], OPS[name][2], id=f"{name}_naive") for name in NAIVE
]


@pytest.mark.parametrize("name, kind, forward, backward, sample_shape", CASES)
def test_forward_refuses_an_empty_batch(name, kind, forward, backward, sample_shape):
    with pytest.raises(ValueError, match=r"^x is an empty batch \(shape \(0,"):
        forward(np.zeros((0,) + sample_shape))


@pytest.mark.parametrize("name, kind, forward, backward, sample_shape", CASES)
def test_backward_refuses_an_empty_dout(name, kind, forward, backward, sample_shape):
    out, cache = forward(rng.standard_normal((2,) + sample_shape))
    with pytest.raises(ValueError, match=r"^dout is an empty batch \(shape \(0,"):
        backward(np.zeros((0,) + out.shape[1:]), cache)


def test_conv_backward_with_an_empty_cache_is_refused_not_an_attribute_error():
    """The issue's case: a cache holding N = 0 (built by hand now that the forward refuses it)."""
    x = np.zeros((0, 4, 5, 5))
    geom = window_geometry((5, 5), (3, 3), 1, 1, 1)
    cache = Conv2dCache(x, W3, None, geom, 1)
    for backward in (ops.conv2d_backward, ops.conv2d_backward_naive):
        with pytest.raises(ValueError, match="^dout is an empty batch"):
            backward(np.zeros((0, 4, 5, 5)), cache)


@pytest.mark.parametrize("loss", [ops.softmax_loss, ops.svm_loss, ops.softmax_loss_naive, ops.svm_loss_naive])
def test_losses_refuse_an_empty_batch_instead_of_returning_nan(loss):
    with pytest.raises(ValueError, match=r"^scores is an empty batch"):
        loss(np.zeros((0, 5)), np.zeros(0, int))


@pytest.mark.parametrize(
    "forward, x, name",
    [
        (lambda x: ops.groupnorm_forward(x, None, None, 2), np.zeros((2, 4, 0, 3)), "x"),
        (lambda x: ops.layernorm_forward(x, None, None), np.zeros((2, 0)), "x"),
        (lambda x: ops.softmax_loss(x, np.zeros(2, int)), np.zeros((2, 0)), "scores"),
    ],
)
def test_a_zero_size_axis_is_refused_instead_of_a_mean_of_nothing(forward, x, name):
    with pytest.raises(ValueError, match=rf"^{name} has a zero-size axis"):
        forward(x)
