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
# # CS231n ConvolutionalNetworks, on numcnn
#
# This is the walk through the convolutional-networks notebook of Stanford's CS231n assignment 2, run on
# numcnn. Every cell calls the assignment's own names (`conv_forward_naive`, `max_pool_forward_fast`,
# `conv_relu_pool_forward`, `ThreeLayerConvNet`, `Solver`, `spatial_batchnorm_forward`, ...) with the
# assignment's arguments. Only the imports differ: `cs231n.` becomes `numcnn.compat.cs231n.`, whose names are
# thin aliases of numcnn's ops, modules and Solver.
#
# Where the assignment prints a number and says what it should be, this page prints it too and **asserts**
# it, so the page fails to build if numcnn drifts. Where the assignment publishes an exact output (the naive
# convolution, the spatial batch norm statistics), the output is compared with the published one.
#
# The page runs in two sizes. Built for the site (or by the test suite) with `NUMCNN_DOCS_SHORT=1` it uses
# small batches and a slice of CIFAR-10, so that it finishes in seconds; run as a notebook it uses the
# assignment's sizes. When CIFAR-10 is not in numcnn's data folder (`$NUMCNN_DATA`, else `~/.cache/numcnn`)
# the data cells fall back to scikit-learn's handwritten digits; set `DOWNLOAD = True` below to fetch
# CIFAR-10 (about 170 MB) instead.

# %%
import numcnn  # before NumPy: it sets how long OpenBLAS's idle threads spin, read when NumPy loads

# isort: split
# %matplotlib inline
import os
import time

import matplotlib.pyplot as plt
import numpy as np

