"""CS231n's layers.py: the assignment's names and signatures over numcnn.ops.

conv_param = {'stride', 'pad'}; pool_param = {'pool_height', 'pool_width',
'stride'}; bn_param, ln_param, gn_param and dropout_param as in the
assignment (see numcnn.models.cs231n_layers for their exact semantics).
"""

from ... import ops
from ...models.cs231n_layers import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    dropout_backward,
    dropout_forward,
    layernorm_backward,
    layernorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)

affine_forward = ops.linear_forward
affine_backward = ops.linear_backward
relu_forward = ops.relu_forward
relu_backward = ops.relu_backward


def softmax_loss(x, y):
    """x (N, C) class scores, y (N,) labels -> loss (mean over the batch), dx (N, C)."""
    return ops.softmax_loss(x, y)


def svm_loss(x, y):
    """Multiclass hinge loss (margin 1): x (N, C) scores, y (N,) labels -> loss, dx (N, C)."""
    return ops.svm_loss(x, y)


def conv_forward_naive(x, w, b, conv_param):
    """x (N, C, H, W), w (F, C, HH, WW), b (F,) -> out (N, F, H', W'), cache."""
    return ops.conv2d_forward_naive(x, w, b, stride=conv_param["stride"], pad=conv_param["pad"])


def conv_backward_naive(dout, cache):
    """Backward of conv_forward_naive, by loops: dx (N, C, H, W), dw (F, C, HH, WW), db (F,).

    numcnn.ops.conv2d_backward_naive: each output pixel sends its dout back to its window.
    """
    return ops.conv2d_backward_naive(dout, cache)


def max_pool_forward_naive(x, pool_param):
    """x (N, C, H, W) -> out (N, C, H', W'), cache."""
    return ops.max_pool2d_forward_naive(
        x, (pool_param["pool_height"], pool_param["pool_width"]), stride=pool_param["stride"]
    )


def max_pool_backward_naive(dout, cache):
    """Backward of max_pool_forward_naive, by loops: dx (N, C, H, W).

    numcnn.ops.max_pool2d_backward_naive: each window's dout goes to its maximum.
    """
    return ops.max_pool2d_backward_naive(dout, cache)


__all__ = [
    "affine_forward",
    "affine_backward",
    "relu_forward",
    "relu_backward",
    "softmax_loss",
    "svm_loss",
    "batchnorm_forward",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "layernorm_forward",
    "layernorm_backward",
    "dropout_forward",
    "dropout_backward",
    "conv_forward_naive",
    "conv_backward_naive",
    "max_pool_forward_naive",
    "max_pool_backward_naive",
    "spatial_batchnorm_forward",
    "spatial_batchnorm_backward",
    "spatial_groupnorm_forward",
    "spatial_groupnorm_backward",
]
