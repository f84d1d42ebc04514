"""Capture and restore every random generator a training run draws from.

A run is exactly reproducible from a checkpoint only if all of them are
saved: NumPy's legacy global generator (the assignment's np.random), the
generator numcnn.nn layers use by default (nn.manual_seed), and any
Generator a module holds itself (a Dropout given rng=...). States are
stored as JSON-able dicts (the legacy key array as an ndarray).
"""

from __future__ import annotations

import numpy as np

from . import init


def _modules(model):
    net = getattr(model, "net", model)
    return net.named_modules() if hasattr(net, "named_modules") else []


def capture_random_states(model) -> dict:
    """The state of every random generator a run of `model` draws from, as a JSON-able dict.

    Holds NumPy's legacy global generator ("numpy_legacy", the assignment's np.random),
    the generator numcnn.nn layers draw from by default ("numcnn_nn"), and every
    numpy.random.Generator that a module of the model (or of its `net`) holds as an
    attribute ("modules", keyed "module name:attribute", e.g. a Dropout given rng=...).
    restore_random_states puts them back.
    """
    kind, keys, position, has_gauss, cached = np.random.get_state()
    states = {
        "numpy_legacy": {
            "kind": kind,
            "keys": keys,
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "numcnn_nn": init.generator().bit_generator.state,
        "modules": {},
    }
    for name, module in _modules(model):
        for attribute, value in vars(module).items():
            if isinstance(value, np.random.Generator):
                states["modules"][f"{name}:{attribute}"] = value.bit_generator.state
    return states


def restore_random_states(model, states: dict) -> None:
    """Put back the generator states that capture_random_states(model) returned; returns None.

    A module's generator is restored by its key; one the states do not name is left as it is.
    """
    legacy = states["numpy_legacy"]
    np.random.set_state(
        (
            legacy["kind"],
            np.asarray(legacy["keys"], dtype=np.uint32),
            legacy["position"],
            legacy["has_gauss"],
            legacy["cached_gaussian"],
        )
    )
    init.generator().bit_generator.state = states["numcnn_nn"]
    saved = states.get("modules", {})
    for name, module in _modules(model):
        for attribute, value in vars(module).items():
            key = f"{name}:{attribute}"
            if isinstance(value, np.random.Generator) and key in saved:
                value.bit_generator.state = saved[key]
