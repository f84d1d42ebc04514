"""The reference outputs printed in the CS231n convolutional-networks notebook."""

import numpy as np
import pytest

from numcnn.gradcheck import rel_error
from numcnn.ops import conv2d_forward, conv2d_forward_naive, max_pool2d_forward, max_pool2d_forward_naive
from tests_reference import CONV_CORRECT_OUT, POOL_CORRECT_OUT


@pytest.mark.parametrize("forward", [conv2d_forward, conv2d_forward_naive])
def test_conv_forward_reference_output(forward):
    x_shape, w_shape = (2, 3, 4, 4), (3, 3, 4, 4)
    x = np.linspace(-0.1, 0.5, num=np.prod(x_shape)).reshape(x_shape)
    w = np.linspace(-0.2, 0.3, num=np.prod(w_shape)).reshape(w_shape)
    b = np.linspace(-0.1, 0.2, num=3)
    out, _ = forward(x, w, b, stride=2, pad=1)
    assert rel_error(out, CONV_CORRECT_OUT) < 1e-7


@pytest.mark.parametrize("forward", [max_pool2d_forward, max_pool2d_forward_naive])
def test_max_pool_forward_reference_output(forward):
    x_shape = (2, 3, 4, 4)
    x = np.linspace(-0.3, 0.4, num=np.prod(x_shape)).reshape(x_shape)
    out, _ = forward(x, kernel_size=2, stride=2)
    assert rel_error(out, POOL_CORRECT_OUT) < 1e-7