from numcnn.compat.cs231n.classifiers.cnn import ThreeLayerConvNet
from numcnn.compat.cs231n.data_utils import get_CIFAR10_data
from numcnn.compat.cs231n.fast_layers import (
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from numcnn.compat.cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error
from numcnn.compat.cs231n.layer_utils import (
    conv_bn_relu_backward,
    conv_bn_relu_forward,
    conv_relu_backward,
    conv_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from numcnn.compat.cs231n.layers import (
    conv_backward_naive,
    conv_forward_naive,
    max_pool_backward_naive,
    max_pool_forward_naive,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)
from numcnn.compat.cs231n.solver import Solver
from numcnn.compat.cs231n.vis_utils import visualize_grid
from numcnn.data import DatasetNotFound, load_digits, train_val_split

SHORT = os.environ.get("NUMCNN_DOCS_SHORT") == "1"  # small sizes: the site's build and the test suite
DOWNLOAD = False  # True: fetch CIFAR-10 into numcnn's data folder if it is not there

plt.rcParams["figure.figsize"] = (10.0, 8.0)  # the assignment's plotting defaults
plt.rcParams["image.interpolation"] = "nearest"
plt.rcParams["image.cmap"] = "gray"
print("numcnn", numcnn.__version__, "| short build" if SHORT else "| full size")

# %% [markdown]
# ## The data
#
# `get_CIFAR10_data` returns the assignment's dictionary of float64 `(N, 3, 32, 32)` splits with the mean
# training image subtracted. The short build takes the first 1,000 training images instead of 49,000. Without
# CIFAR-10, the digits are prepared the same way: `(N, 1, 8, 8)` images on the 0-255 scale, mean image
# subtracted.

# %%
NUM_TRAIN, NUM_VAL, NUM_TEST = (1000, 100, 100) if SHORT else (49000, 1000, 1000)
# the short build's training runs also use a smaller ThreeLayerConvNet: 16 filters and 100 hidden units
SHORT_NET = {"num_filters": 16, "hidden_dim": 100} if SHORT else {}


def digits_data():
    """The 1,797 digits as the assignment's dictionary: float64 (N, 1, 8, 8), mean image subtracted."""
    X_train, y_train, X_test, y_test, _ = load_digits()
    X_train, y_train, X_val, y_val = train_val_split(X_train, y_train, 0.15, seed=0)
    as_nchw = lambda X: np.ascontiguousarray(X.transpose(0, 3, 1, 2), dtype=np.float64)
    splits = {"X_train": as_nchw(X_train), "X_val": as_nchw(X_val), "X_test": as_nchw(X_test)}
    mean_image = splits["X_train"].mean(axis=0)
    data = {name: X - mean_image for name, X in splits.items()}
    return data | {"y_train": y_train, "y_val": y_val, "y_test": y_test}


try:
    data = get_CIFAR10_data(num_training=NUM_TRAIN, num_validation=NUM_VAL, num_test=NUM_TEST, download=DOWNLOAD)
    DATASET = "cifar10"
except DatasetNotFound as missing:
    print(f"CIFAR-10 is not here ({str(missing).split(':')[0]}): using scikit-learn's digits instead")
    data = digits_data()
    DATASET = "digits"
for k, v in data.items():
    print(f"{k}: ", v.shape)

# %% [markdown]
# ## Convolution: naive forward pass
#
# `conv_forward_naive` loops over images, filters and output positions. With zero padding `pad` and stride
# `stride`, an input of height $H$ and a filter of height $HH$ give an output of height
# $H' = 1 + (H + 2\,\mathrm{pad} - HH) / \mathrm{stride}$, and likewise for the width. The assignment
# publishes the output for one fixed input; the difference should be around `1e-8`.

# %%
x_shape = (2, 3, 4, 4)
w_shape = (3, 3, 4, 4)
x = np.linspace(-0.1, 0.5, num=np.prod(x_shape)).reshape(x_shape)
w = np.linspace(-0.2, 0.3, num=np.prod(w_shape)).reshape(w_shape)
b = np.linspace(-0.1, 0.2, num=3)

conv_param = {"stride": 2, "pad": 1}
out, _ = conv_forward_naive(x, w, b, conv_param)
correct_out = np.array(
    [
        [
            [[-0.08759809, -0.10987781], [-0.18387192, -0.2109216]],
            [[0.21027089, 0.21661097], [0.22847626, 0.23004637]],
            [[0.50813986, 0.54309974], [0.64082444, 0.67101435]],
        ],
        [
            [[-0.98053589, -1.03143541], [-1.19128892, -1.24695841]],
            [[0.69108355, 0.66880383], [0.59480972, 0.56776003]],
            [[2.36270298, 2.36904306], [2.38090835, 2.38247847]],
        ],
    ]
)

# Compare your output to ours; difference should be around e-8
print("Testing conv_forward_naive")
print("difference: ", rel_error(out, correct_out))
assert rel_error(out, correct_out) < 1e-7

# %% [markdown]
# ### Aside: image processing via convolutions
#
# The assignment's aside writes two filters by hand as convolution weights, a grayscale filter and a
# horizontal Sobel filter on the blue channel, and applies them to two photos. `numcnn demo convolution` draws
# that figure with numcnn's fast convolution, and the notebook
# [Convolution as image processing](../image_processing/) goes much further: grayscale as a 1x1 convolution,
# Sobel as a layer of two filters, blurs, pyramids, keypoints and the Fourier view.

# %% [markdown]
# ## Convolution: naive backward pass
#
# The gradient with respect to the input scatters each upstream value back through the filter; the one with
# respect to the filter correlates the input with the upstream gradient. Both are checked against centred
# differences, `eval_numerical_gradient_array`. The errors should be around `1e-8` or less.

# %%
np.random.seed(231)
x = np.random.randn(4, 3, 5, 5)
w = np.random.randn(2, 3, 3, 3)
b = np.random.randn(2)
dout = np.random.randn(4, 2, 5, 5)
conv_param = {"stride": 1, "pad": 1}

dx_num = eval_numerical_gradient_array(lambda x: conv_forward_naive(x, w, b, conv_param)[0], x, dout)
dw_num = eval_numerical_gradient_array(lambda w: conv_forward_naive(x, w, b, conv_param)[0], w, dout)
db_num = eval_numerical_gradient_array(lambda b: conv_forward_naive(x, w, b, conv_param)[0], b, dout)

out, cache = conv_forward_naive(x, w, b, conv_param)
dx, dw, db = conv_backward_naive(dout, cache)

# Your errors should be around e-8 or less.
print("Testing conv_backward_naive function")
print("dx error: ", rel_error(dx, dx_num))
print("dw error: ", rel_error(dw, dw_num))
print("db error: ", rel_error(db, db_num))
assert rel_error(dx, dx_num) < 1e-7 and rel_error(dw, dw_num) < 1e-8 and rel_error(db, db_num) < 1e-8

# %% [markdown]
# ## Max pooling: naive forward pass
#
# Each `pool_height` x `pool_width` window, moved by `stride`, is replaced by its largest value. Again the
# assignment publishes the output; the difference should be around `1e-8`.

# %%
x_shape = (2, 3, 4, 4)
x = np.linspace(-0.3, 0.4, num=np.prod(x_shape)).reshape(x_shape)
pool_param = {"pool_width": 2, "pool_height": 2, "stride": 2}

out, _ = max_pool_forward_naive(x, pool_param)

correct_out = np.array(
    [
        [
            [[-0.26315789, -0.24842105], [-0.20421053, -0.18947368]],
            [[-0.14526316, -0.13052632], [-0.08631579, -0.07157895]],
            [[-0.02736842, -0.01263158], [0.03157895, 0.04631579]],
        ],
        [
            [[0.09052632, 0.10526316], [0.14947368, 0.16421053]],
            [[0.20842105, 0.22315789], [0.26736842, 0.28210526]],
            [[0.32631579, 0.34105263], [0.38526316, 0.4]],
        ],
    ]
)

# Compare your output with ours. Difference should be on the order of e-8.
print("Testing max_pool_forward_naive function:")
print("difference: ", rel_error(out, correct_out))
assert rel_error(out, correct_out) < 1e-7

# %% [markdown]
# ## Max pooling: naive backward pass
#
# The upstream gradient goes, whole, to the position that won each window; the others get zero.

# %%
np.random.seed(231)
x = np.random.randn(3, 2, 8, 8)
dout = np.random.randn(3, 2, 4, 4)
pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}

dx_num = eval_numerical_gradient_array(lambda x: max_pool_forward_naive(x, pool_param)[0], x, dout)

out, cache = max_pool_forward_naive(x, pool_param)
dx = max_pool_backward_naive(dout, cache)

# Your error should be on the order of e-12
print("Testing max_pool_backward_naive function:")
print("dx error: ", rel_error(dx, dx_num))
assert rel_error(dx, dx_num) < 1e-10

# %% [markdown]
# ## Fast layers
#
# The assignment ships Cython im2col layers; numcnn's fast convolution and pooling are NumPy: the windows are
# gathered into a matrix (im2col) and the convolution becomes one matrix product. They must agree with the
# loops to about `1e-11`, and be much faster. The assignment times a batch of 100 images; the short build
# times 4, so the speed-ups below are smaller than a full run's.

# %%
FAST_N = 4 if SHORT else 100

np.random.seed(231)
x = np.random.randn(FAST_N, 3, 31, 31)
w = np.random.randn(25, 3, 3, 3)
b = np.random.randn(25)
dout = np.random.randn(FAST_N, 25, 16, 16)
conv_param = {"stride": 2, "pad": 1}

t0 = time.time()
out_naive, cache_naive = conv_forward_naive(x, w, b, conv_param)
t1 = time.time()
out_fast, cache_fast = conv_forward_fast(x, w, b, conv_param)
t2 = time.time()

print("Testing conv_forward_fast:")
print(f"Naive: {t1 - t0:f}s")
print(f"Fast: {t2 - t1:f}s")
print(f"Speedup: {(t1 - t0) / (t2 - t1):f}x")
print("Difference: ", rel_error(out_naive, out_fast))
assert rel_error(out_naive, out_fast) < 1e-9
forward_speedup = (t1 - t0) / (t2 - t1)

t0 = time.time()
dx_naive, dw_naive, db_naive = conv_backward_naive(dout, cache_naive)
t1 = time.time()
dx_fast, dw_fast, db_fast = conv_backward_fast(dout, cache_fast)
t2 = time.time()

print("\nTesting conv_backward_fast:")
print(f"Naive: {t1 - t0:f}s")
print(f"Fast: {t2 - t1:f}s")
print(f"Speedup: {(t1 - t0) / (t2 - t1):f}x")
print("dx difference: ", rel_error(dx_naive, dx_fast))
print("dw difference: ", rel_error(dw_naive, dw_fast))
print("db difference: ", rel_error(db_naive, db_fast))
for naive, fast in ((dx_naive, dx_fast), (dw_naive, dw_fast), (db_naive, db_fast)):
    assert rel_error(naive, fast) < 1e-9
backward_speedup = (t1 - t0) / (t2 - t1)
# a speed-up is a ratio measured here and now, so the bound is loose: the loops are always far slower
assert forward_speedup > 5 and backward_speedup > 5

# %% [markdown]
# Pooling: both versions pick the same maxima, so forward and backward agree exactly.

# %%
np.random.seed(231)
x = np.random.randn(FAST_N, 3, 32, 32)
dout = np.random.randn(FAST_N, 3, 16, 16)
pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}

