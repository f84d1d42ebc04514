"""Where did the NaN come from? Locating the first non-finite value in a network.

When the loss turns NaN or infinite, the value is usually born in one
layer (a batch norm dividing by a collapsed variance, a weight that
overflowed, an exp that blew up) and then flows through all the others.
first_nonfinite re-runs the forward one module at a time and names the
first module whose parameters or output are not finite. It costs one extra
forward, so the Solver calls it only after a non-finite loss, never on the
hot path.
"""

from __future__ import annotations

import numpy as np

from .container import Residual, Sequential
from .module import Module
from .random_state import capture_random_states, restore_random_states


def _finite(a) -> bool:
    return bool(np.isfinite(a).all())


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _bad_parameters(module: Module) -> bool:
    return any(not _finite(p) for p in module.parameters())


def _walk(module: Module, x, name: str):
    """Run module on x, opening Sequential and Residual; returns (found, output).

    found is (dotted name, module) of the first culprit, output None then.
    A Residual is blamed itself when its branches are finite and their sum
    is not; any other module is one step.
    """
    if isinstance(module, (Sequential, Residual)):
        out = x
        for child_name, child in module.named_children():
            found, child_out = _walk(child, x if isinstance(module, Residual) else out, _join(name, child_name))
            if found:
                return found, None
            out = child_out
        if isinstance(module, Sequential):
            return None, out
    elif _bad_parameters(module):
        return (name, module), None
    out = module(x)
    return ((name, module), None) if not _finite(out) else (None, out)


def _snapshot(net: Module):
    """Everything a forward changes: buffers (running statistics), forward caches, generators."""

    modules = [
        (m, {k: np.copy(v) for k, v in m.buffers.items()}, (m._cache, m._cache_fresh, m._ran_forward))
        for m in net.modules()
    ]
    return modules, capture_random_states(net)


def _restore(net: Module, snapshot) -> None:

    modules, random_states = snapshot
    for module, buffers, (cache, fresh, ran) in modules:
        module.buffers.update(buffers)
        module._cache, module._cache_fresh, module._ran_forward = cache, fresh, ran
    restore_random_states(net, random_states)


def first_nonfinite(net: Module, x) -> tuple[str, Module] | None:
    """(dotted name, module) of the first module whose parameters or output are not finite.

    The forward is re-run on x one module at a time, in the modules'
    current modes (train or eval), opening Sequential and Residual children;
    names are relative to net ("3.body.1"), "" for net itself. None when
    every output is finite. x itself is not checked: a non-finite x makes
    the first module the culprit. The call changes nothing: buffers,
    forward caches and random generators are restored afterwards (a
    Dropout therefore redraws the same mask it will draw next, which may
    differ from the step that diverged).
    """
    snapshot = _snapshot(net)
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # expected here, and seen before
            found, _ = _walk(net, x, "")
    finally:
        _restore(net, snapshot)
    return found


def first_nonfinite_parameter(params: dict) -> str | None:
    """The first name in params (a model's dict of arrays) whose array is not finite, else None."""
    return next((name for name, value in params.items() if not _finite(value)), None)


def explain_nonfinite(model, x) -> str:
    """One clause for the NaN guard's message: where the first non-finite value came from.

    model: a module network (a Module, or an object with a Module .net such
    as models.Classifier), or any model with a .params dict (the CS231n-style
    models, whose first non-finite parameter is named). x: the batch the
    loss was computed on. Never raises: a failure to diagnose is described.
    """
    try:
        if not _finite(x):
            return "the input batch itself holds non-finite values"
        net = model if isinstance(model, Module) else getattr(model, "net", None)
        if isinstance(net, Module):
            found = first_nonfinite(net, x)
            if found is None:
                return "every layer's output is finite, so the loss computation itself overflowed"
            name, module = found
            where = f"layer {name}" if name else "the network"
            why = "parameters" if _bad_parameters(module) else "output"
            return f"the first non-finite value is in the {why} of {where} ({type(module).__name__})"
        params = getattr(model, "params", None)
        if isinstance(params, dict):
            name = first_nonfinite_parameter(params)
            if name is None:
                return "every parameter is finite, so the forward pass or the loss overflowed"
            return f"the first non-finite parameter is {name}"
        return "the model exposes no layers or parameters to check"
    except Exception as error:  # a diagnosis must never hide the divergence it explains
        return f"the non-finite value could not be located ({type(error).__name__}: {error})"
