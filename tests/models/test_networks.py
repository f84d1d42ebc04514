import numpy as np
import pytest

from helpers import assert_net_matches_torch, requires_torch, torch
from numcnn import models, nn
from numcnn.models import Classifier
from training import overfit

SMALL = {  # the registry's networks at test size (the architecture, not the width, is what is tested)
    "resnet20": dict(),
    "resnet18": dict(),
    "airbench": dict(widths=(8, 16, 16), whiten_width=6),
    "vgg": dict(arch=((1, 4), (2, 8)), image_size=(16, 16), hidden=(12,), dropout=0.0),
}
AIRBENCH94 = dict(activation="gelu", dirac=True, batchnorm_eps=1e-12, batchnorm_momentum=0.4)


@requires_torch
def test_airbench94_options_match_torch():
    """GELU, airbench's batch-norm eps and momentum: outputs, gradients and running statistics as PyTorch's."""
    from numcnn.interop.pytorch import to_torch

    nn.manual_seed(1)
    net = models.build("airbench", **SMALL["airbench"], **AIRBENCH94).to(np.float64)
    twin = to_torch(net)
    assert isinstance(twin.group1.act1, torch.nn.GELU) and twin.group2.norm2.eps == 1e-12
    assert twin.group2.norm2.momentum == 0.4
    torch.manual_seed(2)
    for p in twin.parameters():
        torch.nn.init.normal_(p, 0.0, 0.5)
    assert_net_matches_torch(net, twin, (4, 3, 32, 32), np.random.default_rng(3))


@requires_torch
def test_dirac_filters_are_torch_dirac_and_start_as_identities():
    weight = np.random.default_rng(0).standard_normal((5, 3, 3, 3))
    expected = torch.tensor(weight)
    torch.nn.init.dirac_(expected[:3])  # airbench's use: the first C_in filters
    np.testing.assert_array_equal(nn.init.dirac(weight), expected.numpy())
    nn.manual_seed(0)
    group = models.airbench(widths=(6, 6, 6), whiten_width=6, dirac=True)["group1"]
    x = np.random.default_rng(1).standard_normal((2, 6, 9, 9)).astype(np.float32)
    second = group["conv2"]  # 6 -> 6: every filter an identity, so the layer passes its input through
    np.testing.assert_array_equal(second(x), x)
    with pytest.raises(ValueError, match="weight must be 4-d"):
        nn.init.dirac(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="activation must be one of relu, gelu, got 'tanh'"):
        models.airbench(activation="tanh")


def test_registry_builds_every_network_and_names_the_choices():
    assert {"resnet20", "resnet32", "resnet56", "resnet18", "airbench"} <= set(models.available())
    assert models.build("resnet20").num_parameters() == 272474  # He et al.: 0.27M
    with pytest.raises(ValueError, match="unknown model 'resnet21'; available: airbench, "):
        models.build("resnet21")
    with pytest.raises(ValueError, match="depth must be 6n \\+ 2"):
        models.resnet_cifar(21)


@requires_torch
@pytest.mark.parametrize("name", SMALL)
def test_weights_move_both_ways_and_outputs_and_gradients_match_torch(name):
    """torch state dict -> numcnn, then compare outputs and every gradient, train and eval mode."""
    from numcnn.interop.pytorch import to_torch

    nn.manual_seed(1)
    net = models.build(name, **SMALL[name]).to(np.float64)
    twin = to_torch(net)
    torch.manual_seed(2)
    for p in twin.parameters():  # fresh torch weights, including random gamma and beta
        torch.nn.init.normal_(p, 0.0, 0.5)
    size = {"airbench": 32}.get(name, 16)
    assert_net_matches_torch(net, twin, (4, 3, size, size), np.random.default_rng(3))
    # and back: numcnn's trained state into a fresh twin
    back = to_torch(net).state_dict()
    assert all(np.array_equal(v, back[k].numpy()) for k, v in net.state_dict().items())


def test_classifier_params_write_through_and_reg_covers_weights_only():
    nn.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 2 * 2, 3))
    model = Classifier(net, reg=0.5)
    assert model.regularized == ["0.weight", "3.weight"]
    model.params["3.bias"] = np.full(3, 7.0, np.float32)
    np.testing.assert_array_equal(net[3].params["bias"], 7.0)
    with pytest.raises(ValueError, match=r"3.bias must keep its shape \(3,\)"):
        model.params["3.bias"] = np.zeros(4)
    x = np.random.default_rng(0).standard_normal((5, 1, 4, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1])
    loss, grads = model.loss(x, y)
    reg_term = 0.25 * sum(float(np.sum(model.params[name] ** 2)) for name in model.regularized)
    plain, _ = Classifier(net).loss(x, y)
    assert loss == pytest.approx(plain + reg_term, rel=1e-5)
    assert set(grads) == set(model.params)
    assert model.loss(x).shape == (5, 3) and not net.training


