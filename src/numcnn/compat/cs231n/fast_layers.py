"""CS231n's fast_layers.py: every fast variant is numcnn's im2col convolution and pooling.

No Cython build step: conv_forward_fast, _im2col and _strides are all
numcnn.ops.conv2d_forward, and the pooling variants numcnn.ops.max_pool2d_forward.
"""

from ... import ops
from ...models.cs231n_layers import conv_forward, max_pool_forward

conv_forward_im2col = conv_forward_strides = conv_forward_fast = conv_forward
conv_backward_im2col = conv_backward_strides = conv_backward_fast = ops.conv2d_backward
max_pool_forward_reshape = max_pool_forward_im2col = max_pool_forward_fast = max_pool_forward
max_pool_backward_reshape = max_pool_backward_im2col = max_pool_backward_fast = ops.max_pool2d_backward

__all__ = [
    "conv_forward_fast",
    "conv_backward_fast",
    "conv_forward_im2col",
    "conv_backward_im2col",
    "conv_forward_strides",
    "conv_backward_strides",
    "max_pool_forward_fast",
    "max_pool_backward_fast",
    "max_pool_forward_reshape",
    "max_pool_backward_reshape",
    "max_pool_forward_im2col",
    "max_pool_backward_im2col",
]
