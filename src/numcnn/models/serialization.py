"""How numcnn's models describe themselves to checkpoints (from_spec.py builds them back).

Networks of numcnn.nn modules register here (numcnn.models.registry);
the assignment's models (params_state.py) and Classifier register in
their own files. spec() is the class and constructor arguments (JSON-able);
state_arrays() every array that defines the model's state, by name;
load_state_arrays() puts them back.

A network of numcnn.nn modules is saved as its module tree,

    {"class": "Sequential", "args": {}, "children": {
        "0": {"class": "Conv2d", "args": {"in_channels": 3, "out_channels": 16, ...}},
        ...}}

and rebuilt from it. Classes come from a fixed registry (MODULES), never
from names imported out of the file.
"""

from __future__ import annotations

import numpy as np

from .. import nn
from .registry import build_spec_of, register_serializer

# -- the module tree ------------------------------------------------------------------


def _dtype_of(module: nn.Module) -> str:
    arrays = list(module.params.values()) + [v for v in module.buffers.values() if v.dtype.kind == "f"]
    return arrays[0].dtype.name if arrays else "float32"


def _pair(value):
    return list(value) if isinstance(value, tuple) else value


def _conv_args(m) -> dict:
    return dict(
        in_channels=m.in_channels,
        out_channels=m.out_channels,
        kernel_size=list(m.kernel_size),
        stride=list(m.stride),
        padding=_pair(m.padding),
        dilation=list(m.dilation),
        groups=m.groups,
        bias="bias" in m.params,
        dtype=_dtype_of(m),
    )


def _conv_transpose_args(m) -> dict:
    return dict(_conv_args(m), padding=list(m.padding), output_padding=list(m.output_padding))


def _batchnorm_args(m) -> dict:
    return dict(
        num_features=m.num_features,
        eps=m.eps,
        momentum=m.momentum,
        affine=m.affine,
        track_running_stats=m.track_running_stats,
        bias="bias" in m.params or not m.affine,
        dtype=_dtype_of(m),
    )


def _instancenorm_args(m) -> dict:
    affine = "weight" in m.params
    return dict(
        num_features=m.num_features,
        eps=m.eps,
        momentum=m.momentum,
        affine=affine,
        track_running_stats=m.track_running_stats,
        bias="bias" in m.params or not affine,
        dtype=_dtype_of(m),
    )


def _layernorm_args(m) -> dict:
    affine = "weight" in m.params
    return dict(
        normalized_shape=list(m.normalized_shape),
        eps=m.eps,
        elementwise_affine=affine,
        bias="bias" in m.params or not affine,
        dtype=_dtype_of(m),
    )


def _groupnorm_args(m) -> dict:
    affine = "weight" in m.params
    return dict(
        num_groups=m.num_groups,
        num_channels=m.num_channels,
        eps=m.eps,
        affine=affine,
        bias="bias" in m.params or not affine,
        dtype=_dtype_of(m),
    )


# class name -> (class, its constructor arguments read back from an instance)
MODULES = {
    "Sequential": (nn.Sequential, lambda m: {}),
    "Residual": (nn.Residual, lambda m: {"activation": bool(m.activation)}),
    "Conv2d": (nn.Conv2d, _conv_args),
    "ConvTranspose2d": (nn.ConvTranspose2d, _conv_transpose_args),
    "Linear": (
        nn.Linear,
        lambda m: dict(
            in_features=m.in_features, out_features=m.out_features, bias="bias" in m.params, dtype=_dtype_of(m)
        ),
    ),
    "BatchNorm1d": (nn.BatchNorm1d, _batchnorm_args),
    "BatchNorm2d": (nn.BatchNorm2d, _batchnorm_args),
    "InstanceNorm2d": (nn.InstanceNorm2d, _instancenorm_args),
    "LayerNorm": (nn.LayerNorm, _layernorm_args),
    "GroupNorm": (nn.GroupNorm, _groupnorm_args),
    "LocalResponseNorm": (nn.LocalResponseNorm, lambda m: dict(size=m.size, alpha=m.alpha, beta=m.beta, k=m.k)),
    "MaxPool2d": (
        nn.MaxPool2d,
        lambda m: dict(
            kernel_size=_pair(m.kernel_size),
            stride=_pair(m.stride),
            padding=_pair(m.padding),
            dilation=_pair(m.dilation),
        ),
    ),
    "AvgPool2d": (
        nn.AvgPool2d,
        lambda m: dict(
            kernel_size=_pair(m.kernel_size),
            stride=_pair(m.stride),
            padding=_pair(m.padding),
            count_include_pad=m.count_include_pad,
        ),
    ),
    "AdaptiveAvgPool2d": (nn.AdaptiveAvgPool2d, lambda m: dict(output_size=_pair(m.output_size))),
    "GlobalAvgPool2d": (nn.GlobalAvgPool2d, lambda m: {}),
    "ReLU": (nn.ReLU, lambda m: {}),
    "GELU": (nn.GELU, lambda m: {}),
    "LeakyReLU": (nn.LeakyReLU, lambda m: dict(negative_slope=m.negative_slope)),
    "Flatten": (nn.Flatten, lambda m: dict(start_dim=m.start_dim, end_dim=m.end_dim)),
    "Identity": (nn.Identity, lambda m: {}),
    "Scale": (nn.Scale, lambda m: dict(factor=m.factor)),
    "Dropout": (nn.Dropout, lambda m: dict(p=m.p)),
}


def module_tree(net) -> dict | None:
    """The JSON spec of a network of numcnn modules, or None if some module is not in MODULES.

    Only exact classes count: a user's subclass (its own forward) cannot be
    rebuilt from a name.
    """
    name = type(net).__name__
    if MODULES.get(name, (None,))[0] is not type(net):
        return None
    node = {"class": name, "args": {k: _plain(v) for k, v in MODULES[name][1](net).items()}}
    children = {}
    for child_name, child in net.named_children():
        children[child_name] = module_tree(child)
        if children[child_name] is None:
            return None
    if children:
        node["children"] = children
    return node


def _plain(value):
    """A constructor argument as JSON holds it (NumPy scalars as Python numbers, tuples as lists)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def module_spec(net: nn.Module) -> dict:
    """A bare network's spec: its module tree, and its build() arguments when build() made it."""
    return {"type": "Module", "config": {"net": build_spec_of(net)}, "modules": module_tree(net)}


register_serializer(
    nn.Module,
    spec=module_spec,
    arrays=lambda net: dict(net.state_dict()),
    load_arrays=lambda net, arrays: net.load_state_dict(arrays),
)