t0 = time.time()
out_naive, cache_naive = max_pool_forward_naive(x, pool_param)
t1 = time.time()
out_fast, cache_fast = max_pool_forward_fast(x, pool_param)
t2 = time.time()

print("Testing pool_forward_fast:")
print(f"Naive: {t1 - t0:f}s")
print(f"fast: {t2 - t1:f}s")
print(f"speedup: {(t1 - t0) / (t2 - t1):f}x")
print("difference: ", rel_error(out_naive, out_fast))

t0 = time.time()
dx_naive = max_pool_backward_naive(dout, cache_naive)
t1 = time.time()
dx_fast = max_pool_backward_fast(dout, cache_fast)
t2 = time.time()

print("\nTesting pool_backward_fast:")
print(f"Naive: {t1 - t0:f}s")
print(f"fast: {t2 - t1:f}s")
print(f"speedup: {(t1 - t0) / (t2 - t1):f}x")
print("dx difference: ", rel_error(dx_naive, dx_fast))
assert rel_error(out_naive, out_fast) == 0.0 and rel_error(dx_naive, dx_fast) == 0.0

# %% [markdown]
# ## Convolutional "sandwich" layers
#
# `layer_utils` chains the fast layers into the blocks a network is built from: conv-ReLU-pool, conv-ReLU and
# conv-batchnorm-ReLU. Their backward passes chain the layers' backward passes in reverse; the numerical
# gradients check the chaining.

