"""Each layer against its torch.nn twin: outputs, dx, parameter gradients and buffers."""

import numpy as np
import pytest

from helpers import assert_close, requires_torch, torch
from numcnn import nn

LAYERS = {
    "linear": (lambda: nn.Linear(6, 4), (3, 6)),
    "linear_3d": (lambda: nn.Linear(6, 4, bias=False), (2, 3, 6)),
    "conv": (lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), (2, 4, 7, 7)),
    "conv_same_dilated": (lambda: nn.Conv2d(3, 5, (3, 2), padding="same", dilation=2), (2, 3, 6, 5)),
    "conv_transpose": (
        lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
        (2, 4, 4, 3),
    ),
    "maxpool": (lambda: nn.MaxPool2d(3, 2, 1), (2, 3, 7, 6)),
    "avgpool": (lambda: nn.AvgPool2d(2, count_include_pad=False, padding=1), (2, 3, 5, 5)),
    "adaptive": (lambda: nn.AdaptiveAvgPool2d((3, 2)), (2, 3, 7, 5)),
    "global": (lambda: nn.GlobalAvgPool2d(), (2, 3, 4, 5)),
    "relu": (lambda: nn.ReLU(), (3, 4)),
    "leaky": (lambda: nn.LeakyReLU(0.2), (3, 4)),
    "gelu": (lambda: nn.GELU(), (3, 4)),
    "flatten": (lambda: nn.Flatten(), (2, 3, 2, 2)),
    "scale": (lambda: nn.Scale(1 / 9), (3, 4)),
    "batchnorm1d": (lambda: nn.BatchNorm1d(4), (5, 4)),
    "batchnorm1d_3d": (lambda: nn.BatchNorm1d(4, momentum=None), (3, 4, 5)),
    "batchnorm2d": (lambda: nn.BatchNorm2d(3, momentum=0.3), (4, 3, 2, 3)),
    "batchnorm2d_untracked": (lambda: nn.BatchNorm2d(3, track_running_stats=False, affine=False), (4, 3, 2, 3)),
    "layernorm": (lambda: nn.LayerNorm((3, 4)), (2, 5, 3, 4)),
    "groupnorm": (lambda: nn.GroupNorm(2, 6), (2, 6, 3, 3)),
    "groupnorm_no_bias": (lambda: nn.GroupNorm(3, 6, bias=False), (2, 6, 3, 3)),
    "batchnorm2d_no_bias": (lambda: nn.BatchNorm2d(3, bias=False), (4, 3, 2, 3)),
    "instancenorm_momentum_none": (
        lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True, momentum=None, bias=False),
        (2, 3, 4, 4),
    ),
    "instancenorm": (lambda: nn.InstanceNorm2d(3, affine=True), (2, 3, 4, 4)),
    "instancenorm_tracked": (lambda: nn.InstanceNorm2d(3, track_running_stats=True, momentum=0.2), (2, 3, 4, 4)),
    "lrn": (lambda: nn.LocalResponseNorm(3, alpha=0.1), (2, 5, 3, 3)),
}


def _randomize(module, rng):
    """Random gamma and beta (and any other parameter), so nothing hides behind ones and zeros."""
    for key, value in module.params.items():
        module.params[key] = rng.standard_normal(value.shape)


@requires_torch
@pytest.mark.parametrize("name", LAYERS)
def test_layer_matches_torch_in_train_and_eval(name):
    make, x_shape = LAYERS[name]
    rng = np.random.default_rng(0)
    layer = make().to(np.float64)
    _randomize(layer, rng)
    from numcnn.interop.pytorch import to_torch

    twin = to_torch(layer)
    for mode in (True, True, False):  # two training steps move running statistics, then eval
        layer.train(mode)
        twin.train(mode)
        x = 3.0 * rng.standard_normal(x_shape) + 1.0
        out = layer(x)
        xt = torch.tensor(x, requires_grad=True)
        out_t = twin(xt)
        dout = rng.standard_normal(out.shape)
        dx = layer.backward(dout)
        twin.zero_grad()
        out_t.backward(torch.tensor(dout))
        assert_close(out, out_t, rtol=1e-9, atol=1e-11, name=f"{name} out (training={mode})")
        assert_close(dx, xt.grad, rtol=1e-8, atol=1e-10, name=f"{name} dx (training={mode})")
        torch_params = dict(twin.named_parameters())
        for key, grad in layer.grads.items():
            assert_close(grad, torch_params[key].grad, rtol=1e-8, atol=1e-10, name=f"{name} d{key}")
        for key, value in twin.state_dict().items():
            assert_close(layer.state_dict()[key], value, rtol=1e-12, atol=1e-12, name=f"{name} {key}")


@requires_torch
def test_dropout_is_the_identity_in_eval_and_scales_in_train():
    layer = nn.Dropout(0.25, rng=np.random.default_rng(0))
    x = np.ones((200, 50))
    layer.eval()
    np.testing.assert_array_equal(layer(x), x)
    layer.train()
    out = layer(x)
    assert set(np.unique(out)) == {0.0, 1 / 0.75}
    np.testing.assert_array_equal(layer.backward(x), out)


@requires_torch
@pytest.mark.parametrize(
    "make, torch_make, fan_in",
    [
        (lambda: nn.Linear(500, 300), lambda: torch.nn.Linear(500, 300), 500),
        (lambda: nn.Conv2d(8, 64, 3, groups=2), lambda: torch.nn.Conv2d(8, 64, 3, groups=2), 4 * 9),
        (
            lambda: nn.ConvTranspose2d(8, 120, 3, groups=4),
            lambda: torch.nn.ConvTranspose2d(8, 120, 3, groups=4),
            30 * 9,
        ),
    ],
)
def test_initialisation_has_torchs_bounds(make, torch_make, fan_in):
    """Kaiming-uniform with a=sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as torch draws."""
    nn.manual_seed(0)
    torch.manual_seed(0)
    ours, theirs = make(), torch_make()
    bound = 1 / np.sqrt(fan_in)
    for key, value in theirs.state_dict().items():
        value = value.numpy()
        assert ours.params[key].shape == value.shape
        assert np.abs(value).max() <= bound and np.abs(ours.params[key]).max() <= bound
        if value.size >= 100:  # a large sample fills the interval and is uniform (std bound/sqrt 3)
            for sample in (value, ours.params[key]):
                assert np.abs(sample).max() > 0.95 * bound
                assert abs(sample.std() - bound / np.sqrt(3)) < 0.1 * bound
