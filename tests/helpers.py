"""Shared test helpers: the PyTorch oracle and array comparisons."""

from __future__ import annotations

import contextlib
import importlib.util

import numpy as np
import pytest

try:
    import torch
    import torch.nn.functional as F

    torch.set_default_dtype(torch.float64)
except ImportError:  # PyTorch is the oracle, never a dependency of numcnn
    torch = None
    F = None

requires_torch = pytest.mark.skipif(
    torch is None, reason="PyTorch is not installed (pip install torch==2.13.0 to compare against it)"
)


def to_torch(array, requires_grad=False):
    """A float64 torch tensor copied from a NumPy array (any memory layout)."""
    tensor = torch.tensor(np.ascontiguousarray(array))
    tensor.requires_grad_(requires_grad)
    return tensor


def assert_close(actual, expected, rtol=1e-10, atol=1e-12, name="value"):
    """Elementwise closeness, with the worst offender in the message."""
    actual = np.asarray(actual.detach().numpy() if hasattr(actual, "detach") else actual)
    expected = np.asarray(expected.detach().numpy() if hasattr(expected, "detach") else expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=name)


def channels_last(x: np.ndarray) -> np.ndarray:
    """The same (N, C, H, W) values with channels-last memory."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def assert_net_matches_torch(net, twin, x_shape, rng, rtol=1e-6):
    """Load twin's state dict into net, then compare outputs, dx, every parameter gradient and the
    running statistics after a training step, in training and evaluation mode (float64)."""
    from numcnn.interop.pytorch import state_from_torch

    net.load_state_dict(state_from_torch(twin))
    for training in (True, False):
        net.train(training)
        twin.train(training)
        x = rng.standard_normal(x_shape)
        xt = torch.tensor(x, requires_grad=True)
        out, out_t = net(x), twin(xt)
        dout = rng.standard_normal(out.shape)
        dx = net.backward(dout)
        twin.zero_grad()
        out_t.backward(torch.tensor(dout))
        assert_close(out, out_t, rtol=rtol, atol=1e-9, name=f"out (training={training})")
        assert_close(dx, xt.grad, rtol=rtol, atol=1e-9, name="dx")
        torch_grads = {k: p.grad for k, p in twin.named_parameters()}
        assert set(torch_grads) == {k for k, _ in net.named_grads()}
        for key, grad in net.named_grads():
            assert_close(grad, torch_grads[key], rtol=rtol, atol=1e-9, name=key)
        ours = net.state_dict()
        for key, value in state_from_torch(twin).items():  # running statistics moved alike
            assert_close(ours[key], value, rtol=1e-9, atol=1e-12, name=key)


needs_numba = pytest.mark.skipif(
    not importlib.util.find_spec("numba"), reason="Numba is not installed (pip install numcnn[numba])"
)


@contextlib.contextmanager
def compiled_row_passes():
    """Every batch norm with rows of channels takes the compiled passes (ops/engine/rows_kernels.py)."""
    from numcnn.ops.engine import tuning

    kept, tuning.COMPILED_ROWS_MIN_NUMBERS = tuning.COMPILED_ROWS_MIN_NUMBERS, 0
    try:
        yield
    finally:
        tuning.COMPILED_ROWS_MIN_NUMBERS = kept
