"""The CS231n assignment's layer API over numcnn.ops: param dicts and sandwich layers.

numcnn's ops are pure (running statistics in and out, a Generator for
dropout, PyTorch's momentum). The assignment instead keeps state in dicts
that the layer mutates, with its own conventions, reproduced here exactly:

- batch norm: bn_param = {'mode': 'train'|'test', 'eps', 'momentum' (0.9),
  'running_mean', 'running_var'}; running statistics start at zero and move
  as running = momentum * running + (1 - momentum) * batch, with the biased
  batch variance.
- dropout: dropout_param = {'mode', 'p', 'seed'} where p is the probability
  of KEEPING a unit; with a seed, np.random.seed(seed) is called before each
  mask is drawn as (np.random.rand(*x.shape) < p) / p.
- group norm: gamma and beta of shape (1, C, 1, 1).

The assignment's model classes (TwoLayerNet, FullyConnectedNet,
ThreeLayerConvNet) use these; numcnn.compat.cs231n re-exports them under the
assignment's module names.
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..ops import DropoutCache, NormCache

# -- batch norm with bn_param -------------------------------------------------


def batchnorm_forward(x, gamma, beta, bn_param):
    """x (N, D) (or (N, C, H, W): per channel). Updates bn_param's running statistics."""
    mode = bn_param.get("mode")
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    D = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))
    if mode == "train":
        out, cache, _, _ = ops.batchnorm_forward(x, gamma, beta, None, None, training=True, eps=eps)
        running_mean = momentum * running_mean + (1 - momentum) * x.mean(axis=axes)
        running_var = momentum * running_var + (1 - momentum) * x.var(axis=axes)
    elif mode == "test":
        out, cache, _, _ = ops.batchnorm_forward(x, gamma, beta, running_mean, running_var, training=False, eps=eps)
    else:
        raise ValueError(f"bn_param['mode'] must be 'train' or 'test', got {mode!r}")
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def batchnorm_backward(dout, cache: NormCache):
    """Backpropagation through batch norm's computational graph, one step at a time.

    Forward graph: mu = mean(x); xc = x - mu; var = mean(xc^2);
    istd = (var + eps)^(-1/2); xhat = xc * istd; out = gamma * xhat + beta.
    (batchnorm_backward_alt is the simplified closed form.)
    """
    xhat, inv_std, axes, gamma = cache.xhat, cache.inv_std, cache.axes, cache.gamma
    if axes is None:  # test mode: statistics were constants
        return ops.batchnorm_backward(dout, cache)
    m = xhat.size // xhat.shape[1]
    dbeta = dout.sum(axis=axes)
    dgamma = (dout * xhat).sum(axis=axes)
    dxhat = dout * gamma if gamma is not None else dout
    xc = xhat / inv_std
    distd = (dxhat * xc).sum(axis=axes, keepdims=True)
    dxc = dxhat * inv_std
    dvar = -0.5 * inv_std**3 * distd
    dxc = dxc + 2.0 * xc * dvar / m
    dmu = -dxc.sum(axis=axes, keepdims=True)
    dx = dxc + dmu / m
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache: NormCache):
    """The closed form: dx = istd/m * (m*dxhat - sum(dxhat) - xhat*sum(dxhat*xhat))."""
    return ops.batchnorm_backward(dout, cache)


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Batch norm of (N, C, H, W) per channel, over (N, H, W)."""
    return batchnorm_forward(x, gamma, beta, bn_param)


def spatial_batchnorm_backward(dout, cache):
    """Backward of spatial_batchnorm_forward: dx (N, C, H, W), dgamma (C,), dbeta (C,), by the closed form."""
    return batchnorm_backward_alt(dout, cache)


# -- layer norm and group norm -------------------------------------------------


def layernorm_forward(x, gamma, beta, ln_param):
    """Layer norm with the assignment's signature: x (N, D), gamma and beta (D,), ln_param {'eps'}.

    eps defaults to 1e-5. Returns out (N, D) and the cache for layernorm_backward
    (ops.layernorm_forward's).
    """
    return ops.layernorm_forward(x, gamma, beta, ln_param.get("eps", 1e-5))


def layernorm_backward(dout, cache):
    """Backward of layernorm_forward: dx (N, D), dgamma (D,), dbeta (D,)."""
    return ops.layernorm_backward(dout, cache)


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    """Group norm with gamma and beta of shape (1, C, 1, 1), as in the assignment."""
    C = x.shape[1]
    return ops.groupnorm_forward(x, np.reshape(gamma, C), np.reshape(beta, C), G, gn_param.get("eps", 1e-5))


def spatial_groupnorm_backward(dout, cache):
    """Backward of spatial_groupnorm_forward: dx (N, C, H, W), and dgamma, dbeta of shape (1, C, 1, 1)."""
    dx, dgamma, dbeta = ops.groupnorm_backward(dout, cache)
    return dx, dgamma.reshape(1, -1, 1, 1), dbeta.reshape(1, -1, 1, 1)


# -- dropout with the keep probability ------------------------------------------


def dropout_forward(x, dropout_param):
    """Inverted dropout keeping each unit with probability dropout_param['p']."""
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])
    if mode == "train":
        # the assignment's mask, in x's dtype: a float64 mask would turn a float32 network's
        # activations, gradients and update into float64, at half speed
        mask = ((np.random.rand(*x.shape) < p) / p).astype(x.dtype, copy=False)
        return x * mask, DropoutCache(mask)
    if mode == "test":
        return x, DropoutCache(None)
    raise ValueError(f"dropout_param['mode'] must be 'train' or 'test', got {mode!r}")


def dropout_backward(dout, cache: DropoutCache):
    """Backward of dropout_forward: `dx = dout * mask` in 'train' mode, a copy of dout in 'test' mode."""
    return ops.dropout_backward(dout, cache)


# -- conv and pool with conv_param / pool_param -------------------------------------


def conv_forward(x, w, b, conv_param):
    """The fast convolution with the assignment's conv_param {'stride', 'pad'} (defaults 1 and 0).

    x (N, C, H, W), w (F, C, HH, WW), b (F,) -> out (N, F, H', W') and the cache for
    ops.conv2d_backward.
    """
    return ops.conv2d_forward(x, w, b, stride=conv_param.get("stride", 1), pad=conv_param.get("pad", 0))


def max_pool_forward(x, pool_param):
    """The fast max pooling with the assignment's pool_param {'pool_height', 'pool_width', 'stride'}.

    x (N, C, H, W) -> out (N, C, H', W') and the cache for ops.max_pool2d_backward.
    """
    kernel = (pool_param["pool_height"], pool_param["pool_width"])
    return ops.max_pool2d_forward(x, kernel, stride=pool_param["stride"])


# -- sandwich layers (layer_utils.py) -----------------------------------------------


def affine_relu_forward(x, w, b):
    """Sandwich layer: affine, then ReLU. x (N, d1, ..., dk), w (D, M), b (M,) -> out (N, M), cache."""
    a, fc_cache = ops.linear_forward(x, w, b)
    out, relu_cache = ops.relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout, cache):
    """Backward of affine_relu_forward: dx (like x), dw (D, M), db (M,)."""
    fc_cache, relu_cache = cache
    return ops.linear_backward(ops.relu_backward(dout, relu_cache), fc_cache)


def affine_bn_relu_forward(x, w, b, gamma, beta, bn_param):
    """Sandwich layer: affine, batch norm (bn_param, updated in place), ReLU. Returns out (N, M), cache."""
    a, fc_cache = ops.linear_forward(x, w, b)
    n, bn_cache = batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = ops.relu_forward(n)
    return out, (fc_cache, bn_cache, relu_cache)


def affine_bn_relu_backward(dout, cache):
    """Backward of affine_bn_relu_forward: dx (like x), dw (D, M), db (M,), dgamma (M,), dbeta (M,)."""
    fc_cache, bn_cache, relu_cache = cache
    dn, dgamma, dbeta = batchnorm_backward_alt(ops.relu_backward(dout, relu_cache), bn_cache)
    dx, dw, db = ops.linear_backward(dn, fc_cache)
    return dx, dw, db, dgamma, dbeta


def affine_ln_relu_forward(x, w, b, gamma, beta, ln_param):
    """Sandwich layer: affine, layer norm (ln_param), ReLU. Returns out (N, M), cache."""
    a, fc_cache = ops.linear_forward(x, w, b)
    n, ln_cache = layernorm_forward(a, gamma, beta, ln_param)
    out, relu_cache = ops.relu_forward(n)
    return out, (fc_cache, ln_cache, relu_cache)


def affine_ln_relu_backward(dout, cache):
    """Backward of affine_ln_relu_forward: dx (like x), dw (D, M), db (M,), dgamma (M,), dbeta (M,)."""
    fc_cache, ln_cache, relu_cache = cache
    dn, dgamma, dbeta = layernorm_backward(ops.relu_backward(dout, relu_cache), ln_cache)
    dx, dw, db = ops.linear_backward(dn, fc_cache)
    return dx, dw, db, dgamma, dbeta


def conv_relu_forward(x, w, b, conv_param):
    """Sandwich layer: convolution (conv_param), then ReLU. x (N, C, H, W) -> out (N, F, H', W'), cache."""
    a, conv_cache = conv_forward(x, w, b, conv_param)
    out, relu_cache = ops.relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout, cache):
    """Backward of conv_relu_forward: dx (N, C, H, W), dw (F, C, HH, WW), db (F,)."""
    conv_cache, relu_cache = cache
    return ops.conv2d_backward(ops.relu_backward(dout, relu_cache), conv_cache)


def conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param):
    """Sandwich layer: convolution (conv_param), spatial batch norm (bn_param, updated), ReLU.

    x (N, C, H, W) -> out (N, F, H', W') and the cache for conv_bn_relu_backward.
    """
    a, conv_cache = conv_forward(x, w, b, conv_param)
    n, bn_cache = spatial_batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = ops.relu_forward(n)
    return out, (conv_cache, bn_cache, relu_cache)


def conv_bn_relu_backward(dout, cache):
    """Backward of conv_bn_relu_forward: dx (N, C, H, W), dw (F, C, HH, WW), db (F,), dgamma (F,), dbeta (F,)."""
    conv_cache, bn_cache, relu_cache = cache
    dn, dgamma, dbeta = spatial_batchnorm_backward(ops.relu_backward(dout, relu_cache), bn_cache)
    dx, dw, db = ops.conv2d_backward(dn, conv_cache)
    return dx, dw, db, dgamma, dbeta


def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    """Sandwich layer: convolution (conv_param), ReLU, max pooling (pool_param).

    x (N, C, H, W) -> out (N, F, H', W') after pooling, and the cache for
    conv_relu_pool_backward.
    """
    a, conv_cache = conv_forward(x, w, b, conv_param)
    s, relu_cache = ops.relu_forward(a)
    out, pool_cache = max_pool_forward(s, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout, cache, input_grad=True):
    """dx, dw, db; input_grad=False skips dx (None), as for a network's first layer."""
    conv_cache, relu_cache, pool_cache = cache
    ds = ops.max_pool2d_backward(dout, pool_cache)
    return ops.conv2d_backward(ops.relu_backward(ds, relu_cache), conv_cache, input_grad=input_grad)
