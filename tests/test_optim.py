import numpy as np
import pytest

from helpers import requires_torch, torch
from numcnn.gradcheck import rel_error
from numcnn.train import optim, schedules

N, D = 4, 5
W = np.linspace(-0.4, 0.6, num=N * D).reshape(N, D)
DW = np.linspace(-0.6, 0.4, num=N * D).reshape(N, D)


def test_sgd_momentum_reproduces_the_assignment():
    """The assignment's form lives in numcnn.compat.cs231n; numcnn.optim's is PyTorch's."""
    from numcnn.compat.cs231n.optim import sgd_momentum

    v = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    next_w, config = sgd_momentum(W, DW, {"learning_rate": 1e-3, "velocity": v})
    expected_next_w = np.asarray(
        [
            [0.1406, 0.20738947, 0.27417895, 0.34096842, 0.40775789],
            [0.47454737, 0.54133684, 0.60812632, 0.67491579, 0.74170526],
            [0.80849474, 0.87528421, 0.94207368, 1.00886316, 1.07565263],
            [1.14244211, 1.20923158, 1.27602105, 1.34281053, 1.4096],
        ]
    )
    expected_velocity = np.asarray(
        [
            [0.5406, 0.55475789, 0.56891579, 0.58307368, 0.59723158],
            [0.61138947, 0.62554737, 0.63970526, 0.65386316, 0.66802105],
            [0.68217895, 0.69633684, 0.71049474, 0.72465263, 0.73881053],
            [0.75296842, 0.76712632, 0.78128421, 0.79544211, 0.8096],
        ]
    )
    assert rel_error(next_w, expected_next_w) == pytest.approx(8.882347033505819e-09, rel=1e-6)
    assert rel_error(config["velocity"], expected_velocity) == pytest.approx(4.269287743278663e-09, rel=1e-6)


def test_rmsprop_reproduces_the_assignment():
    cache = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    next_w, config = optim.rmsprop(W, DW, {"learning_rate": 1e-2, "cache": cache})
    expected_next_w = np.asarray(
        [
            [-0.39223849, -0.34037513, -0.28849239, -0.23659121, -0.18467247],
            [-0.132737, -0.08078555, -0.02881884, 0.02316247, 0.07515774],
            [0.12716641, 0.17918792, 0.23122175, 0.28326742, 0.33532447],
            [0.38739248, 0.43947102, 0.49155973, 0.54365823, 0.59576619],
        ]
    )
    expected_cache = np.asarray(
        [
            [0.5976, 0.6126277, 0.6277108, 0.64284931, 0.65804321],
            [0.67329252, 0.68859723, 0.70395734, 0.71937285, 0.73484377],
            [0.75037008, 0.7659518, 0.78158892, 0.79728144, 0.81302936],
            [0.82883269, 0.84469141, 0.86060554, 0.87657507, 0.8926],
        ]
    )
    assert rel_error(next_w, expected_next_w) == pytest.approx(9.524687511038133e-08, rel=1e-6)
    assert rel_error(config["cache"], expected_cache) == pytest.approx(2.6477955807156126e-09, rel=1e-6)


def test_adam_reproduces_the_assignment():
    m = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    v = np.linspace(0.7, 0.5, num=N * D).reshape(N, D)
    next_w, config = optim.adam(W, DW, {"learning_rate": 1e-2, "m": m, "v": v, "t": 5})
    expected_next_w = np.asarray(
        [
            [-0.40094747, -0.34836187, -0.29577703, -0.24319299, -0.19060977],
            [-0.1380274, -0.08544591, -0.03286534, 0.01971428, 0.0722929],
            [0.1248705, 0.17744702, 0.23002243, 0.28259667, 0.33516969],
            [0.38774145, 0.44031188, 0.49288093, 0.54544852, 0.59801459],
        ]
    )
    expected_v = np.asarray(
        [
            [0.69966, 0.68908382, 0.67851319, 0.66794809, 0.65738853],
            [0.64683452, 0.63628604, 0.6257431, 0.61520571, 0.60467385],
            [0.59414753, 0.58362676, 0.57311152, 0.56260183, 0.55209767],
            [0.54159906, 0.53110598, 0.52061845, 0.51013645, 0.49966],
        ]
    )
    expected_m = np.asarray(
        [
            [0.48, 0.49947368, 0.51894737, 0.53842105, 0.55789474],
            [0.57736842, 0.59684211, 0.61631579, 0.63578947, 0.65526316],
            [0.67473684, 0.69421053, 0.71368421, 0.73315789, 0.75263158],
            [0.77210526, 0.79157895, 0.81105263, 0.83052632, 0.85],
        ]
    )
    assert rel_error(next_w, expected_next_w) == pytest.approx(1.1395691798535431e-07, rel=1e-6)
    assert rel_error(config["v"], expected_v) == pytest.approx(4.208314038113071e-09, rel=1e-6)
    assert rel_error(config["m"], expected_m) == pytest.approx(4.214963193114416e-09, rel=1e-6)
    assert config["t"] == 6