# %%
np.random.seed(231)
x = np.random.randn(2, 3, 16, 16)
w = np.random.randn(3, 3, 3, 3)
b = np.random.randn(3)
dout = np.random.randn(2, 3, 8, 8)
conv_param = {"stride": 1, "pad": 1}
pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}

out, cache = conv_relu_pool_forward(x, w, b, conv_param, pool_param)
dx, dw, db = conv_relu_pool_backward(dout, cache)

dx_num = eval_numerical_gradient_array(lambda x: conv_relu_pool_forward(x, w, b, conv_param, pool_param)[0], x, dout)
dw_num = eval_numerical_gradient_array(lambda w: conv_relu_pool_forward(x, w, b, conv_param, pool_param)[0], w, dout)
db_num = eval_numerical_gradient_array(lambda b: conv_relu_pool_forward(x, w, b, conv_param, pool_param)[0], b, dout)

# Relative errors should be around e-8 or less
print("Testing conv_relu_pool")
print("dx error: ", rel_error(dx_num, dx))
print("dw error: ", rel_error(dw_num, dw))
print("db error: ", rel_error(db_num, db))
assert max(rel_error(dx_num, dx), rel_error(dw_num, dw), rel_error(db_num, db)) < 1e-7

# %%
np.random.seed(231)
x = np.random.randn(2, 3, 8, 8)
w = np.random.randn(3, 3, 3, 3)
b = np.random.randn(3)
dout = np.random.randn(2, 3, 8, 8)
conv_param = {"stride": 1, "pad": 1}

out, cache = conv_relu_forward(x, w, b, conv_param)
dx, dw, db = conv_relu_backward(dout, cache)

dx_num = eval_numerical_gradient_array(lambda x: conv_relu_forward(x, w, b, conv_param)[0], x, dout)
dw_num = eval_numerical_gradient_array(lambda w: conv_relu_forward(x, w, b, conv_param)[0], w, dout)
db_num = eval_numerical_gradient_array(lambda b: conv_relu_forward(x, w, b, conv_param)[0], b, dout)

# Relative errors should be around e-8 or less
print("Testing conv_relu:")
print("dx error: ", rel_error(dx_num, dx))
print("dw error: ", rel_error(dw_num, dw))
print("db error: ", rel_error(db_num, db))
assert max(rel_error(dx_num, dx), rel_error(dw_num, dw), rel_error(db_num, db)) < 1e-7

