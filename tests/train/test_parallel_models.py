"""Every model `numcnn train` builds splits over workers: one step's loss and gradients equal one worker's.

In float64: in float32 the gradients of the deeper networks move by about 1% when their input
moves by one rounding (max pooling and ReLU kinks: measured on airbench, 0.7% for a relative
input change of 1e-7), so a split step can only be compared with one worker's in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

from numcnn import models, nn
from numcnn.nn.random_state import capture_random_states, restore_random_states
from numcnn.train.build import build_model
from numcnn.train.config import model_names
from numcnn.train.parallel import DataParallel, start_workers, unsplittable_reason

BIG_IMAGES = {"airbench": (3, 32, 32), "vgg11": (3, 32, 32), "resnet18": (3, 96, 96)}  # their pooling's sizes
SLOW = {"resnet32", "resnet56", "resnet18", "vgg11", "airbench"}
OPTIONS = {"fc": {"norm": "batchnorm", "dropout": 0.3, "hidden": (16, 8)}, "twolayer": {"hidden": (8,)}}


def _float64(model):
    if hasattr(model, "net"):
        model.net.to(np.float64)
        return model
    for key in list(model.params):
        model.params[key] = model.params[key].astype(np.float64)
    if hasattr(model, "dtype"):
        model.dtype = np.float64
    return model


def _models():
    return [pytest.param(m, marks=pytest.mark.slow) if m in SLOW else m for m in model_names()]


@pytest.mark.parametrize("name", _models())
def test_one_step_on_three_workers_equals_one_workers(name):
    shape = BIG_IMAGES.get(name, (1, 8, 8))
    np.random.seed(0)
    model = _float64(build_model(name, shape, 10, weight_decay=1e-3, **OPTIONS.get(name, {})))
    assert unsplittable_reason(model) is None
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((12, *shape)), rng.integers(0, 10, 12)
    randomness = capture_random_states(model)
    loss, grads = model.loss(X, y)
    restore_random_states(model, randomness)  # the same dropout masks for the split step
    with start_workers(model, 3) as comm:
        split_loss, split_grads = DataParallel(model, comm).loss(X, y)
    assert split_loss == pytest.approx(loss, rel=1e-12)
    # a bias before batch norm has a gradient of 0 up to rounding: held to the largest gradient's scale
    largest = max(float(np.abs(grad).max()) for grad in grads.values())
    for key, grad in grads.items():
        assert split_grads[key].dtype == np.float64
        scale = max(float(np.abs(grad).max()), 1e-4 * largest)
        np.testing.assert_allclose(split_grads[key], grad, atol=1e-10 * scale, err_msg=key)


class ShardBlindDropout(nn.Dropout):
    """A dropout whose author did not make it read the shard (and says so)."""

    reads_batch_shard = False


class MyBatchNorm(nn.BatchNorm2d):
    """A subclass defined outside numcnn inherits the synchronized batch norm."""


def test_layers_that_honour_the_shard_say_so_and_subclasses_inherit_it():
    def classifier(*layers):
        return models.Classifier(nn.Sequential(nn.Conv2d(3, 8, 3), *layers, nn.GlobalAvgPool2d(), nn.Flatten()))

    assert unsplittable_reason(classifier(MyBatchNorm(8), nn.Dropout(0.5))) is None
    reason = unsplittable_reason(classifier(MyBatchNorm(8), ShardBlindDropout(0.5)))
    assert reason == "its layer 2 (ShardBlindDropout) does not support batch sharding"
    assert unsplittable_reason(classifier(ShardBlindDropout(0.0))) is None  # p = 0 draws nothing
    net = models.FullyConnectedNet([8], input_dim=12, normalization="batchnorm", dropout_keep_ratio=0.5)
    assert unsplittable_reason(net) is None
