"""The CS231n assignment API: names, signatures, semantics and the notebook's printed numbers."""

import inspect

import numpy as np
import pytest

import numcnn.compat.cs231n as cs231n
from numcnn.compat.cs231n.classifiers.cnn import ThreeLayerConvNet
from numcnn.compat.cs231n.fast_layers import (
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from numcnn.compat.cs231n.gradient_check import eval_numerical_gradient_array, rel_error
from numcnn.compat.cs231n.layer_utils import (
    affine_bn_relu_backward,
    affine_bn_relu_forward,
    conv_bn_relu_backward,
    conv_bn_relu_forward,
    conv_relu_backward,
    conv_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from numcnn.compat.cs231n.layers import *  # noqa: F403 - as the notebooks import it

SIGNATURES = {
    "affine_forward": ["x", "w", "b"],
    "affine_backward": ["dout", "cache"],
    "relu_forward": ["x"],
    "softmax_loss": ["x", "y"],
    "svm_loss": ["x", "y"],
    "batchnorm_forward": ["x", "gamma", "beta", "bn_param"],
    "batchnorm_backward": ["dout", "cache"],
    "batchnorm_backward_alt": ["dout", "cache"],
    "layernorm_forward": ["x", "gamma", "beta", "ln_param"],
    "dropout_forward": ["x", "dropout_param"],
    "conv_forward_naive": ["x", "w", "b", "conv_param"],
    "conv_backward_naive": ["dout", "cache"],
    "max_pool_forward_naive": ["x", "pool_param"],
    "spatial_batchnorm_forward": ["x", "gamma", "beta", "bn_param"],
    "spatial_groupnorm_forward": ["x", "gamma", "beta", "G", "gn_param"],
    "conv_forward_fast": ["x", "w", "b", "conv_param"],
    "conv_forward_im2col": ["x", "w", "b", "conv_param"],
    "conv_forward_strides": ["x", "w", "b", "conv_param"],
    "max_pool_forward_fast": ["x", "pool_param"],
    "max_pool_forward_reshape": ["x", "pool_param"],
    "max_pool_forward_im2col": ["x", "pool_param"],
    "affine_relu_forward": ["x", "w", "b"],
    "affine_bn_relu_forward": ["x", "w", "b", "gamma", "beta", "bn_param"],
    "conv_relu_forward": ["x", "w", "b", "conv_param"],
    "conv_bn_relu_forward": ["x", "w", "b", "gamma", "beta", "conv_param", "bn_param"],
    "conv_relu_pool_forward": ["x", "w", "b", "conv_param", "pool_param"],
    "eval_numerical_gradient": ["f", "x", "verbose", "h"],
    "eval_numerical_gradient_array": ["f", "x", "df", "h"],
    "grad_check_sparse": ["f", "x", "analytic_grad", "num_checks", "h"],
    "eval_numerical_gradient_blobs": ["f", "inputs", "output", "h"],
    "eval_numerical_gradient_net": ["net", "inputs", "output", "h"],
    "load_CIFAR_batch": ["filename"],
    "load_CIFAR10": ["ROOT"],
    "get_CIFAR10_data": ["num_training", "num_validation", "num_test", "subtract_mean"],
    "load_tiny_imagenet": ["path", "dtype", "subtract_mean"],
    "load_models": ["models_dir"],
    "load_imagenet_val": ["num"],
}


def test_gradient_check_keeps_the_assignments_defaults(capsys):
    import random

    from numcnn.compat.cs231n.gradient_check import eval_numerical_gradient, grad_check_sparse

    assert inspect.signature(eval_numerical_gradient).parameters["verbose"].default is True
    x = np.array([1.0, 2.0, 3.0])
    random.seed(0)
    assert grad_check_sparse(lambda v: np.sum(v**2), x, 2 * x, num_checks=4) is None
    first = capsys.readouterr().out
    random.seed(0)  # Python's random draws the coordinates, as in the assignment
    grad_check_sparse(lambda v: np.sum(v**2), x, 2 * x, num_checks=4)
    assert capsys.readouterr().out == first and first.count("relative error") == 4


class Blob:
    def __init__(self, vals):
        self.vals, self.diffs = vals, np.zeros_like(vals)


def test_numerical_gradients_of_blobs_and_nets():
    from numcnn.compat.cs231n.gradient_check import eval_numerical_gradient_blobs, eval_numerical_gradient_net

    rng = np.random.default_rng(0)
    a, b = Blob(rng.standard_normal((2, 3))), Blob(rng.standard_normal((3, 4)))
    out = Blob(np.zeros((2, 4)))
    out.diffs = rng.standard_normal((2, 4))

    def matmul(a_, b_, out_):
        out_.vals = a_.vals @ b_.vals

    da, db = eval_numerical_gradient_blobs(matmul, (a, b), out)
    np.testing.assert_allclose(da, out.diffs @ b.vals.T, rtol=1e-7)
    np.testing.assert_allclose(db, a.vals.T @ out.diffs, rtol=1e-7)

    class Net:
        def forward(self):
            matmul(a, b, out)

    np.testing.assert_allclose(eval_numerical_gradient_net(Net(), (a,), out)[0], da, rtol=1e-12)


def test_get_cifar10_data_is_float64_as_in_the_assignment(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
    from fake_data import cifar_arrays, write_cifar_python

    from numcnn.compat.cs231n.data_utils import get_CIFAR10_data

    write_cifar_python(tmp_path, cifar_arrays())
    data = get_CIFAR10_data(num_training=20, num_validation=5, num_test=4, root=tmp_path)
    assert data["X_train"].dtype == np.float64 and data["X_train"].shape == (20, 3, 32, 32)
    assert abs(data["X_train"].mean()) < 1e-9  # the training mean image was subtracted


def test_tiny_imagenet_layout_is_read(tmp_path):
    from PIL import Image

    from numcnn.compat.cs231n.data_utils import load_tiny_imagenet

    rng = np.random.default_rng(0)
    wnids = ["n01", "n02"]
    (tmp_path / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (tmp_path / "words.txt").write_text("n01\tgoldfish, Carassius auratus\nn02\ttench\nn99\tunused\n")
    pixels = {}
    for wnid in wnids:
        folder = tmp_path / "train" / wnid / "images"
        folder.mkdir(parents=True)
        names = [f"{wnid}_{i}.png" for i in range(3)]
        (tmp_path / "train" / wnid / f"{wnid}_boxes.txt").write_text("".join(f"{n}\t0\t0\t63\t63\n" for n in names))
        for n in names:
            pixels[n] = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            Image.fromarray(pixels[n]).save(folder / n)
    (tmp_path / "val" / "images").mkdir(parents=True)
    Image.fromarray(np.full((64, 64), 7, np.uint8)).save(tmp_path / "val" / "images" / "val_0.png")  # grayscale
    (tmp_path / "val" / "val_annotations.txt").write_text("val_0.png\tn02\t0\t0\t63\t63\n")
    (tmp_path / "test" / "images").mkdir(parents=True)
    Image.fromarray(pixels["n01_0.png"]).save(tmp_path / "test" / "images" / "test_0.png")
    data = load_tiny_imagenet(tmp_path, subtract_mean=False)
    assert data["class_names"] == [["goldfish", "Carassius auratus"], ["tench"]]
    assert data["X_train"].shape == (6, 3, 64, 64) and data["X_train"].dtype == np.float32
    assert list(data["y_train"]) == [0, 0, 0, 1, 1, 1] and list(data["y_val"]) == [1]
    np.testing.assert_array_equal(data["X_train"][0], pixels["n01_0.png"].transpose(2, 0, 1))
    np.testing.assert_array_equal(data["X_val"][0], 7)  # one channel repeated three times
    assert data["X_test"].shape == (1, 3, 64, 64) and data["y_test"] is None
    centred = load_tiny_imagenet(tmp_path)
    np.testing.assert_allclose(centred["X_train"] + centred["mean_image"], data["X_train"], atol=1e-4)


def test_load_models_reads_pickled_models_and_skips_the_rest(tmp_path, capsys):
    import pickle

    from numcnn.compat.cs231n.data_utils import load_models

    (tmp_path / "net.pkl").write_bytes(pickle.dumps({"model": {"W1": np.ones((2, 2))}}))
    (tmp_path / "README.txt").write_text("pretrained models")

    class Exploit:
        def __reduce__(self):
            import os

            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"model": Exploit()}))
    models = load_models(tmp_path)
    assert list(models) == ["net.pkl"] and models["net.pkl"]["W1"].shape == (2, 2)
    out = capsys.readouterr().out
    assert "skipped evil.pkl: " in out and "refusing to load" in out and "skipped README.txt" in out
    assert not (tmp_path / "pwned").exists()


def test_imagenet_sample_with_its_pickled_label_map(tmp_path):
    from numcnn.compat.cs231n.data_utils import load_imagenet_val

    path = tmp_path / "imagenet_val_25.npz"
    np.savez(
        path,
        X=np.arange(4 * 224 * 224 * 3, dtype=np.uint8).reshape(4, 224, 224, 3) % 255,
        y=np.arange(4),
        label_map=np.array({0: "tench", 1: "goldfish"}, dtype=object),
    )
    X, y, class_names = load_imagenet_val(num=2, path=path)
    assert X.shape == (2, 224, 224, 3) and list(y) == [0, 1] and class_names == {0: "tench", 1: "goldfish"}


@pytest.mark.parametrize("name", SIGNATURES)
def test_every_name_exists_with_the_assignments_signature(name):
    parameters = list(inspect.signature(getattr(cs231n, name)).parameters)
    assert parameters[: len(SIGNATURES[name])] == SIGNATURES[name]


def test_conv_and_pool_forward_reference_outputs():
    from tests_reference import CONV_CORRECT_OUT, POOL_CORRECT_OUT

    x = np.linspace(-0.1, 0.5, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    w = np.linspace(-0.2, 0.3, num=3 * 3 * 4 * 4).reshape(3, 3, 4, 4)
    b = np.linspace(-0.1, 0.2, num=3)
    out, _ = conv_forward_naive(x, w, b, {"stride": 2, "pad": 1})
    assert rel_error(out, CONV_CORRECT_OUT) < 1e-7
    x = np.linspace(-0.3, 0.4, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    out, _ = max_pool_forward_naive(x, {"pool_width": 2, "pool_height": 2, "stride": 2})
    assert rel_error(out, POOL_CORRECT_OUT) < 1e-7


def test_conv_backward_naive_notebook_check():
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
    db_num = eval_numerical_gradient_array(lambda b: conv_forward_naive(x, w, b, conv_param)[0], b, dout)
    out, cache = conv_forward_naive(x, w, b, conv_param)
    dx, dw, db = conv_backward_naive(dout, cache)
    # the notebook: dx 1.2e-08, dw 1.4e-10, db 1.2e-10
    assert rel_error(dx, dx_num) < 1e-7 and rel_error(dw, dw_num) < 1e-8 and rel_error(db, db_num) < 1e-8


def test_max_pool_backward_naive_notebook_check():
    np.random.seed(231)
    x, dout = np.random.randn(3, 2, 8, 8), np.random.randn(3, 2, 4, 4)
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    dx_num = eval_numerical_gradient_array(lambda x: max_pool_forward_naive(x, pool_param)[0], x, dout)
    out, cache = max_pool_forward_naive(x, pool_param)
    assert rel_error(max_pool_backward_naive(dout, cache), dx_num) < 1e-10  # notebook: 3.3e-12


def test_fast_layers_agree_with_naive_on_the_notebook_shapes():
    np.random.seed(231)
    x, w, b = (
        np.random.randn(10, 3, 31, 31),
        np.random.randn(25, 3, 3, 3),
        np.random.randn(
            25,
        ),
    )
    dout = np.random.randn(10, 25, 16, 16)
    conv_param = {"stride": 2, "pad": 1}
    out_naive, cache_naive = conv_forward_naive(x, w, b, conv_param)
    out_fast, cache_fast = conv_forward_fast(x, w, b, conv_param)
    assert rel_error(out_naive, out_fast) < 1e-9
    for naive, fast in zip(conv_backward_naive(dout, cache_naive), conv_backward_fast(dout, cache_fast)):
        assert rel_error(naive, fast) < 1e-9
    x, dout = np.random.randn(10, 3, 32, 32), np.random.randn(10, 3, 16, 16)
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    out_naive, cache_naive = max_pool_forward_naive(x, pool_param)
    out_fast, cache_fast = max_pool_forward_fast(x, pool_param)
    assert rel_error(out_naive, out_fast) == 0.0
    assert rel_error(max_pool_backward_naive(dout, cache_naive), max_pool_backward_fast(dout, cache_fast)) == 0.0


def test_sandwich_layers_gradients():
    np.random.seed(231)
    conv_param, pool_param = {"stride": 1, "pad": 1}, {"pool_height": 2, "pool_width": 2, "stride": 2}
    x, w, b = (
        np.random.randn(2, 3, 16, 16),
        np.random.randn(3, 3, 3, 3),
        np.random.randn(
            3,
        ),
    )
    dout = np.random.randn(2, 3, 8, 8)
    _, cache = conv_relu_pool_forward(x, w, b, conv_param, pool_param)
    grads = conv_relu_pool_backward(dout, cache)
    for value, grad in zip((x, w, b), grads):

        def f(v, value=value):
            args = [v if a is value else a for a in (x, w, b)]
            return conv_relu_pool_forward(*args, conv_param, pool_param)[0]

        assert rel_error(eval_numerical_gradient_array(f, value, dout), grad) < 1e-7  # notebook: 1e-8 .. 1e-9
    x, w, b = (
        np.random.randn(2, 3, 8, 8),
        np.random.randn(3, 3, 3, 3),
        np.random.randn(
            3,
        ),
    )
    dout = np.random.randn(2, 3, 8, 8)
    _, cache = conv_relu_forward(x, w, b, conv_param)
    dx, dw, db = conv_relu_backward(dout, cache)
    assert (
        rel_error(eval_numerical_gradient_array(lambda v: conv_relu_forward(v, w, b, conv_param)[0], x, dout), dx)
        < 1e-7
    )
    gamma, beta = np.random.randn(3), np.random.randn(3)
    _, cache = conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, {"mode": "train"})
    dx, dw, db, dgamma, dbeta = conv_bn_relu_backward(dout, cache)
    numerical = eval_numerical_gradient_array(
        lambda g: conv_bn_relu_forward(x, w, b, g, beta, conv_param, {"mode": "train"})[0], gamma, dout
    )
    assert rel_error(numerical, dgamma) < 1e-7
    xa, wa, ba = np.random.randn(4, 5), np.random.randn(5, 6), np.random.randn(6)
    ga, bea = np.random.randn(6), np.random.randn(6)
    douta = np.random.randn(4, 6)
    _, cache = affine_bn_relu_forward(xa, wa, ba, ga, bea, {"mode": "train"})
    dx = affine_bn_relu_backward(douta, cache)[0]
    numerical = eval_numerical_gradient_array(
        lambda v: affine_bn_relu_forward(v, wa, ba, ga, bea, {"mode": "train"})[0], xa, douta
    )
    assert rel_error(numerical, dx) < 1e-6


def test_spatial_batchnorm_forward_prints_the_notebooks_numbers():
    np.random.seed(231)
    N, C, H, W = 2, 3, 4, 5
    x = 4 * np.random.randn(N, C, H, W) + 10
    np.testing.assert_allclose(x.mean(axis=(0, 2, 3)), [9.33463814, 8.90909116, 9.11056338], atol=1e-8)
    out, _ = spatial_batchnorm_forward(x, np.ones(C), np.zeros(C), {"mode": "train"})
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), [0.99999962, 0.99999951, 0.9999996], atol=1e-8)
    assert np.abs(out.mean(axis=(0, 2, 3))).max() < 1e-14
    out, _ = spatial_batchnorm_forward(x, np.asarray([3, 4, 5]), np.asarray([6, 7, 8]), {"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), [6, 7, 8], atol=1e-13)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), [2.99999885, 3.99999804, 4.99999798], atol=1e-8)


def test_spatial_batchnorm_test_time_prints_the_notebooks_numbers():
    """50 training steps with momentum 0.9 from zero running statistics, then test mode."""
    np.random.seed(231)
    N, C, H, W = 10, 4, 11, 12
    bn_param = {"mode": "train"}
    gamma, beta = np.ones(C), np.zeros(C)
    for _ in range(50):
        x = 2.3 * np.random.randn(N, C, H, W) + 13
        spatial_batchnorm_forward(x, gamma, beta, bn_param)
    bn_param["mode"] = "test"
    x = 2.3 * np.random.randn(N, C, H, W) + 13
    a_norm, _ = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    np.testing.assert_allclose(
        a_norm.mean(axis=(0, 2, 3)), [-0.08034406, 0.07562881, 0.05716371, 0.04378383], atol=1e-8
    )
    np.testing.assert_allclose(a_norm.std(axis=(0, 2, 3)), [0.96718744, 1.0299714, 1.02887624, 1.00585577], atol=1e-8)


def test_spatial_batchnorm_backward_notebook_check():
    np.random.seed(231)
    N, C, H, W = 2, 3, 4, 5
    x = 5 * np.random.randn(N, C, H, W) + 12
    gamma, beta, dout = np.random.randn(C), np.random.randn(C), np.random.randn(N, C, H, W)
    bn_param = {"mode": "train"}
    dx_num = eval_numerical_gradient_array(lambda x: spatial_batchnorm_forward(x, gamma, beta, bn_param)[0], x, dout)
    dg_num = eval_numerical_gradient_array(lambda g: spatial_batchnorm_forward(x, g, beta, bn_param)[0], gamma, dout)
    _, cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    dx, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)
    assert rel_error(dx_num, dx) < 1e-6 and rel_error(dg_num, dgamma) < 1e-10  # notebook: 2.8e-07, 7.1e-12


def test_spatial_groupnorm_prints_the_notebooks_numbers_and_gradients():
    np.random.seed(231)
    N, C, H, W, G = 2, 6, 4, 5, 2
    x = 4 * np.random.randn(N, C, H, W) + 10
    np.testing.assert_allclose(
        x.reshape(N * G, -1).mean(axis=1), [9.72505327, 8.51114185, 8.9147544, 9.43448077], atol=1e-8
    )
    out, _ = spatial_groupnorm_forward(x, np.ones((1, C, 1, 1)), np.zeros((1, C, 1, 1)), G, {"mode": "train"})
    np.testing.assert_allclose(
        out.reshape(N * G, -1).std(axis=1), [0.99999963, 0.99999948, 0.99999973, 0.99999968], atol=1e-8
    )
    np.random.seed(231)
    x = 5 * np.random.randn(N, C, H, W) + 12
    gamma, beta, dout = np.random.randn(1, C, 1, 1), np.random.randn(1, C, 1, 1), np.random.randn(N, C, H, W)
    dx_num = eval_numerical_gradient_array(lambda x: spatial_groupnorm_forward(x, gamma, beta, G, {})[0], x, dout)
    dg_num = eval_numerical_gradient_array(lambda g: spatial_groupnorm_forward(x, g, beta, G, {})[0], gamma, dout)
    _, cache = spatial_groupnorm_forward(x, gamma, beta, G, {})
    dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
    assert dgamma.shape == (1, C, 1, 1)
    assert rel_error(dx_num, dx) < 1e-6 and rel_error(dg_num, dgamma) < 1e-10  # notebook: 6.3e-08, 1.1e-11


def test_batchnorm_param_dict_semantics():
    x = np.random.default_rng(0).standard_normal((6, 3)) * 2 + 5
    bn_param = {"mode": "train"}
    batchnorm_forward(x, np.ones(3), np.zeros(3), bn_param)
    np.testing.assert_allclose(bn_param["running_mean"], 0.1 * x.mean(axis=0))  # from zero, momentum 0.9
    np.testing.assert_allclose(bn_param["running_var"], 0.1 * x.var(axis=0))  # the biased variance
    _, cache = batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "train"})
    dout = np.random.default_rng(1).standard_normal(x.shape)
    for graph, alt in zip(batchnorm_backward(dout, cache), batchnorm_backward_alt(dout, cache)):
        np.testing.assert_allclose(graph, alt, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="bn_param\\['mode'\\] must be 'train' or 'test'"):
        batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "eval"})


