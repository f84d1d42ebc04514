"""Networks a user builds from numcnn's modules: saved as module trees, rebuilt by load_model, within bounds."""

import json
from collections import OrderedDict

import numpy as np
import pytest

from numcnn import models, nn
from numcnn.io import CheckpointError, load_checkpoint, restore_model, save_checkpoint
from numcnn.models import Classifier, build_spec_of, load_model
from numcnn.models.from_spec import MAX_DEPTH, MAX_MODULES
from numcnn.models.serialization import MODULES, module_tree


def _every_module_net():
    """A small network using every class in the registry at least once, with non-default arguments."""
    nn.manual_seed(3)
    return nn.Sequential(
        OrderedDict(
            [
                (
                    "stem",
                    nn.Sequential(
                        nn.Conv2d(3, 4, 3, padding=1, bias=False),
                        nn.BatchNorm2d(4, momentum=None),
                        nn.ReLU(),
                        nn.LocalResponseNorm(3, alpha=2e-4, beta=0.7, k=1.5),
                    ),
                ),
                ("down", nn.Residual.block(4, 8, stride=2)),
                (
                    "same",
                    nn.Residual(
                        nn.Sequential(nn.Conv2d(8, 8, 3, padding="same", groups=2), nn.GroupNorm(2, 8)),
                        activation=False,
                    ),
                ),
                ("inorm", nn.InstanceNorm2d(8, affine=True, track_running_stats=True)),
                ("up", nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1, dilation=1)),
                ("act", nn.LeakyReLU(0.2)),
                ("maxpool", nn.MaxPool2d((2, 2), stride=2, padding=0)),
                ("avgpool", nn.AvgPool2d(2, count_include_pad=False)),
                ("adaptive", nn.AdaptiveAvgPool2d((2, 2))),
                ("flatten", nn.Flatten()),
                ("drop", nn.Dropout(0.25)),
                ("hidden", nn.Linear(16, 12)),
                ("gelu", nn.GELU()),
                ("bn1d", nn.BatchNorm1d(12, affine=False)),
                ("ln", nn.LayerNorm(12, bias=False)),
                ("keep", nn.Identity()),
                ("scale", nn.Scale(0.5)),
                ("unflatten", nn.Sequential()),
                ("fc", nn.Linear(12, 5, bias=False)),
            ]
        )
    )


def _trained_a_little(net):
    """Running statistics away from their initial values, so that buffers matter too."""
    x = np.random.default_rng(1).standard_normal((6, 3, 8, 8)).astype(np.float32)
    net.train()
    net(x)
    net.backward(np.ones((6, 5), np.float32))
    return net


def _x():
    return np.random.default_rng(2).standard_normal((4, 3, 8, 8)).astype(np.float32)


def test_the_test_network_uses_every_registered_module():
    used = {type(m).__name__ for m in _every_module_net().modules()} | {"GlobalAvgPool2d"}  # tested alone
    assert used == set(MODULES)


def test_a_custom_network_in_a_classifier_round_trips_to_identical_outputs(tmp_path):
    model = Classifier(_trained_a_little(_every_module_net()), reg=1e-3, loss="svm")
    save_checkpoint(tmp_path / "c.npz", model)
    rebuilt = load_model(tmp_path / "c.npz")
    assert isinstance(rebuilt, Classifier) and rebuilt.reg == 1e-3 and rebuilt.loss_name == "svm"
    np.testing.assert_array_equal(rebuilt.scores(_x()), model.scores(_x()))
    assert repr(rebuilt.net) == repr(model.net)
    assert module_tree(rebuilt.net) == module_tree(model.net)


