import numpy as np
import pytest

from numcnn.data import (
    Compose,
    Cutout,
    DataLoader,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    channel_stats,
    to_float_nchw,
    train_val_split,
)


def _batch(n=6, c=3, h=8, w=8):
    return np.random.default_rng(0).standard_normal((n, c, h, w)).astype(np.float32)


def test_normalize_with_stats_of_the_training_set():
    X = _batch() * 3 + 5
    mean, std = channel_stats(X)
    out = Normalize(mean, std)(X)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-5)
    assert out.dtype == np.float32
    with pytest.raises(ValueError, match="X has 3 channels, Normalize was given 2"):
        Normalize([0, 0], [1, 1])(X)


@pytest.mark.parametrize("mode", ["reflect", "constant"])
def test_random_crop_takes_a_window_of_the_padded_image(mode):
    X = _batch()
    out = RandomCrop(8, padding=2, padding_mode=mode)(X, rng=np.random.default_rng(1))
    padded = np.pad(X, ((0, 0), (0, 0), (2, 2), (2, 2)), mode=mode)
    for n in range(len(X)):
        assert any(
            np.array_equal(out[n], padded[n, :, t : t + 8, left : left + 8]) for t in range(5) for left in range(5)
        )
    np.testing.assert_array_equal(RandomCrop(8)(X), X)  # no padding, full size: the identity


def test_flip_cutout_compose_and_inputs_untouched():
    X = _batch()
    before = X.copy()
    np.testing.assert_array_equal(RandomHorizontalFlip(1.0)(X), X[..., ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(0.0)(X), X)
    cut = Cutout(3)(X + 10, rng=np.random.default_rng(0))
    zeros = (cut == 0).all(axis=1).sum(axis=(1, 2))
    assert np.all(zeros <= 9) and np.all(zeros >= 4)  # a 3x3 square, clipped at the border at worst to 2x2
    same = Compose([RandomCrop(8, padding=1), RandomHorizontalFlip()])
    np.testing.assert_array_equal(same(X, rng=np.random.default_rng(5)), same(X, rng=np.random.default_rng(5)))
    np.testing.assert_array_equal(X, before)


def test_to_float_nchw():
    images = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    X = to_float_nchw(images)
    assert X.shape == (2, 3, 4, 4) and X.dtype == np.float32 and X[0, 1, 0, 0] == pytest.approx(1 / 255)


def test_data_loader_batches_shuffles_and_transforms():
    X, y = np.arange(10, dtype=float)[:, None, None, None] * np.ones((1, 1, 2, 2)), np.arange(10)
    loader = DataLoader(X, y, batch_size=4, shuffle=True, rng=0)
    batches = list(loader)
    assert len(loader) == 3 and [len(b[1]) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate([b[1] for b in batches])) == list(range(10))
    assert len(DataLoader(X, y, batch_size=4, drop_last=True)) == 2
    flipped = list(DataLoader(X, y, batch_size=10, transform=lambda b, rng: -b))[0][0]
    np.testing.assert_array_equal(flipped, -X)


def test_train_val_split_is_stratified_and_fixed_by_the_seed():
    y = np.repeat(np.arange(4), [40, 30, 20, 10])
    X = np.arange(100)
    X_train, y_train, X_val, y_val = train_val_split(X, y, 0.2, seed=3)
    assert list(np.bincount(y_val)) == [8, 6, 4, 2] and len(X_train) == 80
    assert set(X_train).isdisjoint(X_val)
    np.testing.assert_array_equal(train_val_split(X, y, 0.2, seed=3)[2], X_val)
    with pytest.raises(ValueError, match="val_size must leave both splits non-empty"):
        train_val_split(X, y, 100)