# %%
gamma, beta = np.random.randn(3), np.random.randn(3)
bn_param = {"mode": "train"}

out, cache = conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param)
dx, dw, db, dgamma, dbeta = conv_bn_relu_backward(dout, cache)

f = lambda x, gamma=gamma, beta=beta: conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, {"mode": "train"})[0]
dx_num = eval_numerical_gradient_array(f, x, dout)
dgamma_num = eval_numerical_gradient_array(lambda g: f(x, gamma=g), gamma, dout)
dbeta_num = eval_numerical_gradient_array(lambda be: f(x, beta=be), beta, dout)

print("Testing conv_bn_relu:")
print("dx error: ", rel_error(dx_num, dx))
print("dgamma error: ", rel_error(dgamma_num, dgamma))
print("dbeta error: ", rel_error(dbeta_num, dbeta))
assert max(rel_error(dx_num, dx), rel_error(dgamma_num, dgamma), rel_error(dbeta_num, dbeta)) < 1e-6

# %% [markdown]
# ## Three-layer ConvNet
#
# `ThreeLayerConvNet` is conv - ReLU - 2x2 max pool - affine - ReLU - affine - softmax, with the assignment's
# constructor arguments and parameter names (`W1`, `b1`, ..., `W3`, `b3`).
#
# ### Sanity check the loss
#
# With small random weights every class gets about the same score, so the softmax loss starts near
# $\log C = \log 10 \approx 2.3026$; regularization adds a little to it.

# %%
model = ThreeLayerConvNet()

N = 50
X = np.random.randn(N, 3, 32, 32)
y = np.random.randint(10, size=N)

loss, grads = model.loss(X, y)
print("Initial loss (no regularization): ", loss)
assert abs(loss - np.log(10)) < 5e-3

model.reg = 0.5
loss, grads = model.loss(X, y)
print("Initial loss (with regularization): ", loss)
assert np.log(10) < loss < np.log(10) + 0.5

# %% [markdown]
# ### Gradient check
#
# A tiny network in float64, every parameter checked against centred differences. The assignment warns that
# errors up to about `1e-2` are normal here: the ReLUs and the max pooling have kinks, and a step of `h`
# across a kink changes the slope. These are the numbers the assignment's own notebook prints; numcnn gives the
# same ones, digit for digit.

# %%
num_inputs = 2
input_dim = (3, 16, 16)
reg = 0.0
num_classes = 10
np.random.seed(231)
X = np.random.randn(num_inputs, *input_dim)
y = np.random.randint(num_classes, size=num_inputs)

model = ThreeLayerConvNet(num_filters=3, filter_size=3, input_dim=input_dim, hidden_dim=7, dtype=np.float64)
loss, grads = model.loss(X, y)
errors = {}
for param_name in sorted(grads):
    f = lambda _: model.loss(X, y)[0]
    param_grad_num = eval_numerical_gradient(f, model.params[param_name], verbose=False, h=1e-6)
    errors[param_name] = rel_error(param_grad_num, grads[param_name])
    print(f"{param_name} max relative error: {errors[param_name]:e}")

published = {"W1": 1.380104e-04, "W2": 1.822723e-02, "W3": 3.064049e-04, "b1": 3.477652e-05, "b2": 2.516375e-03}
for name, value in published.items():
    assert abs(errors[name] - value) < 1e-3 * value, (name, errors[name], value)
assert errors["b3"] < 1e-8

# %% [markdown]
# ### Overfit small data
#
# A network that can learn should drive the training accuracy to nearly 100% on 100 images while the
# validation accuracy stays low. Adam at `1e-3`, 15 epochs of batches of 50. (The short build overfits 50
# images, one batch an epoch, with the smaller network.)

# %%
np.random.seed(231)

num_train = 50 if SHORT else 100
small_data = {
    "X_train": data["X_train"][:num_train],
    "y_train": data["y_train"][:num_train],
    "X_val": data["X_val"],
    "y_val": data["y_val"],
}
input_dim = data["X_train"].shape[1:]

model = ThreeLayerConvNet(input_dim=input_dim, weight_scale=1e-2, **SHORT_NET)

