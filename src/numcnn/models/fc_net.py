"""The CS231n assignment's fully connected networks, with its API and conventions.

Both follow the Solver protocol: `params` (name -> array), and `loss(X, y=None)`
that returns class scores when y is None, else (loss, grads) with the L2
term 0.5 * reg * sum(W**2) over the weight matrices only. label_smoothing
(numcnn's, 0 by default) mixes the one-hot targets with the uniform
distribution, as in ops.softmax_loss. Weights are drawn
from np.random in the assignment's order (W1, W2, ...), so a seeded run
matches the assignment's.

Both split over data-parallel workers (numcnn.nn.shard): TwoLayerNet has
nothing that couples the rows of a batch; FullyConnectedNet's batch norm
and dropout, given a current shard in training, compute this worker's rows
of what one worker computes on the whole batch (see _synchronized_bn_relu_*
and _shard_dropout_forward below).
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..nn.norm import sync_backward_sums, sync_batch_statistics
from ..nn.shard import BatchShard, current_shard
from ..ops import DropoutCache
from . import cs231n_layers as L
from .params_state import ParamsState, assignment_rebuilder
from .registry import register_rebuilder


def smoothing_config(label_smoothing: float) -> dict:
    """The label_smoothing entry of an assignment model's config: none at 0, so that the
    configs (and checkpoints) of models without it stay the assignment's."""
    return {"label_smoothing": label_smoothing} if label_smoothing else {}


def _synchronized_bn_relu_forward(x, W, b, gamma, beta, bn_param, shard: BatchShard):
    """affine - batch norm with the whole batch's statistics - relu, for this worker's rows.

    bn_param's running statistics move as the assignment's do (momentum *
    running + (1 - momentum) * batch, biased variance: cs231n_layers), with
    the whole batch's mean and variance, identical on every worker.
    """
    a, fc_cache = ops.linear_forward(x, W, b)
    count, mean, var = sync_batch_statistics(ops.batchnorm_partial_stats(a), shard)
    eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    n, bn_cache, _, _ = ops.batchnorm_forward_with_stats(a, gamma, beta, mean, var, count, None, None, eps=eps)
    for key, batch_value in (("running_mean", mean), ("running_var", var)):
        running = bn_param.get(key, np.zeros(a.shape[1], a.dtype))
        updated = momentum * running + (1 - momentum) * batch_value
        bn_param[key] = updated.astype(np.result_type(running, a), copy=False)
    out, relu_cache = ops.relu_forward(n)
    return out, (fc_cache, bn_cache, relu_cache, shard, count)


def _synchronized_bn_relu_backward(dout, cache):
    """dx (local scale, like dout), dW, db, dgamma, dbeta: the batch-norm sums are the whole batch's
    (nn.norm.sync_backward_sums); the parameter gradients are this worker's own."""
    fc_cache, bn_cache, relu_cache, shard, count = cache
    dn = ops.relu_backward(dout, relu_cache)
    dbeta, dgamma = ops.batchnorm_backward_sums(dn, bn_cache)
    whole_dout, whole_dout_xhat = sync_backward_sums(dbeta, dgamma, shard)
    dn = ops.batchnorm_backward_with_sums(dn, bn_cache, whole_dout, whole_dout_xhat, count)
    dx, dW, db = ops.linear_backward(dn, fc_cache)
    return dx, dW, db, dgamma, dbeta


def _shard_dropout_forward(x, dropout_param, shard: BatchShard, random=None):
    """The assignment's dropout (cs231n_layers.dropout_forward) for rows [start, stop) of the batch.

    The mask is drawn for the whole batch, random.rand(total, ...) in C order
    after random.seed(seed) if one is set, and this worker keeps its rows:
    one worker's mask and advance of the generator, whatever the split.
    random: a np.random.RandomState, or None for np.random's global one.
    """
    random = np.random if random is None else random
    p = dropout_param["p"]
    if "seed" in dropout_param:
        random.seed(dropout_param["seed"])
    draws = random.rand(shard.total, *x.shape[1:])[shard.start : shard.stop]
    mask = ((draws < p) / p).astype(x.dtype, copy=False)
    return x * mask, DropoutCache(mask)