def test_a_bare_network_round_trips_to_identical_outputs(tmp_path):
    net = _trained_a_little(nn.Sequential(_every_module_net(), nn.ReLU()))
    save_checkpoint(tmp_path / "n.npz", net)
    rebuilt = load_model(tmp_path / "n.npz")
    assert isinstance(rebuilt, nn.Sequential)
    np.testing.assert_array_equal(rebuilt.eval()(_x()), net.eval()(_x()))
    for (name, a), (_, b) in zip(net.state_dict().items(), rebuilt.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_float64_networks_and_built_in_models_inside_custom_ones_round_trip(tmp_path):
    nn.manual_seed(0)
    net = nn.Sequential(
        OrderedDict(
            [
                ("features", models.build("smallcnn", num_classes=6, in_channels=3, width=4)),
                ("head", nn.Sequential(nn.ReLU(), nn.Linear(6, 3))),
            ]
        )
    ).to(np.float64)
    save_checkpoint(tmp_path / "c.npz", Classifier(net))
    rebuilt = load_model(tmp_path / "c.npz")
    x = _x().astype(np.float64)
    assert rebuilt.params["head.1.weight"].dtype == np.float64
    np.testing.assert_array_equal(rebuilt.scores(x), Classifier(net).scores(x))


def test_global_average_pooling_round_trips(tmp_path):
    gap = nn.Sequential(nn.GlobalAvgPool2d(), nn.Flatten())
    save_checkpoint(tmp_path / "g.npz", gap)
    np.testing.assert_array_equal(load_model(tmp_path / "g.npz")(_x()), gap(_x()))


def test_rebuilding_leaves_the_global_generators_alone(tmp_path):
    save_checkpoint(tmp_path / "c.npz", Classifier(_every_module_net()))
    nn.manual_seed(5)
    expected = nn.init.generator().random()
    nn.manual_seed(5)
    state = np.random.get_state()
    load_model(tmp_path / "c.npz")
    assert nn.init.generator().random() == expected
    assert np.array_equal(np.random.get_state()[1], state[1])


class _Doubler(nn.Module):
    def forward(self, x):
        return 2 * x

    def backward(self, dout):
        return 2 * dout


def test_a_network_with_a_users_own_module_says_how_to_restore_it(tmp_path):
    nn.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), _Doubler())
    save_checkpoint(tmp_path / "c.npz", Classifier(net))
    with pytest.raises(CheckpointError) as caught:
        load_model(tmp_path / "c.npz")
    message = str(caught.value)
    assert "c.npz" in message and "numcnn.io.restore_model" in message and "load_checkpoint" in message
    nn.manual_seed(1)
    model = Classifier(nn.Sequential(nn.Linear(4, 3), _Doubler()))  # what the message says to do
    restore_model(load_checkpoint(tmp_path / "c.npz"), model)
    np.testing.assert_array_equal(model.params["0.weight"], net[0].params["weight"])


def test_checkpoints_written_before_module_trees_still_rebuild_by_name(tmp_path):
    model = Classifier(models.build("smallcnn", num_classes=3, width=4))
    path = _edit_header(save_checkpoint(tmp_path / "c.npz", model), lambda h: h["model"].pop("modules"))
    rebuilt = load_model(path)
    assert build_spec_of(rebuilt.net) == build_spec_of(model.net) is not None
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(rebuilt.scores(x), model.scores(x))


def _edit_header(path, edit):
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    header = json.loads(arrays["__header__"].tobytes())
    edit(header)
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(path, **arrays)
    return path


def _small_classifier_file(tmp_path):
    nn.manual_seed(0)
    return save_checkpoint(tmp_path / "c.npz", Classifier(models.build("smallcnn", num_classes=3, width=4)))


def _set_tree(tree):
    def edit(header):
        header["model"]["modules"] = tree

    return edit


def _set_net(build_spec):
    def edit(header):
        header["model"].pop("modules")
        header["model"]["config"]["net"] = build_spec

    return edit


def _deep(levels):
    node = {"class": "ReLU", "args": {}}
    for _ in range(levels - 1):
        node = {"class": "Sequential", "args": {}, "children": {"0": node}}
    return node


