# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Batch norm from scratch, and a residual block
#
# Two ideas made deep convolutional networks trainable in practice: batch normalization (Ioffe and Szegedy,
# 2015) and residual connections (He et al., 2016). This notebook builds the first by hand in NumPy, checks it
# against numcnn's op and module, derives and checks its backward pass, then looks at a residual block and
# trains a small ResNet on handwritten digits with and without batch norm.
#
# Every claim below is checked with an `assert`, so the page stops building if numcnn's behaviour changes.
# Built for the site (`NUMCNN_DOCS_SHORT=1`) the training runs are short; run as a notebook they are longer.

# %%
import numcnn  # before NumPy: it sets how long OpenBLAS's idle threads spin, read when NumPy loads

# isort: split
# %matplotlib inline
import os

import matplotlib.pyplot as plt
import numpy as np

from numcnn import nn, ops
from numcnn.data import load_digits, to_float_nchw, train_val_split
from numcnn.gradcheck import eval_numerical_gradient_array, rel_error
from numcnn.models import Classifier
from numcnn.train import Solver

SHORT = os.environ.get("NUMCNN_DOCS_SHORT") == "1"  # short training runs: the site's build and the tests
rng = np.random.default_rng(0)
print("numcnn", numcnn.__version__, "| short build" if SHORT else "| full size")

# %% [markdown]
# ## Batch normalization, forward
#
# A batch norm layer standardizes each feature with the statistics of the current mini-batch, then lets the
# network choose the scale and shift it wants back. For one feature (one channel) with values $x_1, \dots, x_m$
# in the batch:
#
# $$
# \mu_B = \frac{1}{m}\sum_{i=1}^m x_i, \qquad
# \sigma_B^2 = \frac{1}{m}\sum_{i=1}^m (x_i - \mu_B)^2, \qquad
# \hat x_i = \frac{x_i - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}, \qquad
# y_i = \gamma \hat x_i + \beta .
# $$
#
# For a fully connected layer's output `(N, D)` a feature is a column and $m = N$. For a convolution's output
# `(N, C, H, W)` a feature is a channel: the statistics run over the batch *and* both spatial axes,
# $m = N H W$, so one channel gets one scale and one shift wherever in the image it fires.
#
# At test time there may be a single image, and a prediction should not depend on which other images share its
# batch. So during training the layer keeps running averages of the batch statistics and uses them, as
# constants, in evaluation mode. numcnn follows PyTorch's conventions for them: with momentum $\rho = 0.1$,
#
# $$
# \hat\mu \leftarrow (1 - \rho)\,\hat\mu + \rho\,\mu_B, \qquad
# \hat\sigma^2 \leftarrow (1 - \rho)\,\hat\sigma^2 + \rho\,\frac{m}{m - 1}\,\sigma_B^2,
# $$
#
# starting from $\hat\mu = 0$, $\hat\sigma^2 = 1$. The running variance is the unbiased estimate, while the
# batch itself is normalized with the biased one. (Some from-scratch versions, the CS231n assignment's among
# them, write the momentum the other way round, as the weight of the *old* value, 0.9, start from zero and
# keep the biased variance. The idea is the same; the numbers differ.)
#
# Here it is, for both shapes, in plain NumPy:


# %%
def batch_norm(X, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """X (N, D) or (N, C, H, W); gamma, beta, running_mean, running_var (D,) or (C,).

    Returns Y (like X) and the new running mean and variance (the arrays passed in are not changed)."""
    axes = (0,) if X.ndim == 2 else (0, 2, 3)  # everything but the feature axis
    shape = (1, -1) + (1,) * (X.ndim - 2)  # broadcast a (C,) vector over X
    if training:
        mean, var = X.mean(axis=axes), X.var(axis=axes)  # var: the biased estimate, divided by m
        m = X.size // X.shape[1]
        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var = (1 - momentum) * running_var + momentum * var * m / (m - 1)
    else:
        mean, var = running_mean, running_var
    X_hat = (X - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    return gamma.reshape(shape) * X_hat + beta.reshape(shape), running_mean, running_var


# %% [markdown]
# A batch of 8 images with 3 channels, each channel with its own mean and spread, and random $\gamma$ and
# $\beta$. In training mode every output channel has mean $\beta$ and standard deviation $|\gamma|$ (times
# $\sigma_B / \sqrt{\sigma_B^2 + \epsilon}$, which the $\epsilon$ keeps just below 1), whatever the input's
# statistics were.

# %%
N, C, H, W = 8, 3, 5, 5
true_std, true_mean = np.array([1.0, 3.0, 0.2]), np.array([5.0, -2.0, 0.5])
X = rng.standard_normal((N, C, H, W)) * true_std[:, None, None] + true_mean[:, None, None]
gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
running_mean, running_var = np.zeros(C), np.ones(C)

Y, new_mean, new_var = batch_norm(X, gamma, beta, running_mean, running_var, training=True)
print("input  mean per channel:", X.mean(axis=(0, 2, 3)).round(3), " std:", X.std(axis=(0, 2, 3)).round(3))
print("output mean per channel:", Y.mean(axis=(0, 2, 3)).round(3), " std:", Y.std(axis=(0, 2, 3)).round(3))
print("beta:", beta.round(3), " |gamma|:", np.abs(gamma).round(3))
np.testing.assert_allclose(Y.mean(axis=(0, 2, 3)), beta, atol=1e-12)
batch_var = X.var(axis=(0, 2, 3))
np.testing.assert_allclose(Y.std(axis=(0, 2, 3)), np.abs(gamma) * np.sqrt(batch_var / (batch_var + 1e-5)), rtol=1e-10)

# %% [markdown]
# ### Against numcnn's op and module
#
# `numcnn.ops.batchnorm_forward` takes the same arguments and, being a pure function, returns the new running
# statistics rather than writing them into its arguments. It should agree with the hand-written version to
# rounding, in training mode and in evaluation mode, for both shapes.

# %%
out, cache, ops_mean, ops_var = ops.batchnorm_forward(X, gamma, beta, running_mean, running_var, training=True)
print("train mode, (N, C, H, W): output", rel_error(out, Y), " running mean", rel_error(ops_mean, new_mean))
np.testing.assert_allclose(out, Y, rtol=1e-12, atol=1e-12)
np.testing.assert_allclose(ops_mean, new_mean, rtol=1e-12)
np.testing.assert_allclose(ops_var, new_var, rtol=1e-12)
assert np.array_equal(running_mean, np.zeros(C)) and np.array_equal(running_var, np.ones(C))  # untouched

Y_eval, _, _ = batch_norm(X, gamma, beta, new_mean, new_var, training=False)
out_eval, _, same_mean, same_var = ops.batchnorm_forward(X, gamma, beta, new_mean, new_var, training=False)
print("eval mode:  output", rel_error(out_eval, Y_eval))
np.testing.assert_allclose(out_eval, Y_eval, rtol=1e-12, atol=1e-12)
assert np.array_equal(same_mean, new_mean) and np.array_equal(same_var, new_var)  # evaluation leaves them

X2 = rng.standard_normal((16, 4)) * 2 + 1  # a fully connected layer's output, (N, D)
g2, b2 = rng.standard_normal(4), rng.standard_normal(4)
Y2, m2, v2 = batch_norm(X2, g2, b2, np.zeros(4), np.ones(4), training=True)
out2, _, om2, ov2 = ops.batchnorm_forward(X2, g2, b2, np.zeros(4), np.ones(4), training=True)
print("train mode, (N, D):       output", rel_error(out2, Y2))
np.testing.assert_allclose(out2, Y2, rtol=1e-12, atol=1e-12)
np.testing.assert_allclose(om2, m2, rtol=1e-12)
np.testing.assert_allclose(ov2, v2, rtol=1e-12)

# %% [markdown]
# In evaluation mode after a single training step the output is far from standardized: the running averages
# have moved only a tenth of the way from $(0, 1)$ towards the data's statistics.

# %%
print("eval output mean per channel after one step:", Y_eval.mean(axis=(0, 2, 3)).round(2))
assert np.abs(Y_eval.mean(axis=(0, 2, 3)) - beta).max() > 0.5

# %% [markdown]
# `numcnn.nn.BatchNorm2d` is the stateful module over the op, with torch.nn's name, arguments and
# initialization ($\gamma = 1$, $\beta = 0$, running mean 0, running variance 1). Its $\gamma$ and $\beta$ are
# the parameters `weight` and `bias`; the running statistics are buffers that each training-mode forward
# updates. Give it the same random $\gamma$ and $\beta$ and it should match too.

# %%
bn = nn.BatchNorm2d(C, dtype=np.float64)
bn.params["weight"][:] = gamma
bn.params["bias"][:] = beta
Y_module = bn(X)  # a module starts in training mode
print(bn, {name: value.round(3).tolist() for name, value in bn.buffers.items()})
np.testing.assert_allclose(Y_module, Y, rtol=1e-12, atol=1e-12)
np.testing.assert_allclose(bn.buffers["running_mean"], new_mean, rtol=1e-12)
np.testing.assert_allclose(bn.buffers["running_var"], new_var, rtol=1e-12)
assert int(bn.buffers["num_batches_tracked"]) == 1

bn.eval()
np.testing.assert_allclose(bn(X), Y_eval, rtol=1e-12, atol=1e-12)
bn.train()

# %% [markdown]
# ### The running averages converge
#
# Feed the module 60 batches drawn from one distribution. With momentum 0.1 the running mean forgets its start
# geometrically, as $0.9^t$: after 60 steps the remaining weight on the starting value is about 0.002, and the
# estimates sit at the data's mean and variance up to the noise of the last batches. Evaluation mode then
# standardizes new data almost as well as the batch statistics do.

# %%
bn = nn.BatchNorm2d(C, dtype=np.float64)
history = []
for _ in range(60):
    batch = rng.standard_normal((N, C, H, W)) * true_std[:, None, None] + true_mean[:, None, None]
    bn(batch)
    history.append(bn.buffers["running_mean"].copy())
history = np.array(history)

fig, ax = plt.subplots(figsize=(6, 3))
for c in range(C):
    ax.plot(history[:, c], label=f"channel {c}")
    ax.axhline(true_mean[c], color=f"C{c}", ls=":", lw=1)
ax.set(xlabel="training step", ylabel="running mean", title="Running means approach the data's means (dotted)")
ax.legend()
plt.show()

print("running mean:", bn.buffers["running_mean"].round(3), " true:", true_mean)
print("running var: ", bn.buffers["running_var"].round(3), " true:", true_std**2)
np.testing.assert_allclose(bn.buffers["running_mean"], true_mean, atol=0.1)
np.testing.assert_allclose(bn.buffers["running_var"], true_std**2, rtol=0.2)
bn.eval()
fresh = rng.standard_normal((N, C, H, W)) * true_std[:, None, None] + true_mean[:, None, None]
standardized = bn(fresh)
print("eval-mode output on new data: mean", standardized.mean(axis=(0, 2, 3)).round(2))
print("                              std ", standardized.std(axis=(0, 2, 3)).round(2))
assert np.abs(standardized.mean(axis=(0, 2, 3))).max() < 0.2
assert np.abs(standardized.std(axis=(0, 2, 3)) - 1).max() < 0.2

# %% [markdown]
# ## Batch normalization, backward
#
# In training mode every output of a channel depends on every input of that channel, through $\mu_B$ and
# $\sigma_B$. Write $g_i = \partial L / \partial y_i$ for the upstream gradient. The parameters are easy:
#
# $$
# \frac{\partial L}{\partial \gamma} = \sum_i g_i \hat x_i, \qquad \frac{\partial L}{\partial \beta} = \sum_i g_i .
# $$
#
# For the input, differentiate $\hat x_i$ with respect to each $x_j$, using $\partial\mu_B/\partial x_j = 1/m$
# and $\partial\sigma_B^2/\partial x_j = 2(x_j - \mu_B)/m$, and collect terms. With
# $s = 1/\sqrt{\sigma_B^2 + \epsilon}$:
#
# $$
# \frac{\partial L}{\partial x_i} = \frac{\gamma s}{m}\Big(m\, g_i - \sum_j g_j - \hat x_i \sum_j g_j \hat x_j\Big).
# $$
#
# The two sums remove from the gradient its component along the constant vector and along $\hat x$: the
# directions that the normalization itself cancels, since shifting or scaling a channel's inputs does not change
# its $\hat x$. In evaluation mode the statistics are constants and the layer is an affine map:
# $\partial L / \partial x_i = \gamma\, s\, g_i$ with $s$ from the running variance.


# %%
def batch_norm_backward(dY, X, gamma, eps=1e-5):
    """Training mode: dY and X (N, D) or (N, C, H, W) -> dX, dgamma, dbeta."""
    axes = (0,) if X.ndim == 2 else (0, 2, 3)
    shape = (1, -1) + (1,) * (X.ndim - 2)
    m = X.size // X.shape[1]
    s = 1 / np.sqrt(X.var(axis=axes) + eps)
    X_hat = (X - X.mean(axis=axes).reshape(shape)) * s.reshape(shape)
    dgamma, dbeta = (dY * X_hat).sum(axis=axes), dY.sum(axis=axes)
    dX = (gamma * s).reshape(shape) / m * (m * dY - dbeta.reshape(shape) - X_hat * dgamma.reshape(shape))
    return dX, dgamma, dbeta


dY = rng.standard_normal(X.shape)
dX, dgamma, dbeta = batch_norm_backward(dY, X, gamma)

# centred differences of the hand-written forward pass, one input at a time
forward = lambda X_, gamma_, beta_: batch_norm(X_, gamma_, beta_, running_mean, running_var, training=True)[0]
dX_num = eval_numerical_gradient_array(lambda v: forward(v, gamma, beta), X, dY)
dgamma_num = eval_numerical_gradient_array(lambda v: forward(X, v, beta), gamma, dY)
dbeta_num = eval_numerical_gradient_array(lambda v: forward(X, gamma, v), beta, dY)
errors = {"dX": rel_error(dX, dX_num), "dgamma": rel_error(dgamma, dgamma_num), "dbeta": rel_error(dbeta, dbeta_num)}
print("against numerical gradients:", {name: f"{error:.1e}" for name, error in errors.items()})
# dX's error is the largest: its entries nearly cancel (they sum to zero per channel), and the channel with a
# standard deviation of 0.2 amplifies the centred differences' rounding
assert errors["dX"] < 1e-5 and errors["dgamma"] < 1e-8 and errors["dbeta"] < 1e-8

ops_dX, ops_dgamma, ops_dbeta = ops.batchnorm_backward(dY, cache)
print("against ops.batchnorm_backward: dX", rel_error(dX, ops_dX), " dgamma", rel_error(dgamma, ops_dgamma))
assert max(rel_error(dX, ops_dX), rel_error(dgamma, ops_dgamma), rel_error(dbeta, ops_dbeta)) < 1e-10

# %% [markdown]
# The batch-norm gradient of a channel sums to zero, and (with $\epsilon = 0$) is orthogonal to $\hat x$: it has
# no component along the two directions the normalization cancels. ($\epsilon > 0$ leaves a component of
# relative size $\epsilon / (\sigma_B^2 + \epsilon)$ along $\hat x$.)

# %%
dX0, _, _ = batch_norm_backward(dY, X, gamma, eps=0.0)
X_hat0 = (X - X.mean(axis=(0, 2, 3), keepdims=True)) / X.std(axis=(0, 2, 3), keepdims=True)
print("sum of dX per channel:        ", dX0.sum(axis=(0, 2, 3)))
print("sum of dX * x_hat per channel:", (dX0 * X_hat0).sum(axis=(0, 2, 3)))
assert np.abs(dX0.sum(axis=(0, 2, 3))).max() < 1e-12 and np.abs(dX.sum(axis=(0, 2, 3))).max() < 1e-12
assert np.abs((dX0 * X_hat0).sum(axis=(0, 2, 3))).max() < 1e-12

# %% [markdown]
# In evaluation mode the op's backward is the plain scale, and the module's `backward` fills its `grads` with
# the same numbers as the op.

# %%
_, eval_cache, _, _ = ops.batchnorm_forward(X, gamma, beta, new_mean, new_var, training=False)
eval_dX = ops.batchnorm_backward(dY, eval_cache)[0]
np.testing.assert_allclose(eval_dX, dY * (gamma / np.sqrt(new_var + 1e-5))[:, None, None], rtol=1e-12)

bn = nn.BatchNorm2d(C, dtype=np.float64)
bn.params["weight"][:], bn.params["bias"][:] = gamma, beta
bn(X)
module_dX = bn.backward(dY)
print(
    "module: dX",
    rel_error(module_dX, dX),
    " dweight",
    rel_error(bn.grads["weight"], dgamma),
    " dbias",
    rel_error(bn.grads["bias"], dbeta),
)
assert max(rel_error(module_dX, dX), rel_error(bn.grads["weight"], dgamma), rel_error(bn.grads["bias"], dbeta)) < 1e-10

# %% [markdown]
# ## A residual block
#
# A residual block computes $y = \mathrm{ReLU}\big(g(x) + x\big)$: the layers in the body $g$ only have to
# learn the *change* to their input, and the identity path carries both the signal forward and the gradient
# backward unchanged, since $\partial (g(x) + x)/\partial x = g'(x) + I$. A block that should do nothing only
# has to drive its weights towards zero.
#
# The body here is conv 3x3 - batch norm - ReLU - conv 3x3 - batch norm. When the body changes the shape (a
# stride of 2 halves the height and width, or the channel count changes), $x$ cannot be added as it is; a
# 1x1 convolution with the same stride, followed by batch norm, projects it onto the new shape.
# `nn.Residual.block(in_channels, out_channels, stride)` builds this block and adds the projection exactly
# when it is needed; `nn.Residual(body, shortcut)` takes any body and shortcut.

# %%
nn.manual_seed(0)
X = rng.standard_normal((4, 3, 6, 6)).astype(np.float32)

same = nn.Residual.block(3, 3)
print(same)
print("identity shortcut:", not same.has_shortcut, "| in", X.shape, "-> out", same(X).shape)
assert not same.has_shortcut and same(X).shape == (4, 3, 6, 6)

# %%
down = nn.Residual.block(3, 6, stride=2)
print(down)
print("body:", down.body(X).shape, " shortcut:", down.shortcut(X).shape, " block:", down(X).shape)
assert down.has_shortcut and down(X).shape == down.body(X).shape == down.shortcut(X).shape == (4, 6, 3, 3)

# %% [markdown]
# Without the projection the two paths cannot be added, and the module says why:

# %%
body = nn.Sequential(nn.Conv2d(3, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6))
try:
    nn.Residual(body)(X)
    raise AssertionError("a block whose body changes the shape needs a shortcut")
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# The block's backward pass adds the gradients of the two paths. A gradient check in float64, for the input
# and for the shortcut's 1x1 weights, confirms it:

# %%
block = nn.Residual.block(3, 6, stride=2, dtype=np.float64)
X64 = rng.standard_normal((2, 3, 6, 6))
dout = rng.standard_normal((2, 6, 3, 3))
block(X64)
dX = block.backward(dout)
projection = block.shortcut[0]
dW_shortcut = projection.grads["weight"]

dX_num = eval_numerical_gradient_array(block, X64, dout)
dW_num = eval_numerical_gradient_array(lambda _: block(X64), projection.params["weight"], dout)
print("dX error:", rel_error(dX, dX_num), " shortcut dW error:", rel_error(dW_shortcut, dW_num))
assert rel_error(dX, dX_num) < 1e-6 and rel_error(dW_shortcut, dW_num) < 1e-6

# %% [markdown]
# ## A tiny ResNet, with and without batch norm
#
# Now a small network for the 8x8 handwritten digits that ship with scikit-learn: a 3x3 convolution stem, three
# residual blocks (the second halves the resolution and doubles the channels), global average pooling and a
# linear classifier. One switch removes every batch norm (the convolutions then get biases), leaving the
# residual connections in place.


# %%
def residual_block(in_channels, out_channels, stride, batch_norm):
    """conv3x3-(BN)-ReLU-conv3x3-(BN), with a 1x1 conv-(BN) shortcut where the shape changes."""
    norm = lambda channels: [nn.BatchNorm2d(channels)] if batch_norm else []
    body = nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=not batch_norm),
        *norm(out_channels),
        nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=not batch_norm),
        *norm(out_channels),
    )
    shortcut = None
    if stride != 1 or in_channels != out_channels:
        shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=not batch_norm), *norm(out_channels)
        )
    return nn.Residual(body, shortcut)