class TwoLayerNet(ParamsState):
    """affine - relu - affine - softmax. Parameters W1 (D, H), b1, W2 (H, C), b2."""

    def __init__(
        self, input_dim=3 * 32 * 32, hidden_dim=100, num_classes=10, weight_scale=1e-3, reg=0.0, label_smoothing=0.0
    ):
        self.reg = reg
        self.label_smoothing = label_smoothing
        self.config = dict(
            input_dim=input_dim,
            hidden_dim=hidden_dim,
            num_classes=num_classes,
            weight_scale=weight_scale,
            reg=reg,
            **smoothing_config(label_smoothing),
        )
        self.params = {
            "W1": weight_scale * np.random.randn(input_dim, hidden_dim),
            "b1": np.zeros(hidden_dim),
            "W2": weight_scale * np.random.randn(hidden_dim, num_classes),
            "b2": np.zeros(num_classes),
        }

    def loss(self, X, y=None):
        hidden, hidden_cache = L.affine_relu_forward(X, self.params["W1"], self.params["b1"])
        scores, scores_cache = ops.linear_forward(hidden, self.params["W2"], self.params["b2"])
        if y is None:
            return scores
        loss, dscores = ops.softmax_loss(scores, y, label_smoothing=self.label_smoothing)
        loss += 0.5 * self.reg * (np.sum(self.params["W1"] ** 2) + np.sum(self.params["W2"] ** 2))
        dhidden, dW2, db2 = ops.linear_backward(dscores, scores_cache)
        _, dW1, db1 = L.affine_relu_backward(dhidden, hidden_cache)
        grads = {
            "W1": dW1 + self.reg * self.params["W1"],
            "b1": db1,
            "W2": dW2 + self.reg * self.params["W2"],
            "b2": db2,
        }
        return loss, grads