TORCH_TWINS = {  # rule, its config, the torch.optim class and arguments with the same definition
    "sgd": ({"learning_rate": 0.1}, "SGD", dict(lr=0.1)),
    "sgd_wd": ({"learning_rate": 0.1, "weight_decay": 0.01}, "SGD", dict(lr=0.1, weight_decay=0.01)),
    "sgd_momentum": ({"learning_rate": 0.05, "momentum": 0.9}, "SGD", dict(lr=0.05, momentum=0.9)),
    "nesterov": (
        {"learning_rate": 0.05, "momentum": 0.8, "weight_decay": 5e-4},
        "SGD",
        dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=5e-4),
    ),
    "rmsprop": ({"learning_rate": 0.01, "decay_rate": 0.9}, "RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-8)),
    "adagrad": ({"learning_rate": 0.1}, "Adagrad", dict(lr=0.1)),
    "adam": ({"learning_rate": 0.01, "beta1": 0.8}, "Adam", dict(lr=0.01, betas=(0.8, 0.999))),
    "adamw": ({"learning_rate": 0.01, "weight_decay": 0.1}, "AdamW", dict(lr=0.01, weight_decay=0.1)),
}


@requires_torch
@pytest.mark.parametrize("case", TORCH_TWINS)
def test_twenty_steps_match_torch_optim(case):
    config, torch_name, torch_args = TORCH_TWINS[case]
    rule = optim.UPDATE_RULES[case.split("_wd")[0]]
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 4))
    tensor = torch.tensor(w.copy(), requires_grad=True)
    optimizer = getattr(torch.optim, torch_name)([tensor], **torch_args)
    config = dict(config)
    for _ in range(20):
        dw = rng.standard_normal(w.shape)
        w, config = rule(w, dw, config)
        tensor.grad = torch.tensor(dw)
        optimizer.step()
    np.testing.assert_allclose(w, tensor.detach().numpy(), rtol=1e-10, atol=1e-13)


@requires_torch
@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_rules_match_torch_sgd_while_the_learning_rate_changes(nesterov):
    """A warm-up then decay, set on both every step: numcnn's rule must follow torch.optim.SGD."""
    rule = optim.nesterov if nesterov else optim.sgd_momentum
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 4))
    tensor = torch.tensor(w.copy(), requires_grad=True)
    optimizer = torch.optim.SGD([tensor], lr=0.0, momentum=0.9, nesterov=nesterov, weight_decay=1e-3)
    config = {"momentum": 0.9, "weight_decay": 1e-3}
    schedule = schedules.warmup(10, 30, "cosine")
    for step in range(30):
        lr = 0.2 * schedule(step)
        config["learning_rate"] = lr
        for group in optimizer.param_groups:
            group["lr"] = lr
        dw = rng.standard_normal(w.shape)
        w, config = rule(w, dw, config)
        tensor.grad = torch.tensor(dw)
        optimizer.step()
    np.testing.assert_allclose(w, tensor.detach().numpy(), rtol=1e-10, atol=1e-13)


