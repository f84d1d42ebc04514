"""State dicts against networks written in PyTorch by hand (not by numcnn.interop's to_torch).

The same architecture built in each framework must have the same keys and
shapes, so that torch's state dict loads into numcnn and both then compute
the same outputs and gradients, in training and evaluation mode.
"""

from collections import OrderedDict

import numpy as np

from helpers import assert_net_matches_torch, requires_torch, torch
from numcnn import models, nn


def _torch_residual(tn, cin, cout, stride):
    """d2l's residual block, named as numcnn's Residual (body, shortcut)."""

    class Residual(tn.Module):
        def __init__(self):
            super().__init__()
            self.body = tn.Sequential(
                tn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                tn.BatchNorm2d(cout),
                tn.ReLU(),
                tn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                tn.BatchNorm2d(cout),
            )
            self.shortcut = (
                tn.Sequential(tn.Conv2d(cin, cout, 1, stride, bias=False), tn.BatchNorm2d(cout))
                if stride != 1 or cin != cout
                else None
            )

        def forward(self, x):
            skip = x if self.shortcut is None else self.shortcut(x)
            return torch.relu(self.body(x) + skip)

    return Residual()


def _torch_resnet8(tn, widths=(4, 6, 8), num_classes=5):
    """He et al.'s CIFAR ResNet with one block per stage, written out in PyTorch."""
    return tn.Sequential(
        OrderedDict(
            [
                (
                    "stem",
                    tn.Sequential(tn.Conv2d(3, widths[0], 3, 1, 1, bias=False), tn.BatchNorm2d(widths[0]), tn.ReLU()),
                ),
                ("stage1", tn.Sequential(_torch_residual(tn, widths[0], widths[0], 1))),
                ("stage2", tn.Sequential(_torch_residual(tn, widths[0], widths[1], 2))),
                ("stage3", tn.Sequential(_torch_residual(tn, widths[1], widths[2], 2))),
                ("pool", tn.AdaptiveAvgPool2d(1)),
                ("flatten", tn.Flatten()),
                ("fc", tn.Linear(widths[2], num_classes)),
            ]
        )
    )


def _torch_cnn(tn):
    """A plain stack, keys by position: 0.weight, 1.running_mean, ..."""
    return tn.Sequential(
        tn.Conv2d(3, 6, 3, padding=1),
        tn.BatchNorm2d(6),
        tn.ReLU(),
        tn.MaxPool2d(2),
        tn.Conv2d(6, 8, 3, groups=2, bias=False),
        tn.GroupNorm(2, 8),
        tn.LeakyReLU(0.1),
        tn.Flatten(),
        tn.Linear(8 * 2 * 2, 7),
        tn.LayerNorm(7),
        tn.Linear(7, 3),
    )


def _numcnn_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, groups=2, bias=False),
        nn.GroupNorm(2, 8),
        nn.LeakyReLU(0.1),
        nn.Flatten(),
        nn.Linear(8 * 2 * 2, 7),
        nn.LayerNorm(7),
        nn.Linear(7, 3),
    )


def _compare(net, twin, x_shape, rng):
    state = twin.state_dict()
    ours = net.state_dict()
    assert list(ours) == list(state), "same keys, in the same order"
    assert all(ours[k].shape == tuple(v.shape) for k, v in state.items())
    assert_net_matches_torch(net, twin, x_shape, rng)


@requires_torch
def test_a_hand_written_torch_resnet_loads_into_numcnn_and_agrees():
    torch.manual_seed(0)
    twin = _torch_resnet8(torch.nn).double()
    for p in twin.parameters():  # random gamma and beta too
        torch.nn.init.normal_(p, 0.0, 0.5)
    net = models.resnet_cifar(8, num_classes=5, widths=(4, 6, 8)).to(np.float64)
    _compare(net, twin, (3, 3, 8, 8), np.random.default_rng(1))


@requires_torch
def test_a_hand_written_torch_stack_loads_into_numcnn_and_agrees():
    torch.manual_seed(1)
    twin = _torch_cnn(torch.nn).double()
    for p in twin.parameters():
        torch.nn.init.normal_(p, 0.0, 0.5)
    _compare(_numcnn_cnn().to(np.float64), twin, (4, 3, 8, 8), np.random.default_rng(2))
