import numpy as np
import pytest

from numcnn.gradcheck import (
    check_loss,
    check_op,
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
)
from numcnn.ops import relu_forward, softmax_loss


def test_rel_error_is_cs231ns_definition():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert np.isclose(rel_error(np.array([1.0]), np.array([3.0])), 0.5)
    assert rel_error(np.zeros(2), np.full(2, 1e-9)) == pytest.approx(0.1)  # floor of 1e-8


def test_numerical_gradient_of_a_known_function_and_x_is_restored():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    original = x.copy()
    grad = eval_numerical_gradient(lambda v: np.sum(v**3), x)
    np.testing.assert_allclose(grad, 3 * original**2, rtol=1e-8)
    np.testing.assert_array_equal(x, original)


def test_numerical_gradient_array_is_a_backward_pass_and_x_is_restored():
    x = np.random.default_rng(0).standard_normal((3, 4))
    original = x.copy()
    df = np.random.default_rng(1).standard_normal((3, 4))
    seen = []
    grad = eval_numerical_gradient_array(lambda v: seen.append(v is x) or np.sin(v), x, df)
    np.testing.assert_allclose(grad, np.cos(original) * df, rtol=1e-7)
    assert all(seen), "x itself is perturbed, as the assignment's version does"
    np.testing.assert_array_equal(x, original)


@pytest.mark.parametrize(
    "check",
    [
        lambda f, x: eval_numerical_gradient(f, x),
        lambda f, x: eval_numerical_gradient_array(f, x, np.ones_like(x)),
        lambda f, x: grad_check_sparse(f, x, np.zeros_like(x), num_checks=3, verbose=False),
    ],
)
def test_x_is_restored_even_when_f_raises(check):
    x = np.arange(6.0).reshape(2, 3)
    calls = []

    def failing(v):
        calls.append(1)
        if len(calls) == 2:  # inside the first coordinate's minus side: x is perturbed right now
            raise RuntimeError("model blew up")
        return np.sum(v)

    with pytest.raises(RuntimeError, match="model blew up"):
        check(failing, x)
    np.testing.assert_array_equal(x, np.arange(6.0).reshape(2, 3))


def test_grad_check_sparse_reports_small_errors_for_a_right_gradient(capsys):
    x = np.random.default_rng(0).standard_normal(20)
    errors = grad_check_sparse(lambda v: np.sum(v**2), x, 2 * x, num_checks=5, rng=np.random.default_rng(1))
    assert len(errors) == 5 and max(errors) < 1e-8
    assert "relative error" in capsys.readouterr().out


def test_check_op_catches_a_wrong_backward():
    x = np.random.default_rng(0).standard_normal((4, 5)) + 0.1

    def wrong_relu_backward(dout, cache):
        return dout * cache.positive * 1.01  # off by 1%

    assert check_op(relu_forward, wrong_relu_backward, x)["x"] > 1e-3


def test_check_loss_catches_a_wrong_gradient():
    scores, y = np.random.default_rng(0).standard_normal((5, 3)), np.arange(5) % 3
    assert check_loss(softmax_loss, scores, y) < 1e-7
    assert check_loss(lambda s, t: (softmax_loss(s, t)[0], 2 * softmax_loss(s, t)[1]), scores, y) > 0.1


def test_gradcheck_imports_ops_nn_checks_and_numpy_only():
    """A side room: numerical gradients need the ops and modules they check, nothing above them."""
    from pathlib import Path

    import numcnn.gradcheck
    from test_checkpoint import numcnn_imports

    imported = numcnn_imports(Path(numcnn.gradcheck.__file__).parent)
    allowed = ("numcnn.gradcheck", "numcnn.ops", "numcnn.nn", "numcnn.checks")
    assert imported and all(name.startswith(allowed) for name in imported), imported


def test_the_suite_runs_from_the_package():
    from numcnn.gradcheck import suite

    results = suite.run(["relu"])
    assert [r.op for r in results] == ["relu"] and all(r.passed for r in results)
