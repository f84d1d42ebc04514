"""Every numeric constructor argument of every module is checked where the layer is built.

A bad value raises ValueError whose message starts with the argument's
name (PyTorch's spelling), instead of failing at the first forward or
silently producing NaN.
"""

import numpy as np
import pytest

from numcnn import nn

NAN, INF = float("nan"), float("inf")

CASES = {
    "LeakyReLU": (lambda v: nn.LeakyReLU(negative_slope=v), "negative_slope", [NAN, INF, -INF, "0.1"]),
    "Dropout": (lambda v: nn.Dropout(p=v), "p", [-0.5, 1.5, NAN, "0.5"]),
    "BatchNorm2d eps": (lambda v: nn.BatchNorm2d(4, eps=v), "eps", [0, -1e-5, NAN, INF]),
    "BatchNorm1d momentum": (lambda v: nn.BatchNorm1d(4, momentum=v), "momentum", [-0.1, 2, NAN, INF, "0.1"]),
    "BatchNorm2d num_features": (lambda v: nn.BatchNorm2d(v), "num_features", [0, 4.0, NAN]),
    "LayerNorm eps": (lambda v: nn.LayerNorm(4, eps=v), "eps", [0, NAN, INF]),
    "GroupNorm num_groups": (lambda v: nn.GroupNorm(v, 4), "num_groups", [0, 2.0, NAN]),
    "GroupNorm eps": (lambda v: nn.GroupNorm(2, 4, eps=v), "eps", [0, NAN, INF]),
    "InstanceNorm2d eps": (lambda v: nn.InstanceNorm2d(4, eps=v), "eps", [-1, NAN]),
    "InstanceNorm2d momentum": (lambda v: nn.InstanceNorm2d(4, momentum=v), "momentum", [NAN, 1.5]),
    "LocalResponseNorm size": (lambda v: nn.LocalResponseNorm(v), "size", [0, 2.0, NAN]),
    "LocalResponseNorm alpha": (lambda v: nn.LocalResponseNorm(3, alpha=v), "alpha", [-1.0, NAN, INF]),
    "LocalResponseNorm beta": (lambda v: nn.LocalResponseNorm(3, beta=v), "beta", [NAN, -INF]),
    "LocalResponseNorm k": (lambda v: nn.LocalResponseNorm(3, k=v), "k", [0, NAN, INF]),
    "Conv2d kernel_size": (lambda v: nn.Conv2d(4, 4, v), "kernel_size", [0, 3.0, NAN]),
    "Conv2d stride": (lambda v: nn.Conv2d(4, 4, 3, stride=v), "stride", [0, NAN]),
    "Conv2d padding": (lambda v: nn.Conv2d(4, 4, 3, stride=2, padding=v), "padding", [-1, NAN, "same", "full"]),
    "Conv2d dilation": (lambda v: nn.Conv2d(4, 4, 3, dilation=v), "dilation", [0, NAN]),
    "Conv2d groups": (lambda v: nn.Conv2d(4, 4, 3, groups=v), "groups", [0, 2.0, NAN]),
    "ConvTranspose2d output_padding": (
        lambda v: nn.ConvTranspose2d(4, 4, 3, stride=2, output_padding=v),
        "output_padding",
        [-1, 2, NAN],
    ),
    "MaxPool2d kernel_size": (lambda v: nn.MaxPool2d(v), "kernel_size", [0, NAN, INF]),
    "MaxPool2d stride": (lambda v: nn.MaxPool2d(2, stride=v), "stride", [0, NAN]),
    "MaxPool2d padding": (lambda v: nn.MaxPool2d(2, padding=v), "padding", [-1, 2, NAN]),
    "MaxPool2d dilation": (lambda v: nn.MaxPool2d(2, dilation=v), "dilation", [0, NAN]),
    "AvgPool2d kernel_size": (lambda v: nn.AvgPool2d(v), "kernel_size", [0, NAN]),
    "AvgPool2d padding": (lambda v: nn.AvgPool2d(2, padding=v), "padding", [2, NAN]),
    "AdaptiveAvgPool2d": (lambda v: nn.AdaptiveAvgPool2d(v), "output_size", [0, NAN, 1.0]),
    "Linear in_features": (lambda v: nn.Linear(v, 2), "in_features", [0, NAN]),
    "Scale": (lambda v: nn.Scale(v), "factor", [NAN, INF, "2"]),
    "Flatten": (lambda v: nn.Flatten(start_dim=v), "start_dim", [1.0, NAN]),
    "Conv2d dtype": (lambda v: nn.Conv2d(4, 4, 3, dtype=v), "dtype", [np.float16, np.int32, "int8", "not a dtype"]),
    "ConvTranspose2d dtype": (lambda v: nn.ConvTranspose2d(4, 4, 3, dtype=v), "dtype", [np.float16]),
    "Linear dtype": (lambda v: nn.Linear(4, 2, dtype=v), "dtype", [np.float16, np.complex64]),
    "BatchNorm2d dtype": (lambda v: nn.BatchNorm2d(4, dtype=v), "dtype", [np.int64]),
    "LayerNorm dtype": (lambda v: nn.LayerNorm(4, dtype=v), "dtype", [np.float16]),
    "GroupNorm dtype": (lambda v: nn.GroupNorm(2, 4, dtype=v), "dtype", [np.float16]),
    "InstanceNorm2d dtype": (lambda v: nn.InstanceNorm2d(4, dtype=v), "dtype", [np.float16]),
    "Module.to": (lambda v: nn.Linear(4, 2).to(v), "dtype", [np.float16, np.int32]),
}
PARAMS = [
    pytest.param(make, name, value, id=f"{label}={value!r}")
    for label, (make, name, values) in CASES.items()
    for value in values
]


@pytest.mark.parametrize("make, name, value", PARAMS)
def test_a_bad_constructor_argument_is_refused_by_name(make, name, value):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        make(value)


def test_an_empty_batch_through_a_network_is_named_by_the_first_op():
    """Flatten used to fail first with NumPy's 'cannot reshape array of size 0'."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"^x is an empty batch \(shape \(0, 4\)\)"):
        net(np.zeros((0, 2, 2), np.float32))


def test_a_refused_batch_leaves_batch_norm_buffers_untouched():
    """num_batches_tracked was counted before the op refused x (and momentum=None then used it)."""
    bn = nn.BatchNorm2d(3, momentum=None)
    for bad in (np.zeros((0, 3, 2, 2), np.float32), np.zeros((1, 3, 1, 1), np.float32)):
        with pytest.raises(ValueError, match="^x is an empty batch|needs more than 1 value"):
            bn(bad)
    assert bn.buffers["num_batches_tracked"] == 0
    x = np.random.default_rng(0).standard_normal((4, 3, 2, 2)).astype(np.float32)
    bn(x)  # the first accepted batch is the whole cumulative average
    np.testing.assert_allclose(bn.buffers["running_mean"], x.mean(axis=(0, 2, 3)), rtol=1e-5, atol=1e-6)


def test_a_refused_batch_leaves_instance_norm_running_stats_untouched():
    """The running statistics became NaN (empty batch) or raised ZeroDivisionError (1x1 maps) before."""
    norm = nn.InstanceNorm2d(3, track_running_stats=True)
    with pytest.raises(ValueError, match="^x is an empty batch"):
        norm(np.zeros((0, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="needs more than 1 spatial element"):
        norm(np.zeros((2, 3, 1, 1), np.float32))
    np.testing.assert_array_equal(norm.buffers["running_mean"], np.zeros(3))
    np.testing.assert_array_equal(norm.buffers["running_var"], np.ones(3))
