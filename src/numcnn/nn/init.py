"""Parameter initialisation, as torch.nn initialises its layers, from a NumPy Generator.

PyTorch initialises Linear and Conv weights with kaiming_uniform_(a=sqrt(5)),
which works out to U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and biases with the
same bound; fan_in is in_features for Linear and (C_in/groups)*KH*KW for
convolutions. Layers draw from the Generator they are given, or from a
module-level one that manual_seed() resets (torch.manual_seed's role).
"""

from __future__ import annotations

import math

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the generator layers draw from when none is passed; returns it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def generator(rng: np.random.Generator | None = None) -> np.random.Generator:
    """The Generator a layer draws its initial weights from: rng itself, or numcnn's default when None.

    The default is the module-level generator that manual_seed() resets. Raises ValueError
    when rng is neither None nor a numpy.random.Generator.
    """
    if rng is None:
        return _generator
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def uniform(shape, bound: float, rng: np.random.Generator, dtype) -> np.ndarray:
    """U(-bound, bound) samples of `shape`."""
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def kaiming_uniform(shape, fan_in: int, rng: np.random.Generator, dtype, a: float = math.sqrt(5)) -> np.ndarray:
    """PyTorch's kaiming_uniform_: U(-b, b), b = sqrt(2 / (1 + a^2)) * sqrt(3 / fan_in)."""
    gain = math.sqrt(2.0 / (1.0 + a * a))
    return uniform(shape, gain * math.sqrt(3.0 / fan_in), rng, dtype)


def kaiming_normal(shape, fan_in: int, rng: np.random.Generator, dtype) -> np.ndarray:
    """He et al.'s N(0, 2 / fan_in) for ReLU networks."""
    return (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(dtype)


def dirac(weight: np.ndarray) -> np.ndarray:
    """A copy of conv weights (F, C, KH, KW) whose first min(F, C) filters pass their channel through.

    Filter i becomes 1 at (channel i, the kernel's centre) and 0 elsewhere, as
    torch.nn.init.dirac_ sets them; the other F - C filters keep their values.
    airbench initializes its convolutions so: at the start each layer adds an
    identity path to its random filters, an implicit residual.
    """
    weight = np.array(weight, copy=True)
    if weight.ndim != 4:
        raise ValueError(f"weight must be 4-d (F, C, KH, KW), got shape {weight.shape}")
    count = min(weight.shape[0], weight.shape[1])
    weight[:count] = 0
    weight[np.arange(count), np.arange(count), weight.shape[2] // 2, weight.shape[3] // 2] = 1
    return weight
