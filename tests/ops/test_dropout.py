import numpy as np
import pytest

from numcnn.gradcheck import check_op
from numcnn.ops.dropout import dropout_backward, dropout_backward_naive, dropout_forward, dropout_forward_naive


@pytest.mark.parametrize("p", [0.0, 0.25, 0.5, 0.9, 1.0])
def test_fast_matches_naive_with_the_same_generator(p):
    x = np.random.default_rng(0).standard_normal((3, 4, 5))
    out, cache = dropout_forward(x, p, True, np.random.default_rng(7))
    out_n, cache_n = dropout_forward_naive(x, p, True, np.random.default_rng(7))
    np.testing.assert_array_equal(out, out_n)
    dout = np.random.default_rng(1).standard_normal(x.shape)
    np.testing.assert_array_equal(dropout_backward(dout, cache), dropout_backward_naive(dout, cache_n))


def test_p_is_the_drop_probability_and_scaling_keeps_the_mean():
    x = np.ones((1000, 1000))
    out, _ = dropout_forward(x, 0.3, True, np.random.default_rng(0))
    dropped = np.mean(out == 0)
    assert abs(dropped - 0.3) < 0.005
    assert abs(out.mean() - 1.0) < 0.01
    np.testing.assert_allclose(out[out != 0], 1 / 0.7)


def test_evaluation_is_identity_and_p_one_drops_everything():
    x = np.random.default_rng(0).standard_normal((4, 5))
    out, cache = dropout_forward(x, 0.5, False)
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(dropout_backward(x, cache), x)
    out, _ = dropout_forward(x, 1.0, True, np.random.default_rng(0))
    np.testing.assert_array_equal(out, np.zeros_like(x))


def test_seeded_generator_makes_masks_reproducible_and_float32_stays():
    x = np.ones((50, 50), np.float32)
    a, _ = dropout_forward(x, 0.5, True, np.random.default_rng(3))
    b, _ = dropout_forward(x, 0.5, True, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32


def test_numerical_gradient_with_a_frozen_mask():
    x = np.random.default_rng(0).standard_normal((4, 6))
    errors = check_op(dropout_forward, dropout_backward, x, 0.4, True, np.random.default_rng(5))
    assert errors["x"] < 1e-9, errors


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(p=1.5), "p must be a probability"),
        (dict(p=0.5, rng=42), "rng must be a numpy.random.Generator"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        dropout_forward(np.zeros(3), **kwargs)


@pytest.mark.parametrize("p", [0.0, 0.3, 0.8, 1.0])
def test_same_semantics_as_torch(p):
    """Masks come from different generators, so compare what defines dropout: in training a unit is
    zero or x / (1 - p), with p the fraction zeroed, and the gradient follows the same mask; in
    evaluation, identity; p = 1 drops everything."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    x = np.random.default_rng(0).uniform(0.5, 1.5, (400, 500))  # never 0: a zero output means dropped
    dout = np.random.default_rng(1).standard_normal(x.shape)
    xt = torch.tensor(x, requires_grad=True)
    out_t = torch.nn.functional.dropout(xt, p, training=True)
    out_t.backward(torch.tensor(dout))
    out, cache = dropout_forward(x, p, True, np.random.default_rng(2))
    dx = dropout_backward(dout, cache)
    for result, grad in ((out, dx), (out_t.detach().numpy(), xt.grad.numpy())):
        kept = result != 0
        if p < 1:
            np.testing.assert_allclose(result[kept], x[kept] / (1 - p), rtol=1e-12)
            np.testing.assert_allclose(grad[kept], dout[kept] / (1 - p), rtol=1e-12)
        assert np.all(grad[~kept] == 0)
        assert abs(np.mean(~kept) - p) < 0.005
    out_eval, cache_eval = dropout_forward(x, p, False)
    np.testing.assert_array_equal(out_eval, torch.nn.functional.dropout(torch.tensor(x), p, training=False))
    np.testing.assert_array_equal(dropout_backward(dout, cache_eval), dout)
