"""The CS231n assignment's three-layer convolutional network.

    conv - relu - 2x2 max pool - affine - relu - affine - softmax

The convolution keeps the spatial size (stride 1, pad (filter_size - 1) / 2),
so the pooled map has num_filters * H/2 * W/2 features. Parameters W1
(F, C, fs, fs), b1, W2 (F*H/2*W/2, hidden), b2, W3 (hidden, classes), b3,
drawn from np.random in that order as in the assignment. label_smoothing
(numcnn's, 0 by default) is ops.softmax_loss's.
"""

from __future__ import annotations

import numpy as np

from .. import ops
from . import cs231n_layers as L
from .fc_net import smoothing_config
from .params_state import ParamsState, assignment_rebuilder
from .registry import register_rebuilder


class ThreeLayerConvNet(ParamsState):
    """The CS231n assignment's three-layer convnet: conv - relu - 2x2 max pool - affine - relu - affine.

    input_dim is (C, H, W) with H and W even; filter_size is odd, so that the convolution
    (stride 1, pad (filter_size - 1) / 2) keeps the spatial size. Weights are drawn from
    np.random with standard deviation weight_scale, biases are zero, all cast to dtype.
    loss(X, y=None) returns the scores (N, num_classes) when y is None, else (loss, grads):
    the softmax loss (label_smoothing is ops.softmax_loss's) plus `0.5 * reg * sum(W**2)`
    over W1, W2 and W3. Raises ValueError for an even filter_size, or an odd H or W.
    """

    def __init__(
        self,
        input_dim=(3, 32, 32),
        num_filters=32,
        filter_size=7,
        hidden_dim=100,
        num_classes=10,
        weight_scale=1e-3,
        reg=0.0,
        dtype=np.float32,
        label_smoothing=0.0,
    ):
        C, H, W = input_dim
        if filter_size % 2 == 0:
            raise ValueError(f"filter_size must be odd to keep the spatial size, got {filter_size}")
        if H % 2 or W % 2:
            raise ValueError(f"input_dim's height and width must be even for the 2x2 pooling, got {input_dim}")
        self.reg = reg
        self.label_smoothing = label_smoothing
        self.dtype = dtype
        self.config = dict(
            input_dim=tuple(input_dim),
            num_filters=num_filters,
            filter_size=filter_size,
            hidden_dim=hidden_dim,
            num_classes=num_classes,
            weight_scale=weight_scale,
            reg=reg,
            dtype=np.dtype(dtype).name,
            **smoothing_config(label_smoothing),
        )
        self.params = {
            "W1": weight_scale * np.random.randn(num_filters, C, filter_size, filter_size),
            "b1": np.zeros(num_filters),
            "W2": weight_scale * np.random.randn(num_filters * (H // 2) * (W // 2), hidden_dim),
            "b2": np.zeros(hidden_dim),
            "W3": weight_scale * np.random.randn(hidden_dim, num_classes),
            "b3": np.zeros(num_classes),
        }
        for key, value in self.params.items():
            self.params[key] = value.astype(dtype)

    def loss(self, X, y=None):
        W1, b1, W2, b2, W3, b3 = (self.params[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
        filter_size = W1.shape[2]
        conv_param = {"stride": 1, "pad": (filter_size - 1) // 2}
        pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
        X = np.asarray(X).astype(self.dtype, copy=False)
        pooled, cache1 = L.conv_relu_pool_forward(X, W1, b1, conv_param, pool_param)
        hidden, cache2 = L.affine_relu_forward(pooled, W2, b2)
        scores, cache3 = ops.linear_forward(hidden, W3, b3)
        if y is None:
            return scores
        loss, dscores = ops.softmax_loss(scores, y, label_smoothing=self.label_smoothing)
        loss += 0.5 * self.reg * sum(np.sum(W * W) for W in (W1, W2, W3))
        grads = {}
        dhidden, grads["W3"], grads["b3"] = ops.linear_backward(dscores, cache3)
        dpooled, grads["W2"], grads["b2"] = L.affine_relu_backward(dhidden, cache2)
        # the images need no gradient: skip the first layer's dx (a col2im of 3 channels)
        _, grads["W1"], grads["b1"] = L.conv_relu_pool_backward(dpooled, cache1, input_grad=False)
        for key in ("W1", "W2", "W3"):
            grads[key] = grads[key] + self.reg * self.params[key]
        return loss, grads


register_rebuilder("ThreeLayerConvNet", assignment_rebuilder(ThreeLayerConvNet))