def test_dropout_keeps_with_probability_p_and_is_seeded():
    np.random.seed(231)
    x = np.random.randn(500, 500) + 10
    for p in (0.25, 0.6):
        out, _ = dropout_forward(x, {"mode": "train", "p": p})
        assert abs(np.mean(out == 0) - (1 - p)) < 0.01  # p is the KEEP probability
        assert abs(out.mean() - x.mean()) < 0.05  # inverted dropout keeps the mean
        test_out, _ = dropout_forward(x, {"mode": "test", "p": p})
        np.testing.assert_array_equal(test_out, x)
    a, cache = dropout_forward(x[:5], {"mode": "train", "p": 0.5, "seed": 123})
    b, _ = dropout_forward(x[:5], {"mode": "train", "p": 0.5, "seed": 123})
    np.testing.assert_array_equal(a, b)
    dout = np.random.randn(*a.shape)
    dx_num = eval_numerical_gradient_array(
        lambda xx: dropout_forward(xx, {"mode": "train", "p": 0.2, "seed": 123})[0], x[:5], dout
    )
    _, cache = dropout_forward(x[:5], {"mode": "train", "p": 0.2, "seed": 123})
    assert rel_error(dropout_backward(dout, cache), dx_num) < 1e-10


def test_layernorm_with_ln_param():
    np.random.seed(231)
    x = 3 * np.random.randn(4, 5) + 2
    gamma, beta = np.random.randn(5), np.random.randn(5)
    out, cache = layernorm_forward(x, gamma, beta, {"eps": 1e-5})
    np.testing.assert_allclose(((out - beta) / gamma).mean(axis=1), 0, atol=1e-12)
    dout = np.random.randn(4, 5)
    dx_num = eval_numerical_gradient_array(lambda v: layernorm_forward(v, gamma, beta, {})[0], x, dout)
    assert rel_error(layernorm_backward(dout, cache)[0], dx_num) < 1e-8


