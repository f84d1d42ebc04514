"""CS231n data_utils on damaged or inconsistent files: one DataError (or DatasetNotFound) naming the file."""

import numpy as np
import pytest

from numcnn.compat.cs231n.data_utils import load_imagenet_val, load_tiny_imagenet
from numcnn.data import DataError, DatasetNotFound

Image = pytest.importorskip("PIL.Image", reason="TinyImageNet is read with Pillow")


def _tiny_imagenet(root):
    (root / "wnids.txt").write_text("n01\n")
    (root / "words.txt").write_text("n01\tgoldfish\n")
    (root / "train" / "n01" / "images").mkdir(parents=True)
    (root / "train" / "n01" / "n01_boxes.txt").write_text("n01_0.png\t0\t0\t63\t63\n")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(root / "train" / "n01" / "images" / "n01_0.png")
    (root / "val" / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(root / "val" / "images" / "val_0.png")
    (root / "val" / "val_annotations.txt").write_text("val_0.png\tn01\t0\t0\t63\t63\n")
    return root


@pytest.mark.parametrize(
    "damage, error, message",
    [
        (
            lambda r: (r / "val" / "val_annotations.txt").write_text("val_0.png\tn77\t0\t0\t63\t63\n"),
            DataError,
            r"val_annotations.txt: class 'n77' is not in wnids.txt",
        ),
        (lambda r: (r / "train" / "n01" / "n01_boxes.txt").unlink(), DatasetNotFound, r"n01_boxes.txt: missing"),
        (lambda r: (r / "val" / "images" / "val_0.png").unlink(), DatasetNotFound, r"val_0.png: missing"),
        (
            lambda r: (r / "val" / "images" / "val_0.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40)),
            DataError,
            r"val_0.png: not a readable image",
        ),
        (
            lambda r: (
                (r / "test" / "images").mkdir(parents=True)
                or Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(r / "test" / "images" / "t.png")
                or (r / "test" / "test_annotations.txt").write_text("other.png\tn01\n")
            ),
            DataError,
            r"test_annotations.txt: no class for test image t.png",
        ),
    ],
)
def test_damaged_tiny_imagenet_files_are_named(tmp_path, damage, error, message):
    root = _tiny_imagenet(tmp_path)
    assert load_tiny_imagenet(root)["X_train"].shape == (1, 3, 64, 64)
    damage(root)
    with pytest.raises(error, match=message):
        load_tiny_imagenet(root)


def test_a_tiny_imagenet_pixel_bomb_is_one_data_error(tmp_path, monkeypatch):
    root = _tiny_imagenet(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # so that a 64x64 image stands for a huge one
    with pytest.raises(DataError, match="n01_0.png: not a readable image .*DecompressionBombError"):
        load_tiny_imagenet(root)


def _sample(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_bytes(p.read_bytes()[:-200]), "not the assignments' ImageNet sample"),
        (
            lambda p: _sample(p, X=np.zeros((2, 224, 224, 3), np.uint8), y=np.arange(2)),
            "not the assignments' ImageNet sample",
        ),
        (
            lambda p: _sample(
                p, X=np.zeros((2, 4, 4, 3), np.uint8), y=np.arange(2), label_map=np.array([1, 2], dtype=object)
            ),
            "not the assignments' ImageNet sample",
        ),
        (
            lambda p: _sample(p, X=np.zeros((2, 4, 4, 3), np.uint8), y=np.arange(3), label_map=np.array({0: "a"})),
            r"expected X \(N, 224, 224, 3\), y \(N,\)",
        ),
    ],
)
def test_a_damaged_imagenet_sample_is_one_data_error(tmp_path, damage, message):
    path = _sample(
        tmp_path / "imagenet_val_25.npz",
        X=np.zeros((2, 4, 4, 3), np.uint8),
        y=np.arange(2),
        label_map=np.array({0: "tench"}),
    )
    assert load_imagenet_val(path=path)[2] == {0: "tench"}
    damage(path)
    with pytest.raises(DataError, match=f"imagenet_val_25.npz: {message}"):
        load_imagenet_val(path=path)
