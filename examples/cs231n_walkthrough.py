"""The CS231n convolutional-networks notebook, cell by cell, on numcnn.

    python examples/cs231n_walkthrough.py [--data-dir CIFAR_DIR] [--quick]

Each step prints what the notebook prints: the naive convolution against
the published output, gradient checks, fast against naive, the three-layer
network's initial loss and gradient check, overfitting 100 examples, and
(with CIFAR-10 available) the one-epoch training run. Only the imports
differ from the assignment.
"""

import argparse
import time

import numpy as np

from numcnn.compat.cs231n.classifiers.cnn import ThreeLayerConvNet
from numcnn.compat.cs231n.data_utils import get_CIFAR10_data
from numcnn.compat.cs231n.fast_layers import conv_backward_fast, conv_forward_fast
from numcnn.compat.cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error
from numcnn.compat.cs231n.layers import conv_backward_naive, conv_forward_naive
from numcnn.compat.cs231n.solver import Solver


def naive_forward():
    x = np.linspace(-0.1, 0.5, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    w = np.linspace(-0.2, 0.3, num=3 * 3 * 4 * 4).reshape(3, 3, 4, 4)
    b = np.linspace(-0.1, 0.2, num=3)
    out, _ = conv_forward_naive(x, w, b, {"stride": 2, "pad": 1})
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
    print("Testing conv_forward_naive\ndifference: ", rel_error(out, correct_out))


def naive_backward():
    np.random.seed(231)
    x, w, b = (
        np.random.randn(4, 3, 5, 5),
        np.random.randn(2, 3, 3, 3),
        np.random.randn(
            2,
        ),
    )
    dout = np.random.randn(4, 2, 5, 5)
    conv_param = {"stride": 1, "pad": 1}
    dx_num = eval_numerical_gradient_array(lambda x: conv_forward_naive(x, w, b, conv_param)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda w: conv_forward_naive(x, w, b, conv_param)[0], w, dout)
    out, cache = conv_forward_naive(x, w, b, conv_param)
    dx, dw, db = conv_backward_naive(dout, cache)
    print(
        "Testing conv_backward_naive function\ndx error: ", rel_error(dx, dx_num), "\ndw error: ", rel_error(dw, dw_num)
    )


def fast_versus_naive(batch):
    np.random.seed(231)
    x, w, b = (
        np.random.randn(batch, 3, 31, 31),
        np.random.randn(25, 3, 3, 3),
        np.random.randn(
            25,
        ),
    )
    dout = np.random.randn(batch, 25, 16, 16)
    conv_param = {"stride": 2, "pad": 1}
    t0 = time.time()
    out_naive, cache_naive = conv_forward_naive(x, w, b, conv_param)
    t1 = time.time()
    out_fast, cache_fast = conv_forward_fast(x, w, b, conv_param)
    t2 = time.time()
    print(
        f"Testing conv_forward_fast:\nNaive: {t1 - t0:f}s\nFast: {t2 - t1:f}s\n"
        f"Speedup: {(t1 - t0) / max(t2 - t1, 1e-9):f}x\nDifference: ",
        rel_error(out_naive, out_fast),
    )
    t0 = time.time()
    dx_naive, dw_naive, db_naive = conv_backward_naive(dout, cache_naive)
    t1 = time.time()
    dx_fast, dw_fast, db_fast = conv_backward_fast(dout, cache_fast)
    t2 = time.time()
    print(
        f"Testing conv_backward_fast:\nNaive: {t1 - t0:f}s\nFast: {t2 - t1:f}s\n"
        f"Speedup: {(t1 - t0) / max(t2 - t1, 1e-9):f}x\ndx difference: ",
        rel_error(dx_naive, dx_fast),
    )


def three_layer_net():
    model = ThreeLayerConvNet()
    X, y = np.random.randn(50, 3, 32, 32), np.random.randint(10, size=50)
    print("Initial loss (no regularization): ", model.loss(X, y)[0])
    model.reg = 0.5
    print("Initial loss (with regularization): ", model.loss(X, y)[0])
    np.random.seed(231)
    X, y = np.random.randn(2, 3, 16, 16), np.random.randint(10, size=2)
    model = ThreeLayerConvNet(num_filters=3, filter_size=3, input_dim=(3, 16, 16), hidden_dim=7, dtype=np.float64)
    loss, grads = model.loss(X, y)
    for name in sorted(grads):
        numerical = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name], verbose=False, h=1e-6)
        print(f"{name} max relative error: {rel_error(numerical, grads[name]):e}")


def cifar_runs(data_dir, quick):
    data = get_CIFAR10_data(root=data_dir, num_training=200 if quick else 49000, num_validation=50 if quick else 1000)
    np.random.seed(231)
    small = {
        k: data[k][:100] if k in ("X_train", "y_train") else data[k] for k in ("X_train", "y_train", "X_val", "y_val")
    }
    model = ThreeLayerConvNet(weight_scale=1e-2)
    solver = Solver(
        model,
        small,
        num_epochs=3 if quick else 15,
        batch_size=50,
        update_rule="adam",
        optim_config={"learning_rate": 1e-3},
        verbose=True,
        print_every=1,
    )
    solver.train()
    model = ThreeLayerConvNet(weight_scale=0.001, hidden_dim=500, reg=0.001)
    solver = Solver(
        model,
        data,
        num_epochs=1,
        batch_size=50,
        update_rule="adam",
        optim_config={"learning_rate": 1e-3},
        verbose=True,
        print_every=20,
    )
    solver.train()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="CIFAR-10 (any layout numcnn reads); skips the training cells if absent")
    parser.add_argument("--quick", action="store_true", help="small sizes, for tests")
    args = parser.parse_args(argv)
    naive_forward()
    naive_backward()
    fast_versus_naive(10 if args.quick else 100)
    three_layer_net()
    if args.data_dir:
        cifar_runs(args.data_dir, args.quick)


if __name__ == "__main__":
    main()
