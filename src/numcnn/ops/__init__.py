"""numcnn.ops: every layer as a pure forward/backward pair.

    out, cache = <op>_forward(x, ...)      dx, ... = <op>_backward(dout, cache)

The plain names are the fast (vectorized) versions; <op>_forward_naive and
<op>_backward_naive are loop versions with the same signatures that read
like the maths. Images are NCHW; dtype follows the input.

Each op family is one file here (linear, activation, loss, conv,
conv_transpose, pool (max) and avg_pool (average, global, adaptive), batchnorm,
norm, lrn, dropout); batchnorm_partial holds batch norm's partial sums for a
batch split over data-parallel workers. How the fast versions run (window
geometry, im2col and Winograd, memory layouts, threads, scratch buffers,
tuning constants, the scoped engine choice `engine.use`) lives beneath them in numcnn.ops.engine, which never imports
an op family.

Bad arguments raise ValueError with one line that starts with the
argument's name. Every numeric hyper-parameter is checked where it enters
(eps > 0 and finite, probabilities in [0, 1], finite slopes, kernel sizes,
strides and so on at least 1), NaN and inf included.

Empty batches are refused, the same way by every op, forward and
backward, fast and naive: x, dout or scores with N = 0 (or any other
zero-size axis) raises "x is an empty batch (shape (0, ...)); ...".
PyTorch would return empty outputs and NaN losses (a mean over no
samples); an empty batch in a CNN is almost always a slicing mistake, and
an error at the op that received it is easier to trace than a NaN.

Layer: the heart, imported by nn/, models/ and the side rooms. May import
numpy, numcnn.checks and its own engine modules (windows, Winograd, threads,
scratch buffers, the planner) only, and the planner's wisdom file numcnn.io
and numcnn.data's folder; never nn, models or anything above them.
"""

# the caches, NamedTuples a forward returns and its backward takes (for type hints and adapters)
from .activation import (
    ActivationCache,
    GeluCache,
    gelu_backward,
    gelu_backward_naive,
    gelu_forward,
    gelu_forward_naive,
    leaky_relu_backward,
    leaky_relu_backward_naive,
    leaky_relu_forward,
    leaky_relu_forward_naive,
    relu_backward,
    relu_backward_naive,
    relu_forward,
    relu_forward_naive,
)
from .avg_pool import (
    AdaptivePoolCache,
    adaptive_avg_pool2d_backward,
    adaptive_avg_pool2d_backward_naive,
    adaptive_avg_pool2d_forward,
    adaptive_avg_pool2d_forward_naive,
    avg_pool2d_backward,
    avg_pool2d_backward_naive,
    avg_pool2d_forward,
    avg_pool2d_forward_naive,
    global_avg_pool_backward,
    global_avg_pool_backward_naive,
    global_avg_pool_forward,
    global_avg_pool_forward_naive,
)
from .batchnorm import (
    NaiveBatchNormCache,
    batchnorm_backward,
    batchnorm_backward_naive,
    batchnorm_forward,
    batchnorm_forward_naive,
)
from .batchnorm_partial import (
    BatchNormPartials,
    batchnorm_backward_sums,
    batchnorm_backward_sums_naive,
    batchnorm_backward_with_sums,
    batchnorm_backward_with_sums_naive,
    batchnorm_forward_with_stats,
    batchnorm_forward_with_stats_naive,
    batchnorm_partial_stats,
    batchnorm_partial_stats_naive,
    combine_partial_stats,
)
from .conv import Conv2dCache, conv2d_backward, conv2d_backward_naive, conv2d_forward, conv2d_forward_naive
from .conv_transpose import (
    ConvTranspose2dCache,
    conv_transpose2d_backward,
    conv_transpose2d_backward_naive,
    conv_transpose2d_forward,
    conv_transpose2d_forward_naive,
)
from .dropout import (
    DropoutCache,
    dropout_backward,
    dropout_backward_naive,
    dropout_forward,
    dropout_forward_naive,
    dropout_forward_rows,
    dropout_forward_rows_naive,
)
from .linear import LinearCache, linear_backward, linear_backward_naive, linear_forward, linear_forward_naive
from .loss import log_softmax, softmax_loss, softmax_loss_naive, svm_loss, svm_loss_naive
from .lrn import (
    LRNCache,
    local_response_norm_backward,
    local_response_norm_backward_naive,
    local_response_norm_forward,
    local_response_norm_forward_naive,
)
from .norm import (
    NaiveNormCache,
    NormCache,
    groupnorm_backward,
    groupnorm_backward_naive,
    groupnorm_forward,
    groupnorm_forward_naive,
    instancenorm_backward,
    instancenorm_backward_naive,
    instancenorm_forward,
    instancenorm_forward_naive,
    layernorm_backward,
    layernorm_backward_naive,
    layernorm_forward,
    layernorm_forward_naive,
)
from .pool import (
    PoolCache,
    max_pool2d_backward,
    max_pool2d_backward_naive,
    max_pool2d_forward,
    max_pool2d_forward_naive,
)

__all__ = [name for name in dir() if name.endswith(("_forward", "_backward", "_naive", "_loss", "Cache"))] + [
    "log_softmax",
    "BatchNormPartials",
    "batchnorm_partial_stats",
    "combine_partial_stats",
    "batchnorm_backward_sums",
    "batchnorm_backward_with_sums",
    "dropout_forward_rows",
]
