"""A model's state as named arrays, to hand to other ranks; and whether a model can be split.

Both kinds of model numcnn trains are covered: a Classifier over a Module
network (parameters and buffers of the network) and the assignment's
dict-of-arrays models (params, plus FullyConnectedNet's batch-norm running
statistics), through the state_arrays / load_state_arrays pair that
checkpoints use; a bare model with only `params` is handled too.
"""

from __future__ import annotations

import numpy as np

__all__ = ["load_model_arrays", "model_arrays", "unsplittable_reason"]


def model_arrays(model) -> dict[str, np.ndarray]:
    """Every array of the model's state (parameters and running statistics), by name."""
    if hasattr(model, "state_arrays"):
        return {k: np.asarray(v) for k, v in model.state_arrays().items()}
    return {f"params.{k}": np.asarray(v) for k, v in model.params.items()}


def load_model_arrays(model, arrays: dict[str, np.ndarray]) -> None:
    """Set the model's state from model_arrays' output (copied: the arrays given may be reused)."""
    if hasattr(model, "load_state_arrays"):
        model.load_state_arrays(arrays)
        return
    for key, value in arrays.items():
        model.params[key.split(".", 1)[1]] = np.array(value, copy=True)


def _reads_shard(obj) -> bool:
    """Whether obj's class says it honours nn.shard.current_shard (reads_batch_shard = True).

    A class attribute, so a subclass defined anywhere inherits it; a layer written without
    the shard in mind does not have it and is refused rather than silently computing
    each worker's rows on their own.
    """
    return bool(getattr(type(obj), "reads_batch_shard", False))


def unsplittable_reason(model) -> str | None:
    """Why the model cannot be split over workers (None: it can).

    Layers that look at other rows of the batch (batch norm in training, and dropout, whose
    mask is drawn for the whole batch) must honour nn.shard.current_shard; otherwise N workers
    would not compute what one computes. Every other layer sees one sample at a time.
    """
    from ...nn import BatchNorm1d, BatchNorm2d, Dropout

    net = getattr(model, "net", None)
    if net is not None and hasattr(net, "named_modules"):
        for name, module in net.named_modules():
            coupled = isinstance(module, Dropout) and module.p > 0 or isinstance(module, (BatchNorm1d, BatchNorm2d))
            if coupled and not _reads_shard(module):
                return f"its layer {name} ({type(module).__name__}) does not support batch sharding"
        return None
    uses_bn = getattr(model, "normalization", None) == "batchnorm"
    uses_dropout = bool(getattr(model, "use_dropout", False))
    if (uses_bn or uses_dropout) and not _reads_shard(model):
        what = "batch norm" if uses_bn else "dropout"
        return f"{type(model).__name__}'s {what} does not support batch sharding"
    return None