solver = Solver(
    model,
    small_data,
    num_epochs=15,
    batch_size=50,
    update_rule="adam",
    optim_config={"learning_rate": 1e-3},
    verbose=True,
    print_every=1,
)
solver.train()

# The Solver ends with the parameters of the best validation accuracy (as the assignment's does), so these two
# lines score those; the histories above show the overfitting.
print("Small data training accuracy:", solver.check_accuracy(small_data["X_train"], small_data["y_train"]))
print("Small data validation accuracy:", solver.check_accuracy(small_data["X_val"], small_data["y_val"]))
assert solver.train_acc_history[-1] >= 0.9  # it memorizes the training images ...
assert solver.train_acc_history[-1] - solver.best_val_acc >= 0.1  # ... far better than it generalizes

# %% [markdown]
# Plotting the loss, training accuracy and validation accuracy shows the overfitting.

# %%
plt.subplot(2, 1, 1)
plt.plot(solver.loss_history, "o")
plt.xlabel("iteration")
plt.ylabel("loss")

plt.subplot(2, 1, 2)
plt.plot(solver.train_acc_history, "-o")
plt.plot(solver.val_acc_history, "-o")
plt.legend(["train", "val"], loc="upper left")
plt.xlabel("epoch")
plt.ylabel("accuracy")
plt.show()

# %% [markdown]
# ### Train the net
#
# The assignment's one-epoch run: 32 filters of 7x7, a hidden layer of 500, 49,000 CIFAR-10 images, batch 50;
# it should pass 40% validation accuracy. The short build trains its smaller network on 1,000 images, which
# is enough to beat chance clearly but not to reach 40%. (`num_train_samples` is how many training images the
# Solver scores for its training accuracy; the short build scores 100.)

# %%
np.random.seed(231)
model = ThreeLayerConvNet(input_dim=input_dim, weight_scale=0.001, reg=0.001, **({"hidden_dim": 500} | SHORT_NET))

solver = Solver(
    model,
    data,
    num_epochs=1,
    batch_size=50,
    update_rule="adam",
    optim_config={"learning_rate": 1e-3},
    verbose=True,
    print_every=20 if SHORT else 200,
    num_train_samples=100 if SHORT else 1000,
)
solver.train()

val_acc = solver.check_accuracy(data["X_val"], data["y_val"])
test_acc = solver.check_accuracy(data["X_test"], data["y_test"])
print("Full data validation accuracy:", val_acc)
print("Full data test accuracy:", test_acc)
# chance is 10%; the assignment's bar is 40% after an epoch on all of CIFAR-10
# (one epoch on the digits passes 80%, 70% with the short build's smaller network)
expected = {"cifar10": 0.15 if SHORT else 0.4, "digits": 0.7 if SHORT else 0.8}[DATASET]
assert val_acc > expected, (val_acc, expected)

# %% [markdown]
# ### Visualize filters
#
# The first layer's filters, `W1` of shape `(32, C, 7, 7)` (16 in the short build), tiled into one image by
# `visualize_grid`. After a full epoch on CIFAR-10 many look like oriented edges and colour blobs.

# %%
grid = visualize_grid(model.params["W1"].transpose(0, 2, 3, 1))
side = int(np.ceil(np.sqrt(len(model.params["W1"]))))  # 32 filters: a 6 x 6 grid; 16: 4 x 4
assert grid.shape[:2] == (side * 7 + side - 1,) * 2  # 7x7 filters with 1-pixel gaps
plt.imshow(grid.astype("uint8").squeeze())
plt.axis("off")
plt.gcf().set_size_inches(5, 5)
plt.show()

# %% [markdown]
# ## Spatial batch normalization
#
# Batch norm for convolutional layers normalizes each channel over the batch and both spatial axes: for an
# input of shape `(N, C, H, W)` the statistics are computed over `N * H * W` values per channel, so a feature
# keeps one scale and shift wherever in the image it appears. `spatial_batchnorm_forward` reshapes to
# `(N * H * W, C)` rows in spirit; numcnn's op reduces over the axes `(0, 2, 3)` directly.
#
# ### Forward pass, training time
#
# After normalization each channel should have mean about 0 and standard deviation about 1; with `gamma` and
# `beta` they become `beta` and `gamma`. The means and standard deviations printed are the assignment's.

# %%
np.random.seed(231)
N, C, H, W = 2, 3, 4, 5
x = 4 * np.random.randn(N, C, H, W) + 10