@pytest.mark.parametrize(
    "edit, reason",
    [
        (_set_tree({"class": "Linear", "args": {"in_features": 10**6, "out_features": 10**6}}), "exceeds"),
        (_set_tree({"class": "Linear", "args": {"in_features": 60000, "out_features": 60000}}), "weights than"),
        (
            _set_tree({"class": "Conv2d", "args": {"in_channels": 1, "out_channels": 1, "kernel_size": 60000}}),
            "weights than",
        ),
        (_set_tree({"class": "BatchNorm2d", "args": {"num_features": 10**6}}), "exceeds"),
        (
            _set_tree(
                {
                    "class": "Sequential",
                    "args": {},
                    "children": {str(i): {"class": "BatchNorm2d", "args": {"num_features": 60000}} for i in range(50)},
                }
            ),
            "more numbers",
        ),
        (_set_tree(_deep(MAX_DEPTH + 1)), "deeper than"),
        (
            _set_tree(
                {
                    "class": "Sequential",
                    "args": {},
                    "children": {str(i): {"class": "ReLU"} for i in range(MAX_MODULES + 1)},
                }
            ),
            "more than 10000 modules",
        ),
        (_set_tree({"class": "os.system", "args": {}}), "unknown module class"),
        (_set_tree({"class": "ReLU", "args": {"inplace": [[1]] * 100}}), "a list of 100"),
        (_set_tree({"class": "Linear", "args": {"in_features": 2, "out_features": 2, "dtype": "object"}}), "dtype"),
        (_set_tree({"class": "Linear", "args": {"in_features": 2, "out_features": 2, "evil": 1}}), "evil"),
        (_set_tree({"class": "Sequential", "args": {}, "children": {"params": {"class": "ReLU"}}}), "cannot name"),
        (_set_tree({"class": "Residual", "args": {}, "children": {"other": {"class": "ReLU"}}}), "Residual"),
        (_set_tree({"class": "ReLU", "args": {}, "children": {"0": {"class": "ReLU"}}}), "no children"),
        (_set_tree({"class": "ReLU", "args": [1]}), "must be objects"),
        (_set_tree([1, 2]), "must be an object or null"),
        (_set_net({"name": "smallcnn", "num_classes": 3, "width": 10**6}), "exceeds"),
        (_set_net({"name": "smallcnn", "num_classes": 3, "width": 60000}), "weights than"),
        (_set_net({"name": "no-such-model", "num_classes": 3}), "unknown model"),
        (_set_net({"name": "vgg", "num_classes": 3, "hidden": [60000, 60000]}), "weights than"),
        (_set_net({"name": "smallcnn", "num_classes": 3, "rng": 1}), "rng"),
    ],
    ids=[
        "linear-1e6",
        "linear-60000",
        "kernel-60000",
        "batchnorm-1e6",
        "50-batchnorms",
        "too-deep",
        "too-many",
        "unknown-class",
        "long-list",
        "dtype-object",
        "unknown-argument",
        "child-params",
        "residual-children",
        "leaf-children",
        "args-list",
        "tree-list",
        "smallcnn-1e6",
        "smallcnn-60000",
        "unknown-name",
        "vgg-hidden",
        "duplicate-rng",
    ],
)
def test_a_hostile_spec_is_refused_before_it_allocates(tmp_path, edit, reason):
    path = _edit_header(_small_classifier_file(tmp_path), edit)
    with pytest.raises(CheckpointError, match="c.npz: ") as caught:
        load_model(path)
    assert reason in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "config",
    [
        {"input_dim": 10**6, "hidden_dim": 10**6, "num_classes": 10},
        {"input_dim": 4, "hidden_dim": "wide", "num_classes": 10},
        {"input_dim": 4, "hidden_dim": 3, "num_classes": 10, "evil": 1},
    ],
)
def test_an_assignment_model_asking_for_more_than_the_file_holds_is_refused(tmp_path, config):
    path = save_checkpoint(tmp_path / "c.npz", models.TwoLayerNet(input_dim=4, hidden_dim=3))
    _edit_header(path, lambda header: header["model"].update(config=config))
    with pytest.raises(CheckpointError, match="c.npz: the checkpoint's model cannot be rebuilt from its spec"):
        load_model(path)


class _Affine:
    """A model of the user's own: y = x @ W, with a constructor argument."""

    def __init__(self, dim=3, scale=1.0):
        self.config = {"dim": dim, "scale": scale}
        self.params = {"W": np.full((dim, dim), scale)}


class _RegisteredAffine(_Affine):
    """Registered below, under a type name of its own, so other tests' _Affine stays unregistered."""


def test_a_registered_model_class_is_saved_and_rebuilt_by_its_own_functions(tmp_path):
    models.register_serializer(
        _RegisteredAffine,
        spec=lambda m: {"type": "RegisteredAffine", "config": m.config, "modules": None},
        arrays=lambda m: {"weight": m.params["W"]},
        load_arrays=lambda m, arrays: m.params.update(W=arrays["weight"].copy()),
    )
    models.register_rebuilder("RegisteredAffine", lambda spec, path, budget: _RegisteredAffine(**spec["config"]))
    model = _RegisteredAffine(dim=2, scale=0.5)
    model.params["W"] = np.array([[1.0, 2.0], [3.0, 4.0]])
    save_checkpoint(tmp_path / "a.npz", model)
    assert sorted(load_checkpoint(tmp_path / "a.npz").model_arrays) == ["weight"]
    rebuilt = load_model(tmp_path / "a.npz")
    assert isinstance(rebuilt, _RegisteredAffine) and rebuilt.config == {"dim": 2, "scale": 0.5}
    np.testing.assert_array_equal(rebuilt.params["W"], [[1.0, 2.0], [3.0, 4.0]])


def test_an_unregistered_object_is_saved_by_its_params_and_restored_into_one_you_build(tmp_path):
    model = _Affine(dim=2)
    model.params["W"] = np.eye(2) * 7
    save_checkpoint(tmp_path / "a.npz", model)
    checkpoint = load_checkpoint(tmp_path / "a.npz")
    assert checkpoint.model_spec == {"type": "_Affine", "config": {"dim": 2, "scale": 1.0}}
    with pytest.raises(CheckpointError, match="cannot rebuild a '_Affine'"):
        load_model(checkpoint)
    fresh = _Affine(dim=2)
    restore_model(checkpoint, fresh)
    np.testing.assert_array_equal(fresh.params["W"], np.eye(2) * 7)


def test_build_records_its_arguments_without_patching_the_network():
    net = models.build("smallcnn", num_classes=3, width=4, dtype=np.float64)
    assert not hasattr(net, "build_spec")
    assert build_spec_of(net) == {"name": "smallcnn", "num_classes": 3, "width": 4, "dtype": "float64"}
    assert build_spec_of(nn.ReLU()) is None