def test_three_layer_conv_net_through_the_assignment_import():
    """The notebook's sanity check: about 2.3026 without regularization, about 2.5085 with reg 0.5."""
    np.random.seed(0)
    model = ThreeLayerConvNet()
    X, y = np.random.randn(50, 3, 32, 32), np.random.randint(10, size=50)
    assert model.loss(X, y)[0] == pytest.approx(np.log(10), abs=2e-3)
    model.reg = 0.5
    assert model.loss(X, y)[0] == pytest.approx(2.5085, abs=5e-3)


def test_the_assignments_optim_and_solver_modules():
    from numcnn.compat.cs231n.optim import adam, rmsprop, sgd, sgd_momentum
    from numcnn.compat.cs231n.solver import Solver

    for rule in (sgd, sgd_momentum, rmsprop, adam):
        assert list(inspect.signature(rule).parameters) == ["w", "dw", "config"]
    np.random.seed(231)
    model = cs231n.TwoLayerNet(input_dim=6, hidden_dim=8, num_classes=3, weight_scale=1e-2)
    data = {
        "X_train": np.random.randn(40, 6),
        "y_train": np.random.randint(3, size=40),
        "X_val": np.random.randn(10, 6),
        "y_val": np.random.randint(3, size=10),
    }
    solver = Solver(
        model,
        data,
        update_rule="adam",
        optim_config={"learning_rate": 1e-2},
        num_epochs=2,
        batch_size=10,
        print_every=1,
        verbose=False,
    )
    solver.train()
    assert len(solver.loss_history) == 8 and len(solver.val_acc_history) == 3
