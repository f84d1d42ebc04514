import numpy as np
import pytest

from numcnn import nn


def _net():
    nn.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 3)
    )


def test_dotted_names_and_state_dict_order_follow_pytorch():
    net = _net()
    assert [name for name, _ in net.named_parameters()] == [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "4.weight",
        "4.bias",
    ]
    assert list(net.state_dict()) == [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
        "4.weight",
        "4.bias",
    ]


def test_backward_needs_a_fresh_forward():
    net = _net()
    with pytest.raises(RuntimeError, match="before any forward"):
        net.backward(np.ones((2, 3)))
    out = net(np.zeros((2, 3, 5, 5), np.float32))
    net.backward(np.ones_like(out))
    with pytest.raises(RuntimeError, match="twice for one forward"):
        net.backward(np.ones_like(out))


def test_gradients_are_set_not_accumulated():
    net = _net()
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32)
    net(x)
    net.backward(np.ones((2, 3), np.float32))
    first = {k: v.copy() for k, v in net.named_grads()}
    net(x)
    net.backward(np.ones((2, 3), np.float32))
    for name, grad in net.named_grads():
        np.testing.assert_allclose(grad, first[name], rtol=1e-5, atol=1e-6)


def test_state_dict_round_trip_and_errors():
    a, b = _net(), _net()
    nn.manual_seed(1)
    b = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 3)
    )
    b.load_state_dict(a.state_dict())
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(x, y, err_msg=name)
    state = a.state_dict()
    state["4.weight"] = np.zeros((3, 7))
    with pytest.raises(ValueError, match=r"4.weight: the state dict holds shape \(3, 7\), the module needs \(3, 100\)"):
        b.load_state_dict(state)
    del state["4.weight"]
    state["extra.weight"] = np.zeros(1)
    with pytest.raises(KeyError, match=r"missing \['4.weight'\], unexpected \['extra.weight'\]"):
        b.load_state_dict(state)
    missing, unexpected = b.load_state_dict(state, strict=False)
    assert missing == ["4.weight"] and unexpected == ["extra.weight"]


def test_load_state_dict_copies_and_keeps_dtype():
    net = _net()
    state = {k: np.asarray(v, dtype=np.float64) if v.dtype.kind == "f" else v for k, v in net.state_dict().items()}
    net.load_state_dict(state)
    state["0.weight"][...] = 7.0
    assert net[0].params["weight"].dtype == np.float32
    assert not np.any(net[0].params["weight"] == 7.0)


def test_train_eval_zero_grad_to_and_repr():
    net = _net()
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.zero_grad()
    assert all(not g.any() for _, g in net.named_grads())
    net.to(np.float64)
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net[1].buffers["num_batches_tracked"].dtype == np.int64
    text = repr(net)
    assert "(0): Conv2d(3, 4, kernel_size=(3, 3)" in text and "weight (4, 3, 3, 3)" in text
    assert f"parameters: {net.num_parameters():,}" in text and net.num_parameters() == 4 * 27 + 4 + 8 + 303


def test_residual_checks_shapes_and_routes_gradients_through_both_branches():
    nn.manual_seed(0)
    with pytest.raises(ValueError, match="pass a shortcut"):
        nn.Residual(nn.Conv2d(3, 4, 3, padding=1))(np.zeros((1, 3, 4, 4), np.float32))
    identity = nn.Residual(nn.Identity(), activation=False)
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 3))
    np.testing.assert_allclose(identity(x), 2 * x)
    np.testing.assert_allclose(identity.backward(np.ones_like(x)), 2 * np.ones_like(x))


def test_manual_seed_makes_initialisation_reproducible():
    a, b = _net(), _net()
    np.testing.assert_array_equal(a[0].params["weight"], b[0].params["weight"])
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    np.testing.assert_array_equal(
        nn.Linear(3, 2, rng=rng_a).params["weight"], nn.Linear(3, 2, rng=rng_b).params["weight"]
    )


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: nn.Conv2d(3, 4, 3, groups=2), "in_channels=3 must be divisible by groups=2"),
        (lambda: nn.Conv2d(3, 4, 0), "kernel_size must be at least 1"),
        (lambda: nn.Conv2d(3, 4, 3, padding_mode="reflect"), "padding_mode must be 'zeros'"),
        (lambda: nn.GroupNorm(4, 6), "num_channels=6 must be divisible by num_groups=4"),
        (lambda: nn.MaxPool2d(2, ceil_mode=True), "ceil_mode=True is not supported"),
        (lambda: nn.Linear(0, 3), "in_features must be a positive int"),
        (lambda: nn.BatchNorm2d(3, momentum=2.0), r"momentum must be in \[0, 1\] or None"),
    ],
)
def test_bad_constructor_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_layers_check_their_input():
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 4\)"):
        nn.Linear(4, 2)(np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="x must have 3 channels"):
        nn.BatchNorm2d(3)(np.zeros((2, 4, 2, 2), np.float32))
