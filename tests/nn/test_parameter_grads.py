"""Every module with parameters sets one gradient per parameter, in the parameter's dtype (Module._set_grads)."""

import numpy as np
import pytest

from numcnn import nn

MODULES = {
    "Conv2d": (lambda: nn.Conv2d(4, 6, 3, padding=1, groups=2, rng=np.random.default_rng(0)), (2, 4, 5, 5)),
    "Conv2d no bias": (lambda: nn.Conv2d(4, 6, 3, bias=False, rng=np.random.default_rng(0)), (2, 4, 5, 5)),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, rng=np.random.default_rng(0)), (2, 4, 3, 3)),
    "Linear": (lambda: nn.Linear(5, 3, rng=np.random.default_rng(0)), (4, 5)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(4), (2, 4, 3, 3)),
    "LayerNorm no bias": (lambda: nn.LayerNorm(5, bias=False), (4, 5)),
    "GroupNorm no affine": (lambda: nn.GroupNorm(2, 4, affine=False), (2, 4, 3, 3)),
}


@pytest.mark.parametrize("name", MODULES)
def test_float64_data_through_float32_parameters_gives_float32_gradients(name):
    make, shape = MODULES[name]
    module = make()
    x = np.random.default_rng(1).normal(size=shape)  # float64: the ops compute in it
    out = module(x)
    assert out.dtype == np.float64
    dx = module.backward(np.ones_like(out))
    assert dx.shape == shape
    assert list(module.grads) == list(module.params)
    for key, grad in module.grads.items():
        assert grad.dtype == np.float32 and grad.shape == module.params[key].shape, key


def test_conv_modules_share_one_base():
    assert nn.Conv2d.backward is nn.ConvTranspose2d.backward