print("Before spatial batch normalization:")
print("  shape: ", x.shape)
print("  means: ", x.mean(axis=(0, 2, 3)))
print("  stds: ", x.std(axis=(0, 2, 3)))
np.testing.assert_allclose(x.mean(axis=(0, 2, 3)), [9.33463814, 8.90909116, 9.11056338], atol=1e-8)

# Means should be close to zero and stds close to one
gamma, beta = np.ones(C), np.zeros(C)
bn_param = {"mode": "train"}
out, _ = spatial_batchnorm_forward(x, gamma, beta, bn_param)
print("After spatial batch normalization:")
print("  shape: ", out.shape)
print("  means: ", out.mean(axis=(0, 2, 3)))
print("  stds: ", out.std(axis=(0, 2, 3)))
np.testing.assert_allclose(out.std(axis=(0, 2, 3)), [0.99999962, 0.99999951, 0.9999996], atol=1e-8)
assert np.abs(out.mean(axis=(0, 2, 3))).max() < 1e-14

# Means should be close to beta and stds close to gamma
gamma, beta = np.asarray([3, 4, 5]), np.asarray([6, 7, 8])
out, _ = spatial_batchnorm_forward(x, gamma, beta, bn_param)
print("After spatial batch normalization (nontrivial gamma, beta):")
print("  shape: ", out.shape)
print("  means: ", out.mean(axis=(0, 2, 3)))
print("  stds: ", out.std(axis=(0, 2, 3)))
np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), [6, 7, 8], atol=1e-13)
np.testing.assert_allclose(out.std(axis=(0, 2, 3)), [2.99999885, 3.99999804, 4.99999798], atol=1e-8)

# %% [markdown]
# ### Forward pass, test time
#
# Fifty training steps move the running averages (momentum 0.9, from zero) towards the data's statistics;
# in test mode they are used in place of the batch's. The means and standard deviations then come out close
# to 0 and 1, but not exactly: the running averages lag behind and the test batch is new data.

# %%
np.random.seed(231)
N, C, H, W = 10, 4, 11, 12

bn_param = {"mode": "train"}
gamma = np.ones(C)
beta = np.zeros(C)
for _ in range(50):
    x = 2.3 * np.random.randn(N, C, H, W) + 13
    spatial_batchnorm_forward(x, gamma, beta, bn_param)
bn_param["mode"] = "test"
x = 2.3 * np.random.randn(N, C, H, W) + 13
a_norm, _ = spatial_batchnorm_forward(x, gamma, beta, bn_param)

# Means should be close to zero and stds close to one, but will be
# noisier than training-time forward passes.
print("After spatial batch normalization (test-time):")
print("  means: ", a_norm.mean(axis=(0, 2, 3)))
print("  stds: ", a_norm.std(axis=(0, 2, 3)))
np.testing.assert_allclose(a_norm.mean(axis=(0, 2, 3)), [-0.08034406, 0.07562881, 0.05716371, 0.04378383], atol=1e-8)
np.testing.assert_allclose(a_norm.std(axis=(0, 2, 3)), [0.96718744, 1.0299714, 1.02887624, 1.00585577], atol=1e-8)

# %% [markdown]
# ### Backward pass
#
# With the statistics computed from the batch, every output depends on every input of its channel; the
# backward pass has to carry that dependence. The assignment expects `dx` around `1e-7` and `dgamma`, `dbeta`
# around `1e-11`.

# %%
np.random.seed(231)
N, C, H, W = 2, 3, 4, 5
x = 5 * np.random.randn(N, C, H, W) + 12
gamma = np.random.randn(C)
beta = np.random.randn(C)
dout = np.random.randn(N, C, H, W)

bn_param = {"mode": "train"}
fx = lambda x: spatial_batchnorm_forward(x, gamma, beta, bn_param)[0]
fg = lambda a: spatial_batchnorm_forward(x, gamma, beta, bn_param)[0]
fb = lambda b: spatial_batchnorm_forward(x, gamma, beta, bn_param)[0]

dx_num = eval_numerical_gradient_array(fx, x, dout)
da_num = eval_numerical_gradient_array(fg, gamma, dout)
db_num = eval_numerical_gradient_array(fb, beta, dout)