def tiny_resnet(batch_norm, width):
    """(N, 1, 8, 8) digits -> (N, 10) scores."""
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1, bias=not batch_norm),
        *([nn.BatchNorm2d(width)] if batch_norm else []),
        nn.ReLU(),
        residual_block(width, width, 1, batch_norm),
        residual_block(width, 2 * width, 2, batch_norm),
        residual_block(2 * width, 2 * width, 1, batch_norm),
        nn.GlobalAvgPool2d(),
        nn.Flatten(),
        nn.Linear(2 * width, 10),
    )


WIDTH, EPOCHS = (8, 2) if SHORT else (16, 10)
nn.manual_seed(0)
print(tiny_resnet(True, WIDTH))

# %% [markdown]
# The digits as `(N, 1, 8, 8)` floats, standardized with the training set's mean and standard deviation, with
# 15% of the training images held out for validation.

# %%
X_train, y_train, X_test, y_test, classes = load_digits()
X_train, y_train, X_val, y_val = train_val_split(X_train, y_train, 0.15, seed=0)
X_train, X_val, X_test = (to_float_nchw(images) for images in (X_train, X_val, X_test))
mean, std = X_train.mean(), X_train.std()
data = {"X_train": (X_train - mean) / std, "y_train": y_train, "X_val": (X_val - mean) / std, "y_val": y_val}
X_test = (X_test - mean) / std
print({name: array.shape for name, array in data.items()})