class FullyConnectedNet(ParamsState):
    """{affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax.

    hidden_dims: sizes of the hidden layers. dropout_keep_ratio: probability
    of keeping a unit (1 = no dropout). normalization: None, 'batchnorm' or
    'layernorm' (parameters gamma1, beta1, ...). seed: fixes dropout masks,
    as in the assignment (for gradient checks).

    shard_random: the np.random.RandomState its dropout draws from under a
    data-parallel shard; None (the default) is np.random's global generator,
    as without workers. Worker threads share that one generator, so a
    threads-backed worker gives its replica its own, set to the root's state
    at each step.
    """

    shard_random: np.random.RandomState | None = None
    reads_batch_shard = True  # its batch norm and dropout honour numcnn.nn.shard (data parallelism)

    def __init__(
        self,
        hidden_dims,
        input_dim=3 * 32 * 32,
        num_classes=10,
        dropout_keep_ratio=1,
        normalization=None,
        reg=0.0,
        weight_scale=1e-2,
        dtype=np.float32,
        seed=None,
        label_smoothing=0.0,
    ):
        if normalization not in (None, "batchnorm", "layernorm"):
            raise ValueError(f"normalization must be None, 'batchnorm' or 'layernorm', got {normalization!r}")
        self.config = dict(
            hidden_dims=list(hidden_dims),
            input_dim=input_dim,
            num_classes=num_classes,
            dropout_keep_ratio=dropout_keep_ratio,
            normalization=normalization,
            reg=reg,
            weight_scale=weight_scale,
            dtype=np.dtype(dtype).name,
            seed=seed,
            **smoothing_config(label_smoothing),
        )
        self.normalization = normalization
        self.label_smoothing = label_smoothing
        self.use_dropout = dropout_keep_ratio != 1
        self.reg = reg
        self.num_layers = 1 + len(hidden_dims)
        self.dtype = dtype
        self.params = {}
        dims = [input_dim] + list(hidden_dims) + [num_classes]
        for i in range(self.num_layers):
            self.params[f"W{i + 1}"] = weight_scale * np.random.randn(dims[i], dims[i + 1])
            self.params[f"b{i + 1}"] = np.zeros(dims[i + 1])
            if normalization and i < self.num_layers - 1:
                self.params[f"gamma{i + 1}"] = np.ones(dims[i + 1])
                self.params[f"beta{i + 1}"] = np.zeros(dims[i + 1])
        self.dropout_param = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout_keep_ratio}
            if seed is not None:
                self.dropout_param["seed"] = seed
        self.bn_params = []
        if normalization == "batchnorm":
            # the assignment's running statistics start at zero; made here so checkpoints always hold them
            self.bn_params = [
                {"mode": "train", "running_mean": np.zeros(d, dtype), "running_var": np.zeros(d, dtype)}
                for d in hidden_dims
            ]
        elif normalization == "layernorm":
            self.bn_params = [{} for _ in range(self.num_layers - 1)]
        for key, value in self.params.items():
            self.params[key] = value.astype(dtype)

    def loss(self, X, y=None):
        X = np.asarray(X).astype(self.dtype)
        mode = "test" if y is None else "train"
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        if self.normalization == "batchnorm":
            for bn_param in self.bn_params:
                bn_param["mode"] = mode
        shard = current_shard() if mode == "train" else None
        if shard is not None and X.shape[0] != shard.rows:
            raise ValueError(f"X must hold the shard's {shard.rows} rows of the batch, got shape {X.shape}")
        caches, hidden = [], X
        for i in range(1, self.num_layers):
            hidden, cache = self._hidden_forward(hidden, i, shard)
            caches.append(cache)
        scores, scores_cache = ops.linear_forward(
            hidden, self.params[f"W{self.num_layers}"], self.params[f"b{self.num_layers}"]
        )
        if mode == "test":
            return scores
        loss, dscores = ops.softmax_loss(scores, y, label_smoothing=self.label_smoothing)
        grads = {}
        dhidden, grads[f"W{self.num_layers}"], grads[f"b{self.num_layers}"] = ops.linear_backward(dscores, scores_cache)
        for i in range(self.num_layers - 1, 0, -1):
            dhidden = self._hidden_backward(dhidden, caches[i - 1], i, grads)
        for i in range(1, self.num_layers + 1):
            W = self.params[f"W{i}"]
            loss += 0.5 * self.reg * np.sum(W * W)
            grads[f"W{i}"] = grads[f"W{i}"] + self.reg * W
        return loss, grads

    def _hidden_forward(self, x, i, shard: BatchShard | None = None):
        W, b = self.params[f"W{i}"], self.params[f"b{i}"]
        if self.normalization == "batchnorm" and shard is not None:
            out, cache = _synchronized_bn_relu_forward(
                x, W, b, self.params[f"gamma{i}"], self.params[f"beta{i}"], self.bn_params[i - 1], shard
            )
        elif self.normalization == "batchnorm":
            out, cache = L.affine_bn_relu_forward(
                x, W, b, self.params[f"gamma{i}"], self.params[f"beta{i}"], self.bn_params[i - 1]
            )
        elif self.normalization == "layernorm":
            out, cache = L.affine_ln_relu_forward(
                x, W, b, self.params[f"gamma{i}"], self.params[f"beta{i}"], self.bn_params[i - 1]
            )
        else:
            out, cache = L.affine_relu_forward(x, W, b)
        dropout_cache = None
        if self.use_dropout and shard is not None:
            out, dropout_cache = _shard_dropout_forward(out, self.dropout_param, shard, self.shard_random)
        elif self.use_dropout:
            out, dropout_cache = L.dropout_forward(out, self.dropout_param)
        return out, (cache, dropout_cache, shard)

    def _hidden_backward(self, dout, caches, i, grads):
        cache, dropout_cache, shard = caches
        if dropout_cache is not None:
            dout = L.dropout_backward(dout, dropout_cache)
        if self.normalization == "batchnorm" and shard is not None:
            dx, grads[f"W{i}"], grads[f"b{i}"], grads[f"gamma{i}"], grads[f"beta{i}"] = _synchronized_bn_relu_backward(
                dout, cache
            )
        elif self.normalization == "batchnorm":
            dx, grads[f"W{i}"], grads[f"b{i}"], grads[f"gamma{i}"], grads[f"beta{i}"] = L.affine_bn_relu_backward(
                dout, cache
            )
        elif self.normalization == "layernorm":
            dx, grads[f"W{i}"], grads[f"b{i}"], grads[f"gamma{i}"], grads[f"beta{i}"] = L.affine_ln_relu_backward(
                dout, cache
            )
        else:
            dx, grads[f"W{i}"], grads[f"b{i}"] = L.affine_relu_backward(dout, cache)
        return dx


register_rebuilder("TwoLayerNet", assignment_rebuilder(TwoLayerNet))
register_rebuilder("FullyConnectedNet", assignment_rebuilder(FullyConnectedNet))