# You should expect errors of magnitudes between 1e-12 and 1e-06
_, cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
dx, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)
print("dx error: ", rel_error(dx_num, dx))
print("dgamma error: ", rel_error(da_num, dgamma))
print("dbeta error: ", rel_error(db_num, dbeta))
assert rel_error(dx_num, dx) < 1e-6 and rel_error(da_num, dgamma) < 1e-10 and rel_error(db_num, dbeta) < 1e-10

# %% [markdown]
# ## Spatial group normalization
#
# Group norm (Wu and He, 2018) normalizes each image on its own, over groups of `C / G` channels and all
# positions, so it does not depend on the batch and behaves the same in training and at test time. `gamma`
# and `beta` have shape `(1, C, 1, 1)`, as in the assignment.
#
# ### Forward pass
#
# Per image and group the mean becomes about 0 and the standard deviation about 1.

# %%
np.random.seed(231)
N, C, H, W = 2, 6, 4, 5
G = 2
x = 4 * np.random.randn(N, C, H, W) + 10
x_g = x.reshape((N * G, -1))
print("Before spatial group normalization:")
print("  shape: ", x.shape)
print("  means: ", x_g.mean(axis=1))
print("  stds: ", x_g.std(axis=1))
np.testing.assert_allclose(x_g.mean(axis=1), [9.72505327, 8.51114185, 8.9147544, 9.43448077], atol=1e-8)

# Means should be close to zero and stds close to one
gamma, beta = np.ones((1, C, 1, 1)), np.zeros((1, C, 1, 1))
bn_param = {"mode": "train"}

out, _ = spatial_groupnorm_forward(x, gamma, beta, G, bn_param)
out_g = out.reshape((N * G, -1))
print("After spatial group normalization:")
print("  shape: ", out.shape)
print("  means: ", out_g.mean(axis=1))
print("  stds: ", out_g.std(axis=1))
np.testing.assert_allclose(out_g.std(axis=1), [0.99999963, 0.99999948, 0.99999973, 0.99999968], atol=1e-8)
assert np.abs(out_g.mean(axis=1)).max() < 1e-14

# %% [markdown]
# ### Backward pass
#
# The same check as for batch norm, now per image and group; the assignment expects `dx` around `1e-7`.

# %%
np.random.seed(231)
N, C, H, W = 2, 6, 4, 5
G = 2
x = 5 * np.random.randn(N, C, H, W) + 12
gamma = np.random.randn(1, C, 1, 1)
beta = np.random.randn(1, C, 1, 1)
dout = np.random.randn(N, C, H, W)

gn_param = {}
fx = lambda x: spatial_groupnorm_forward(x, gamma, beta, G, gn_param)[0]
fg = lambda a: spatial_groupnorm_forward(x, gamma, beta, G, gn_param)[0]
fb = lambda b: spatial_groupnorm_forward(x, gamma, beta, G, gn_param)[0]

dx_num = eval_numerical_gradient_array(fx, x, dout)
da_num = eval_numerical_gradient_array(fg, gamma, dout)
db_num = eval_numerical_gradient_array(fb, beta, dout)

_, cache = spatial_groupnorm_forward(x, gamma, beta, G, gn_param)
dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
# You should expect errors of magnitudes between 1e-12 and 1e-07
print("dx error: ", rel_error(dx_num, dx))
print("dgamma error: ", rel_error(da_num, dgamma))
print("dbeta error: ", rel_error(db_num, dbeta))
assert dgamma.shape == dbeta.shape == (1, C, 1, 1)
assert rel_error(dx_num, dx) < 1e-6 and rel_error(da_num, dgamma) < 1e-10 and rel_error(db_num, dbeta) < 1e-10

# %% [markdown]
# ## Where to go from here
#
# - The ops behind these names, with their maths: [Convolution](../../ops/convolution/),
#   [Pooling](../../ops/pooling/), [Batch norm](../../ops/batchnorm/), [Layer, group and instance
#   norm](../../ops/norms/).
# - [Coming from CS231n](../../guide/cs231n/) lists every name of the assignment and what it maps to.
# - [Batch norm and a residual block](../batchnorm_residual/) writes batch norm from scratch and trains a small
#   ResNet; [Inside a ResNet trained on CIFAR-10](../resnet_inside/) looks at what one learns.