# %% [markdown]
# Before training, follow the signal. With torch.nn's default initialization (numcnn uses the same) each
# convolution shrinks the spread of its input; without batch norm the activations get smaller block after
# block, and so do the gradients, so training starts slowly. With batch norm every block starts from
# standardized values.

# %%
batch = data["X_train"][:256]
spreads = {}
for batch_norm in (True, False):
    nn.manual_seed(0)
    net = tiny_resnet(batch_norm, WIDTH)
    x, stds = batch, []
    for _, module in net.named_children():
        x = module(x)
        if isinstance(module, (nn.ReLU, nn.Residual)):  # the stem's output, then each block's
            stds.append(float(x.std()))
    spreads[batch_norm] = stds
    print(f"batch norm {batch_norm!s:5}: std after stem, block 1, 2, 3:", np.round(stds, 3))
assert spreads[False][-1] < 0.5 * spreads[True][-1]

# %% [markdown]
# Both networks train with the same seed, SGD with momentum 0.9 at learning rate 0.1, batches of 64. The
# Solver evaluates after the first step and at the end of each epoch.

# %%
runs = {}
for batch_norm in (True, False):
    nn.manual_seed(0)
    model = Classifier(tiny_resnet(batch_norm, WIDTH))
    solver = Solver(
        model,
        data,
        update_rule="sgd_momentum",
        optim_config={"learning_rate": 0.1},
        batch_size=64,
        num_epochs=EPOCHS,
        seed=0,
        verbose=False,
    )
    solver.train()
    test_acc = solver.check_accuracy(X_test, y_test)
    runs[batch_norm] = solver
    print(
        f"batch norm {batch_norm!s:5}: final loss {np.mean(solver.loss_history[-10:]):.3f}, "
        f"best val acc {solver.best_val_acc:.3f}, test acc {test_acc:.3f}"
    )

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
window = 5  # a moving average over steps smooths the mini-batch noise
for batch_norm, solver in runs.items():
    label = "with batch norm" if batch_norm else "without batch norm"
    losses = np.convolve(solver.loss_history, np.ones(window) / window, mode="valid")
    left.plot(np.arange(window - 1, len(solver.loss_history)), losses, label=label)
    right.plot(solver.val_acc_history, "-o", label=label)