@pytest.mark.parametrize("name", SMALL)
def test_initial_loss_is_log_c_with_tiny_weights(name):
    nn.manual_seed(0)
    net = models.build(name, **SMALL[name])
    net["fc"].params["weight"] *= 1e-4  # a near-silent last layer: all classes equally likely
    net["fc"].params.pop("bias", None)
    size = 32 if name == "airbench" else 16
    x = np.random.default_rng(0).standard_normal((8, 3, size, size)).astype(np.float32)
    loss, _ = Classifier(net).loss(x, np.arange(8) % 10)
    assert loss == pytest.approx(np.log(10), abs=0.01)


GRADCHECK = {  # tiny float64 versions: every parameter tensor spot-checked at a few coordinates
    "resnet20": (dict(widths=(2, 3, 4)), 6),
    "airbench": (dict(widths=(3, 4, 4), whiten_width=6), 32),
    "airbench94": (dict(widths=(3, 4, 4), whiten_width=6, activation="gelu", dirac=True), 32),
    "vgg": (dict(arch=((1, 3), (2, 4)), image_size=(8, 8), hidden=(5,), dropout=0.0), 8),
    "smallcnn": (dict(width=3, in_channels=3), 8),
    # d2l's ResNet-18 is left to its torch comparison above (every gradient to rtol 1e-6): it ends
    # at 1x1 maps, where batch norm in training mode standardizes 3 numbers and the loss is so
    # curved that centred differences are off by 1e-3 at any usable h; in evaluation mode, eighteen
    # layers of ReLU and max-pool kinks put single coordinates at 1e-4 from run to run.
}


@pytest.mark.parametrize("name", GRADCHECK)
def test_whole_model_gradient_check_in_float64(name):
    """Every parameter of each registry network against centred differences of the loss (with L2)."""
    from numcnn.gradcheck import grad_check_sparse

    kwargs, size = GRADCHECK[name]
    nn.manual_seed(0)
    model = Classifier(models.build(name.replace("94", ""), num_classes=3, **kwargs).to(np.float64), reg=0.1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 3, size, size))
    y = np.array([0, 1, 2])
    _, grads = model.loss(x, y)
    for key, value in model.params.items():
        # batch norm in training mode: the loss is smooth, centred differences exact up to O(h^2)
        errors = grad_check_sparse(
            lambda _: model.loss(x, y)[0], value, grads[key], num_checks=3, h=1e-6, rng=rng, verbose=False
        )
        assert max(errors) < 1e-5, f"{key}: {max(errors):.2e}"


@pytest.mark.parametrize("name", ["resnet20", "airbench", "vgg"])
def test_network_overfits_50_examples(name):
    nn.manual_seed(0)
    size = {"airbench": 32, "vgg": 16}.get(name, 8)
    # Adam's steps are in weight units, so airbench's 1/9 output scale would slow its last layer
    # ninefold here; the capacity to fit is what is tested.
    net = models.build(name, **SMALL[name], **({"output_scale": 1.0} if name == "airbench" else {}))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3, size, size)).astype(np.float32)
    y = rng.integers(0, 10, 50)
    assert overfit(Classifier(net), X, y, steps=150, lr=3e-3, batch_size=25) == 1.0


@pytest.mark.parametrize(
    "name, kwargs, lr", [("resnet32", dict(widths=(4, 8, 8)), 3e-3), ("resnet56", dict(widths=(4, 4, 8)), 5e-3)]
)
def test_deeper_networks_overfit_50_examples(name, kwargs, lr):
    """The depth is what is tested; narrow widths keep it quick."""
    nn.manual_seed(0)
    net = models.build(name, **kwargs)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, 50)
    assert overfit(Classifier(net), X, y, steps=200, lr=lr, batch_size=25) == 1.0


@pytest.mark.slow
def test_resnet18_overfits_50_examples():
    nn.manual_seed(0)
    net = models.build("resnet18")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3, 16, 16)).astype(np.float32)
    y = rng.integers(0, 10, 50)
    assert overfit(Classifier(net), X, y, steps=200, lr=3e-4, batch_size=25) == 1.0


def test_classifier_skips_the_images_gradient_only_inside_its_loss():
    nn.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 2 * 2, 3))
    model = Classifier(net)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    spared = []
    real_backward = net[0].backward
    net[0].backward = lambda dout: spared.append(net[0].input_grad) or real_backward(dout)
    model.loss(x, np.array([0, 1]))
    assert spared == [False]  # the first conv spared its dx during the loss
    out = net(x)
    assert net.backward(np.ones_like(out)).shape == x.shape  # the network itself still returns dx
    keep = Classifier(nn.Sequential(nn.Conv2d(3, 2, 3)), input_grad=True)
    assert keep._spared is None