def test_the_assignments_momentum_differs_once_the_learning_rate_changes():
    """Equal at a constant rate; the assignment's velocity keeps old learning rates, PyTorch's buffer does not."""
    from numcnn.compat.cs231n.optim import sgd_momentum as assignment_momentum

    rng = np.random.default_rng(2)
    gradients = [rng.standard_normal(4) for _ in range(4)]
    ours, theirs = np.ones(4), np.ones(4)
    ours_config, theirs_config = {"learning_rate": 0.1}, {"learning_rate": 0.1}
    for step, dw in enumerate(gradients):
        if step == 2:
            ours_config["learning_rate"] = theirs_config["learning_rate"] = 0.01
        ours, ours_config = optim.sgd_momentum(ours, dw, ours_config)
        theirs, theirs_config = assignment_momentum(theirs, dw, theirs_config)
        if step < 2:
            np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert np.abs(ours - theirs).max() > 1e-2


def test_decoupled_weight_decay_shrinks_before_the_step_and_inputs_stay():
    w, dw = np.ones(3), np.zeros(3)
    before = w.copy()
    next_w, _ = optim.nesterov(w, dw, {"learning_rate": 0.1, "decoupled_weight_decay": 0.5})
    np.testing.assert_allclose(next_w, 0.95 * np.ones(3))
    np.testing.assert_array_equal(w, before)
    assert optim.adam(w.astype(np.float32), dw.astype(np.float32))[0].dtype == np.float32


@requires_torch
def test_clip_grad_norm_matches_torch():
    rng = np.random.default_rng(0)
    grads = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    clipped, norm = optim.clip_grad_norm(grads, 1.5)
    tensors = [torch.zeros(3, 4, requires_grad=True), torch.zeros(5, requires_grad=True)]
    for t, g in zip(tensors, grads.values()):
        t.grad = torch.tensor(g)
    torch_norm = torch.nn.utils.clip_grad_norm_(tensors, 1.5)
    assert norm == pytest.approx(float(torch_norm))
    for t, g in zip(tensors, clipped.values()):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)
    same, _ = optim.clip_grad_norm(grads, 100.0)
    assert same is grads


def test_schedules():
    assert schedules.step_decay(0.5)(2.9) == 0.25
    cos = schedules.cosine(10, final=0.1)
    assert cos(0) == 1.0 and cos(10) == pytest.approx(0.1) and cos(5) == pytest.approx(0.55)
    warm = schedules.warmup(2, 10)
    assert warm(1) == 0.5 and warm(2) == 1.0 and warm(6) == pytest.approx(0.5) and warm(10) == 0.0
    assert schedules.warmup(2, 10, "cosine")(6) == pytest.approx(0.5)
    cycle = schedules.one_cycle(8, peak=0.25, start=0.2, final=0.0)
    assert cycle(0) == 0.2 and cycle(2) == 1.0 and cycle(5) == pytest.approx(0.5) and cycle(8) == 0.0
    with pytest.raises(ValueError, match="decay must be 'linear' or 'cosine'"):
        schedules.warmup(1, 2, "step")


def test_the_assignments_solver_uses_the_assignments_momentum():
    """numcnn.compat.cs231n.solver.Solver(update_rule="sgd_momentum") keeps v = mu*v - lr*dw."""
    from numcnn.compat.cs231n import optim as assignment_optim
    from numcnn.compat.cs231n.solver import Solver as AssignmentSolver
    from numcnn.train.solver import Solver

    class Quadratic:
        def __init__(self):
            self.params = {"w": np.ones(3)}

        def loss(self, X, y=None):
            return (
                np.zeros((len(X), 2))
                if y is None
                else (float(self.params["w"] @ self.params["w"]), {"w": 2 * self.params["w"]})
            )

    data = {
        "X_train": np.zeros((8, 1)),
        "y_train": np.zeros(8, int),
        "X_val": np.zeros((2, 1)),
        "y_val": np.zeros(2, int),
    }
    options = dict(
        update_rule="sgd_momentum",
        optim_config={"learning_rate": 0.1},
        lr_decay=0.5,
        batch_size=4,
        num_epochs=3,
        verbose=False,
        seed=0,
        restore_best=False,
    )
    theirs, ours = AssignmentSolver(Quadratic(), data, **options), Solver(Quadratic(), data, **options)
    assert theirs.update_rule is assignment_optim.sgd_momentum and ours.update_rule is optim.sgd_momentum
    theirs.train()
    ours.train()
    assert "velocity" in theirs.optim_configs["w"] and "momentum_buffer" in ours.optim_configs["w"]
    assert not np.allclose(theirs.model.params["w"], ours.model.params["w"])  # lr_decay changed the rate