left.set(xlabel="step", ylabel="training loss", title=f"Training loss ({window}-step average)")
right.set(xlabel="evaluation (after step 1, then each epoch)", ylabel="accuracy", title="Validation accuracy")
right.set_ylim(0, 1)
for ax in (left, right):
    ax.grid(alpha=0.3)
    ax.legend()
plt.show()

# %% [markdown]
# With batch norm the network learns within the first epoch; without it, the same network at the same learning
# rate barely moves at first, because its signals and gradients start small. Given enough epochs (the full-size
# run trains 10) the plain network catches up part of the way; batch norm's gift here is speed, and the freedom
# to use a larger learning rate.

# %%
with_bn, without_bn = runs[True], runs[False]
last_epoch = len(with_bn.loss_history) // EPOCHS
assert np.mean(with_bn.loss_history[-last_epoch:]) < np.mean(without_bn.loss_history[-last_epoch:])
assert with_bn.best_val_acc > 0.7 and with_bn.best_val_acc > without_bn.best_val_acc

# %% [markdown]
# ## Where to go from here
#
# - [Batch norm](../../ops/batchnorm/) shows numcnn's op line by line, loop version beside the fast one.
# - [CS231n ConvolutionalNetworks](../cs231n_convnets/) checks spatial batch norm and group norm against the
#   assignment's numbers.
# - [Inside a ResNet trained on CIFAR-10](../resnet_inside/) trains the real ResNet-20, built from
#   `nn.Residual.block`, and looks at its filters, feature maps and mistakes.
