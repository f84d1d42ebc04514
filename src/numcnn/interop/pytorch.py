"""Build the PyTorch twin of a numcnn network (needs torch; numcnn itself never does).

    twin = to_torch(net)                  # same architecture, same state-dict keys, same weights
    net.load_state_dict(state_from_torch(twin))   # and back

Used by the tests (PyTorch as the oracle) and the benchmarks (PyTorch as
the speed anchor on identical weights). torch is imported only when a
function here is called.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import nn


def _torch():
    try:
        import torch
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("numcnn.interop.pytorch needs PyTorch: pip install torch") from error
    return torch


def _residual_class():
    torch = _torch()

    class TorchResidual(torch.nn.Module):
        """relu(body(x) + shortcut(x)), numcnn's Residual."""

        def __init__(self, body, shortcut=None, activation=True):
            super().__init__()
            self.body = body
            if shortcut is not None:
                self.shortcut = shortcut
            self.activation = activation

        def forward(self, x):
            skip = self.shortcut(x) if hasattr(self, "shortcut") else x
            total = self.body(x) + skip
            return torch.relu(total) if self.activation else total

    return TorchResidual


def _convert(module: nn.Module):
    torch = _torch()
    tn = torch.nn
    if isinstance(module, nn.Sequential):
        return tn.Sequential(OrderedDict((name, _convert(child)) for name, child in module.named_children()))
    if isinstance(module, nn.Residual):
        shortcut = _convert(module.shortcut) if module.has_shortcut else None
        return _residual_class()(_convert(module.body), shortcut, module.activation)
    if isinstance(module, nn.Conv2d):
        return tn.Conv2d(
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            module.stride,
            module.padding,
            module.dilation,
            module.groups,
            bias="bias" in module.params,
        )
    if isinstance(module, nn.ConvTranspose2d):
        return tn.ConvTranspose2d(
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            module.stride,
            module.padding,
            module.output_padding,
            module.groups,
            bias="bias" in module.params,
            dilation=module.dilation,
        )
    if isinstance(module, nn.Linear):
        return tn.Linear(module.in_features, module.out_features, bias="bias" in module.params)
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        cls = tn.BatchNorm1d if isinstance(module, nn.BatchNorm1d) else tn.BatchNorm2d
        return cls(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
            bias="bias" in module.params or not module.affine,
        )
    if isinstance(module, nn.LayerNorm):
        return tn.LayerNorm(
            module.normalized_shape, module.eps, "weight" in module.params, bias="bias" in module.params
        )
    if isinstance(module, nn.GroupNorm):
        return tn.GroupNorm(
            module.num_groups,
            module.num_channels,
            module.eps,
            "weight" in module.params,
            bias="bias" in module.params or "weight" not in module.params,
        )
    if isinstance(module, nn.InstanceNorm2d):
        return tn.InstanceNorm2d(
            module.num_features,
            module.eps,
            module.momentum,
            "weight" in module.params,
            module.track_running_stats,
            bias="bias" in module.params or "weight" not in module.params,
        )
    if isinstance(module, nn.LocalResponseNorm):
        return tn.LocalResponseNorm(module.size, module.alpha, module.beta, module.k)
    if isinstance(module, nn.MaxPool2d):
        return tn.MaxPool2d(module.kernel_size, module.stride, module.padding, module.dilation)
    if isinstance(module, nn.AvgPool2d):
        return tn.AvgPool2d(
            module.kernel_size, module.stride, module.padding, count_include_pad=module.count_include_pad
        )
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return tn.AdaptiveAvgPool2d(module.output_size)
    simple = {
        nn.ReLU: lambda m: tn.ReLU(),
        nn.GELU: lambda m: tn.GELU(),
        nn.LeakyReLU: lambda m: tn.LeakyReLU(m.negative_slope),
        nn.Flatten: lambda m: tn.Flatten(m.start_dim, m.end_dim),
        nn.Identity: lambda m: tn.Identity(),
        nn.Dropout: lambda m: tn.Dropout(m.p),
    }
    for cls, make in simple.items():
        if type(module) is cls:
            return make(module)
    if isinstance(module, nn.Scale):
        return _torch_scale(module.factor)
    raise ValueError(f"no PyTorch twin known for {type(module).__name__}")


def _torch_scale(factor: float):
    import torch

    class Scale(torch.nn.Module):  # airbench's Mul
        def __init__(self):
            super().__init__()
            self.factor = factor

        def forward(self, x):
            return x * self.factor

    return Scale()


def to_torch(net: nn.Module, dtype=None):
    """The PyTorch module with net's architecture, state-dict keys and current weights.

    dtype: a torch dtype; by default the twin takes the dtype of net's first parameter.
    """
    torch = _torch()
    twin = _convert(net)
    state = net.state_dict()
    if dtype is None:
        floating = [v for v in state.values() if np.issubdtype(v.dtype, np.floating)]
        dtype = torch.float64 if floating and floating[0].dtype == np.float64 else torch.float32
    twin = twin.to(dtype)
    twin.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})
    twin.train(net.training)
    return twin


def state_from_torch(module) -> OrderedDict[str, np.ndarray]:
    """A torch module's state dict as NumPy arrays, ready for numcnn's load_state_dict."""
    return OrderedDict((k, v.detach().cpu().numpy()) for k, v in module.state_dict().items())
