"""Normalization modules with torch.nn's arguments, parameters and buffers.

Parameters are "weight" (gamma) and "bias" (beta); batch norm's buffers are
"running_mean", "running_var" and "num_batches_tracked", as in PyTorch, so
state dicts match key for key.

Under a data-parallel shard (numcnn.nn.shard) batch norm in training is
synchronized, as torch.nn.SyncBatchNorm: the workers combine their partial
statistics and backward sums, so each computes its rows of what one worker
computes on the whole batch, and the running statistics end identical on
every worker. Without a shard, nothing of that runs.
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..checks import (
    finite_float,
    float_array,
    float_dtype,
    nonnegative_float,
    positive_float,
    positive_int,
    probability,
)
from .module import Module
from .shard import BatchShard, current_shard


def _momentum(momentum) -> float | None:
    """A running-statistics momentum: a probability, or None (batch norm's cumulative average)."""
    if momentum is None:
        return None
    try:
        return probability(momentum, "momentum")
    except ValueError:
        raise ValueError(f"momentum must be in [0, 1] or None (cumulative average), got {momentum!r}") from None


def sync_batch_statistics(partials: ops.BatchNormPartials, shard: BatchShard) -> tuple[int, np.ndarray, np.ndarray]:
    """The whole batch's values per channel M, mean (C,) and biased var (C,), in float64, from this
    worker's partials (ops.batchnorm_partial_stats): identical bits on every worker.

    ops.combine_partial_stats's formula. With shard.gather, one exchange: every worker's
    [m_r, mean_r, m2_r], combined by each worker in rank order. Without it, two rounds of
    shard.combine: [m_r, m_r * mean_r] -> M and mean; then m2_r + m_r * (mean_r - mean)^2 -> M2.
    Both add the same terms in the same order, so they give the same bits; var = M2 / M.
    """
    local_mean, local_m2 = np.asarray(partials.mean, np.float64), np.asarray(partials.m2, np.float64)
    if shard.gather is not None:
        C = local_mean.size
        rows = shard.gather(np.concatenate([[float(partials.count)], local_mean, local_m2]))
        whole = ops.combine_partial_stats(
            [ops.BatchNormPartials(int(round(r[0])), r[1 : C + 1], r[C + 1 :]) for r in rows]
        )
        return whole.count, whole.mean, whole.m2 / whole.count
    first = shard.combine(np.concatenate([[float(partials.count)], partials.count * local_mean]))
    count = int(round(float(first[0])))
    mean = first[1:] / count
    m2 = shard.combine(local_m2 + partials.count * np.square(local_mean - mean))
    return count, mean, m2 / count


def sync_backward_sums(sum_dout, sum_dout_xhat, shard: BatchShard) -> tuple[np.ndarray, np.ndarray]:
    """The whole batch's sum(dout) and sum(dout * xhat) (C,), in this worker's local scale.

    A worker's dout is 1 / fraction times its rows of the whole batch's
    (numcnn.nn.shard), so fraction * s_r is in the whole batch's scale;
    S = combine(fraction * s_r), returned as S / fraction, which
    ops.batchnorm_backward_with_sums turns into this worker's rows of dx in
    its local scale.
    """
    fraction = shard.fraction
    whole = shard.combine(np.stack([sum_dout, sum_dout_xhat]).astype(np.float64) * fraction)
    return whole[0] / fraction, whole[1] / fraction


def _shard_rows(x: np.ndarray, shard: BatchShard) -> None:
    if x.shape[0] != shard.rows:
        raise ValueError(f"x must hold the shard's {shard.rows} rows of the batch, got shape {x.shape}")


class _Affine(Module):
    """A norm with optional per-feature weight (ones) and bias (zeros)."""

    def _init_affine(self, shape, affine: bool, dtype, bias: bool = True):
        if affine:
            self.params["weight"] = np.ones(shape, dtype)
            if bias:
                self.params["bias"] = np.zeros(shape, dtype)


class _BatchNorm(_Affine):
    reads_batch_shard = True  # synchronized over the whole batch under numcnn.nn.shard (data parallelism)
    expected_ndim: tuple[int, ...] = ()

    def __init__(
        self,
        num_features,
        eps=1e-5,
        momentum=0.1,
        affine=True,
        track_running_stats=True,
        *,
        bias=True,
        dtype=np.float32,
    ):
        super().__init__()
        self.num_features = positive_int(num_features, "num_features")
        dtype = float_dtype(dtype)
        self.eps = positive_float(eps, "eps")
        self.momentum = _momentum(momentum)
        self.affine, self.track_running_stats = affine, track_running_stats
        self._init_affine((num_features,), affine, dtype, bias)
        if track_running_stats:
            self.buffers["running_mean"] = np.zeros(num_features, dtype)
            self.buffers["running_var"] = np.ones(num_features, dtype)
            self.buffers["num_batches_tracked"] = np.array(0, np.int64)

    def _factor(self, batches_tracked) -> float:
        """The weight of this batch in the running statistics, counting this batch."""
        if self.momentum is None:  # cumulative moving average over all batches so far
            return 1.0 / float(batches_tracked)
        return self.momentum

    def forward(self, x):
        x = float_array(x, "x", ndim=self.expected_ndim)
        if x.shape[1] != self.num_features:
            raise ValueError(f"x must have {self.num_features} channels (axis 1), got shape {x.shape}")
        shape = x.shape
        if x.ndim == 3:  # BatchNorm1d on (N, C, L)
            x = x[..., None]
        updating = self.training and self.track_running_stats
        batches = self.buffers["num_batches_tracked"] + 1 if updating else None
        shard = current_shard() if self.training or not self.track_running_stats else None
        if shard is not None:  # batch statistics of a batch split over workers
            out, cache, mean, var, count = self._synchronized_forward(x, shard, updating, batches)
        else:
            count = None
            out, cache, mean, var = ops.batchnorm_forward(
                x,
                self.params.get("weight"),
                self.params.get("bias"),
                self.buffers.get("running_mean"),
                self.buffers.get("running_var"),
                training=self.training,
                momentum=self._factor(batches) if updating else 0.0,
                eps=self.eps,
            )
        if updating:  # only once the op accepted x: a refused batch leaves the buffers as they were
            self.buffers["num_batches_tracked"] = batches
            dtype = self.buffers["running_mean"].dtype
            self.buffers["running_mean"] = mean.astype(dtype)
            self.buffers["running_var"] = var.astype(dtype)
        self._remember((cache, shape, None if shard is None else (shard, count)))
        return out.reshape(shape)

    def _synchronized_forward(self, x, shard: BatchShard, updating: bool, batches):
        """This worker's rows normalized with the whole batch's statistics; running statistics moved
        with the whole batch's count. Returns out, cache, new running mean and var, count."""
        _shard_rows(x, shard)
        count, mean, var = sync_batch_statistics(ops.batchnorm_partial_stats(x), shard)
        if count < 2:
            raise ValueError(f"batch norm in training needs more than 1 value per channel, got a batch of {count}")
        running = (self.buffers["running_mean"], self.buffers["running_var"]) if updating else (None, None)
        out, cache, mean, var = ops.batchnorm_forward_with_stats(
            x,
            self.params.get("weight"),
            self.params.get("bias"),
            mean,
            var,
            count,
            *running,
            momentum=self._factor(batches) if updating else 0.0,
            eps=self.eps,
        )
        return out, cache, mean, var, count

    def backward(self, dout):
        cache, shape, synchronized = self._recall()
        dout = np.asarray(dout).reshape(cache.input_shape)
        if synchronized is None:
            dx, dgamma, dbeta = ops.batchnorm_backward(dout, cache)
        else:  # dgamma and dbeta stay this worker's own (local scale): the gradient sum weights them
            shard, count = synchronized
            dbeta, dgamma = ops.batchnorm_backward_sums(dout, cache)
            whole_dout, whole_dout_xhat = sync_backward_sums(dbeta, dgamma, shard)
            dx = ops.batchnorm_backward_with_sums(dout, cache, whole_dout, whole_dout_xhat, count)
        self._set_grads(weight=dgamma, bias=dbeta)
        return dx.reshape(shape)

    def extra_repr(self):
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch norm of (N, C) or (N, C, L) per channel."""

    expected_ndim = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Spatial batch norm of (N, C, H, W): statistics over (N, H, W) per channel."""

    expected_ndim = (4,)


class LayerNorm(_Affine):
    """Normalizes over the last len(normalized_shape) axes, as torch.nn.LayerNorm."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, *, dtype=np.float32):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(positive_int(n, "normalized_shape") for n in normalized_shape)
        dtype = float_dtype(dtype)
        self.eps = positive_float(eps, "eps")
        self._init_affine(self.normalized_shape, elementwise_affine, dtype, bias)

    def forward(self, x):
        x = float_array(x, "x")
        k = len(self.normalized_shape)
        if x.shape[x.ndim - k :] != self.normalized_shape or x.ndim <= k:
            raise ValueError(f"x must have shape (N, ..., {', '.join(map(str, self.normalized_shape))}), got {x.shape}")
        rows = x.reshape((-1,) + self.normalized_shape)
        out, cache = ops.layernorm_forward(rows, self.params.get("weight"), self.params.get("bias"), self.eps)
        self._remember((cache, x.shape))
        return out.reshape(x.shape)

    def backward(self, dout):
        cache, shape = self._recall()
        dx, dgamma, dbeta = ops.layernorm_backward(np.asarray(dout).reshape(cache.input_shape), cache)
        self._set_grads(weight=dgamma, bias=dbeta)
        return dx.reshape(shape)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={'weight' in self.params}"


class GroupNorm(_Affine):
    """Normalizes each sample over groups of num_channels / num_groups channels."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, *, bias=True, dtype=np.float32):
        super().__init__()
        self.num_groups = positive_int(num_groups, "num_groups")
        self.num_channels = positive_int(num_channels, "num_channels")
        dtype = float_dtype(dtype)
        if num_channels % num_groups:
            raise ValueError(f"num_channels={num_channels} must be divisible by num_groups={num_groups}")
        self.eps = positive_float(eps, "eps")
        self._init_affine((num_channels,), affine, dtype, bias)

    def forward(self, x):
        out, cache = ops.groupnorm_forward(
            x, self.params.get("weight"), self.params.get("bias"), self.num_groups, self.eps
        )
        self._remember(cache)
        return out

    def backward(self, dout):
        dx, dgamma, dbeta = ops.groupnorm_backward(dout, self._recall())
        self._set_grads(weight=dgamma, bias=dbeta)
        return dx

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={'weight' in self.params}"


class InstanceNorm2d(_Affine):
    """Normalizes each sample's channel over (H, W). PyTorch's defaults: no affine, no running stats.

    With track_running_stats, training also updates running statistics as
    PyTorch does (the batch mean of the instances' means and unbiased
    variances), and evaluation normalizes with them instead.
    """

    def __init__(
        self,
        num_features,
        eps=1e-5,
        momentum=0.1,
        affine=False,
        track_running_stats=False,
        *,
        bias=True,
        dtype=np.float32,
    ):
        super().__init__()
        self.num_features = positive_int(num_features, "num_features")
        dtype = float_dtype(dtype)
        self.eps = positive_float(eps, "eps")
        self.momentum = _momentum(momentum)
        self.track_running_stats = track_running_stats
        self._init_affine((num_features,), affine, dtype, bias)
        if track_running_stats:
            self.buffers["running_mean"] = np.zeros(num_features, dtype)
            self.buffers["running_var"] = np.ones(num_features, dtype)
            self.buffers["num_batches_tracked"] = np.array(0, np.int64)

    def forward(self, x):
        x = float_array(x, "x", ndim=4)
        gamma, beta = self.params.get("weight"), self.params.get("bias")
        if self.track_running_stats and not self.training:
            out, cache, _, _ = ops.batchnorm_forward(
                x, gamma, beta, self.buffers["running_mean"], self.buffers["running_var"], training=False, eps=self.eps
            )
            self._remember(("running", cache))
            return out
        out, cache = ops.instancenorm_forward(x, gamma, beta, self.eps)
        if self.track_running_stats:  # after the op has checked x: a refused x changes nothing
            self._update_running_stats(x)
        self._remember(("instance", cache))
        return out

    def _update_running_stats(self, x):
        # As in PyTorch, num_batches_tracked stays 0 for instance norm, and momentum=None
        # (a cumulative average for batch norm) leaves the running statistics where they are
        m = x.shape[2] * x.shape[3]
        momentum = self.momentum if self.momentum is not None else 0.0
        means = x.mean(axis=(2, 3))
        unbiased = x.var(axis=(2, 3)) * (m / (m - 1))
        shard = current_shard()
        if shard is None:
            batch_values = (means.mean(axis=0), unbiased.mean(axis=0))
        else:  # the whole batch's means of the instances' statistics: sums over workers / total
            _shard_rows(x, shard)
            local = np.stack([means.sum(axis=0), unbiased.sum(axis=0)]).astype(np.float64)
            batch_values = shard.combine(local) / shard.total
        for key, batch_value in zip(("running_mean", "running_var"), batch_values):
            old = self.buffers[key]
            self.buffers[key] = ((1 - momentum) * old + momentum * batch_value).astype(old.dtype)

    def backward(self, dout):
        kind, cache = self._recall()
        backward = ops.batchnorm_backward if kind == "running" else ops.instancenorm_backward
        dx, dgamma, dbeta = backward(dout, cache)
        self._set_grads(weight=dgamma, bias=dbeta)
        return dx

    def extra_repr(self):
        return (
            f"{self.num_features}, eps={self.eps}, affine={'weight' in self.params}, "
            f"track_running_stats={self.track_running_stats}"
        )


class LocalResponseNorm(Module):
    """AlexNet's normalization across `size` neighbouring channels (PyTorch's definition)."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size = positive_int(size, "size")
        self.alpha, self.beta = nonnegative_float(alpha, "alpha"), finite_float(beta, "beta")
        self.k = positive_float(k, "k")

    def forward(self, x):
        out, cache = ops.local_response_norm_forward(x, self.size, self.alpha, self.beta, self.k)
        self._remember(cache)
        return out

    def backward(self, dout):
        return ops.local_response_norm_backward(dout, self._recall())

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
