import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import F, assert_close, requires_torch, to_torch
from numcnn.gradcheck import check_loss
from numcnn.ops.loss import softmax_loss, softmax_loss_naive, svm_loss, svm_loss_naive


@st.composite
def scores_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    N, C = draw(st.integers(1, 6)), draw(st.integers(2, 7))
    scale = draw(st.sampled_from([1.0, 10.0]))
    return scale * rng.standard_normal((N, C)), rng.integers(0, C, N), draw(st.sampled_from([0.0, 0.1, 0.5]))


@given(scores_case())
def test_fast_matches_naive(case):
    scores, y, smoothing = case
    loss, dscores = softmax_loss(scores, y, label_smoothing=smoothing)
    loss_n, dscores_n = softmax_loss_naive(scores, y, label_smoothing=smoothing)
    assert np.isclose(loss, loss_n, rtol=1e-12)
    assert_close(dscores, dscores_n)
    loss, dscores = svm_loss(scores, y)
    loss_n, dscores_n = svm_loss_naive(scores, y)
    assert np.isclose(loss, loss_n, rtol=1e-12)
    assert_close(dscores, dscores_n)


@requires_torch
@given(scores_case())
def test_softmax_matches_torch_cross_entropy(case):
    scores, y, smoothing = case
    loss, dscores = softmax_loss(scores, y, label_smoothing=smoothing)
    st_ = to_torch(scores, True)
    loss_t = F.cross_entropy(st_, to_torch(y), label_smoothing=smoothing)
    loss_t.backward()
    assert np.isclose(loss, loss_t.item(), rtol=1e-12)
    assert_close(dscores, st_.grad)


@requires_torch
@given(scores_case())
def test_svm_matches_torch_multi_margin(case):
    scores, y, _ = case
    loss, dscores = svm_loss(scores, y)
    st_ = to_torch(scores, True)
    # torch divides by C as well as N; CS231n's svm_loss divides by N only
    loss_t = F.multi_margin_loss(st_, to_torch(y), margin=1.0) * scores.shape[1]
    loss_t.backward()
    assert np.isclose(loss, loss_t.item(), rtol=1e-12)
    assert_close(dscores, st_.grad)


def test_stable_for_huge_scores_and_uniform_scores_give_log_c():
    scores = np.array([[1e4, 0.0, -1e4], [5e3, 5e3, 0.0]])
    loss, dscores = softmax_loss(scores, np.array([0, 1]))
    assert np.isfinite(loss) and np.all(np.isfinite(dscores))
    assert np.isclose(loss, np.log(2) / 2)
    loss, _ = softmax_loss(np.zeros((4, 10)), np.arange(4))
    assert np.isclose(loss, np.log(10))


@pytest.mark.parametrize(
    "loss_fn, kwargs", [(softmax_loss, {}), (softmax_loss, {"label_smoothing": 0.2}), (svm_loss, {})]
)
def test_numerical_gradient(loss_fn, kwargs):
    rng = np.random.default_rng(231)
    scores, y = rng.standard_normal((8, 5)), rng.integers(0, 5, 8)
    assert check_loss(loss_fn, scores, y, **kwargs) < 1e-7


@pytest.mark.parametrize(
    "scores, y, message",
    [
        (np.zeros((3, 4)), np.array([0, 1, 4]), r"y must lie in \[0, 4\)"),
        (np.zeros((3, 4)), np.array([0, 1]), r"y must have shape \(3,\)"),
        (np.zeros((3, 4)), np.array([0.0, 1.0, 2.0]), "integer class labels"),
        (np.zeros(4), np.array([0]), "scores must have 2 dimensions"),
    ],
)
def test_bad_arguments_are_named(scores, y, message):
    with pytest.raises(ValueError, match=message):
        softmax_loss(scores, y)
