"""Image folders: the cache's key, damaged caches, colour modes, archive members, bombs, resizing."""

import io
import os
import tarfile
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
from fake_data import write_image_folder

from numcnn.data import DataError, load_image_folder
from numcnn.data import folder as folder_module

PIL = pytest.importorskip("PIL", reason="image folders are read with Pillow")
from PIL import Image  # noqa: E402


def _bmp(pixels) -> bytes:
    """BMP is uncompressed: two images of one size have files of one size."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "BMP")
    return buffer.getvalue()


def test_an_image_edited_in_place_at_the_same_size_is_decoded_again(tmp_path):
    write_image_folder(tmp_path / "f", classes=("a", "b"), per_class=2, suffix=".bmp")
    X, _, _ = load_image_folder(tmp_path / "f")
    image = tmp_path / "f" / "b" / "001.bmp"
    before = image.stat()
    new_pixels = np.full((6, 5, 3), 7, np.uint8)
    image.write_bytes(_bmp(new_pixels))
    os.utime(image, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))  # saved a second later
    assert image.stat().st_size == before.st_size
    X_after, _, _ = load_image_folder(tmp_path / "f")
    np.testing.assert_array_equal(X_after[3], new_pixels)
    np.testing.assert_array_equal(X_after[:3], X[:3])


def test_same_named_files_swapped_between_classes_get_their_new_labels(tmp_path):
    images = write_image_folder(tmp_path / "f", classes=("a", "b"), per_class=1, suffix=".bmp")
    load_image_folder(tmp_path / "f")
    a, b = tmp_path / "f" / "a" / "000.bmp", tmp_path / "f" / "b" / "000.bmp"
    os.rename(a, tmp_path / "swap")
    os.rename(b, a)
    os.rename(tmp_path / "swap", b)  # renames keep sizes and modification times
    X, y, classes = load_image_folder(tmp_path / "f")
    np.testing.assert_array_equal(X[0], images[("b", 0)])
    np.testing.assert_array_equal(X[1], images[("a", 0)])


def _flip_bit(path, position):
    data = bytearray(path.read_bytes())
    data[position] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", [0.5, 0.02, -30])
def test_a_damaged_cache_is_rebuilt_with_a_warning(tmp_path, where):
    write_image_folder(tmp_path / "f", per_class=2)
    expected = load_image_folder(tmp_path / "f")
    [cache] = (tmp_path / "numcnn-data" / "image-folders").glob("*.npz")
    size = cache.stat().st_size
    _flip_bit(cache, int(size * where) if where > 0 else size + where)
    with pytest.warns(UserWarning, match=f"{cache.name}: damaged cache of decoded images .*decoding the images again"):
        X, y, classes = load_image_folder(tmp_path / "f")
    np.testing.assert_array_equal(X, expected[0])
    np.testing.assert_array_equal(y, expected[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rebuilt: the next load reads it without complaint
        load_image_folder(tmp_path / "f")


def test_a_colour_folder_whose_first_image_is_grayscale_stays_colour(tmp_path):
    images = write_image_folder(tmp_path / "f", classes=("b",), per_class=2)
    gray = np.arange(30, dtype=np.uint8).reshape(6, 5)
    (tmp_path / "f" / "a").mkdir()
    Image.fromarray(gray, "L").save(tmp_path / "f" / "a" / "first.png")
    X, y, classes = load_image_folder(tmp_path / "f", cache=False)
    assert X.shape == (3, 6, 5, 3) and classes == ["a", "b"]
    np.testing.assert_array_equal(X[0], np.repeat(gray[..., None], 3, axis=2))
    np.testing.assert_array_equal(X[1], images[("b", 0)])


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    (tmp_path / "f" / "a").mkdir(parents=True)
    values = np.array([[0, 256, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "f" / "a" / "deep.png")
    assert Image.open(tmp_path / "f" / "a" / "deep.png").mode.startswith("I")
    X, _, _ = load_image_folder(tmp_path / "f", cache=False)
    assert X.shape == (1, 1, 4, 1)
    assert list(X[0, 0, :, 0]) == [0, 1, 128, 255]


def _png(value=0, size=(5, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full(size + (3,), value, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


HOSTILE_NAMES = [
    "../evil/x.png",
    "/abs/x.png",
    ".git/x.png",
    "good/../../up/x.png",
    "./good/a.png",
    "good/b.png",
    "good//c.png",
]


def _write_archive(path, names, content=None):
    content = content or {}
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w") as archive:
            for name in names:
                info = zipfile.ZipInfo(name)
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, content.get(name, _png()))
        return path
    with tarfile.open(path, "w:gz") as archive:
        for name in names:
            data = content.get(name, _png())
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_members_outside_the_archive_root_are_ignored_the_same_way_in_both_formats(tmp_path, suffix):
    archive = _write_archive(tmp_path / f"photos{suffix}", HOSTILE_NAMES)
    X, y, classes = load_image_folder(archive, cache=False)
    assert classes == ["good"] and len(X) == 3


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_an_archive_member_bomb_is_refused_from_its_declared_size(tmp_path, monkeypatch, suffix):
    monkeypatch.setattr(folder_module, "MAX_MEMBER_BYTES", 1 << 20)
    bomb = bytes(24 << 20)  # 24 MiB of zeros: about 24 KiB compressed
    archive = _write_archive(tmp_path / f"bomb{suffix}", ["a/x.png", "a/bomb.png"], {"a/bomb.png": bomb})
    assert archive.stat().st_size < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"member a/bomb.png declares 25165824 bytes, more than the 1 MiB"):
            load_image_folder(archive, cache=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_an_image_with_too_many_pixels_is_one_data_error(tmp_path, monkeypatch):
    write_image_folder(tmp_path / "f", classes=("a",), per_class=1, size=(40, 40))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # so that a 40x40 image stands for a 20000x20000 one
    with pytest.raises(DataError, match=r"a/000.png: too many pixels to decode safely"):
        load_image_folder(tmp_path / "f", cache=False)


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_every_flipped_bit_in_an_archive_is_one_data_error_or_harmless(tmp_path, suffix):
    names = ["a/0.png", "a/1.png", "b/0.png"]
    archive = _write_archive(tmp_path / f"f{suffix}", names, {n: _png(i * 40) for i, n in enumerate(names)})
    original = archive.read_bytes()
    expected = load_image_folder(archive, cache=False)
    refused = 0
    for position in range(0, len(original), max(1, len(original) // 300)):
        damaged = bytearray(original)
        damaged[position] ^= 0x04
        archive.write_bytes(bytes(damaged))
        try:
            X, y, classes = load_image_folder(archive, cache=False)
        except DataError as error:
            assert str(archive) in str(error) and "\n" not in str(error)
            refused += 1
            continue
        if classes == expected[2] and X.shape == expected[0].shape:  # a flip in a name, date or padding
            assert list(y) == list(expected[1])
    assert refused > 50


def test_image_size_resizes_the_shorter_side_and_crops_the_centre(tmp_path):
    (tmp_path / "f" / "wide").mkdir(parents=True)
    (tmp_path / "f" / "tall").mkdir()
    wide = np.arange(4 * 8 * 3, dtype=np.uint8).reshape(4, 8, 3)  # height 4, width 8
    tall = np.random.default_rng(0).integers(0, 256, (12, 6, 3), dtype=np.uint8)
    Image.fromarray(wide).save(tmp_path / "f" / "wide" / "w.png")
    Image.fromarray(tall).save(tmp_path / "f" / "tall" / "t.png")
    with pytest.raises(DataError, match=r"image of size .* pass image_size=N \(--image-size N on the command line\)"):
        load_image_folder(tmp_path / "f")
    X, y, classes = load_image_folder(tmp_path / "f", image_size=4)
    assert X.shape == (2, 4, 4, 3) and classes == ["tall", "wide"]
    np.testing.assert_array_equal(X[1], wide[:, 2:6])  # shorter side already 4: only the centre is cut
    # torchvision: Resize(4) makes the 6x12 image 4 wide and int(4 * 12 / 6) = 8 high, CenterCrop(4) keeps rows 2..5
    resized = np.asarray(Image.fromarray(tall).resize((4, 8), Image.BILINEAR))
    np.testing.assert_array_equal(X[0], resized[2:6])
    assert load_image_folder(tmp_path / "f", image_size=3)[0].shape == (2, 3, 3, 3)  # its own cache entry
    with pytest.raises(ValueError, match="image_size must be a positive int"):
        load_image_folder(tmp_path / "f", image_size=0)


def _photos(folder, sizes):
    """Class folders of RGB images of the given (height, width) sizes, colours telling the classes apart."""
    rng = np.random.default_rng(0)
    for cls, base in (("day", 200), ("night", 40)):
        (folder / cls).mkdir(parents=True)
        for i, size in enumerate(sizes):
            pixels = np.clip(base + rng.integers(-20, 20, size + (3,)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / cls / f"{i}.png")


def _cli(*arguments):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "numcnn.cli", *map(str, arguments)], capture_output=True, text=True, timeout=300
    )


MIXED_SIZES = [(10, 14), (12, 9), (9, 9), (16, 11), (11, 13)] * 2


def test_mixed_sizes_name_the_image_size_option_and_load_raw_applies_it(tmp_path):
    from numcnn.train.config import UserError
    from numcnn.train.dataprep import load_raw

    _photos(tmp_path / "photos", MIXED_SIZES)
    refused = _cli("train", "--dataset", "folder", tmp_path / "photos", "--epochs", "1", "--out", tmp_path / "run")
    assert refused.returncode == 2 and "--image-size N" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "run" / "last.npz").exists()
    X_train, _, X_test, _, classes = load_raw("folder", tmp_path / "photos", image_size=8)
    assert X_train.shape[1:] == X_test.shape[1:] == (8, 8, 3) and len(X_train) + len(X_test) == 20
    with pytest.raises(UserError, match="--image-size resizes your own images"):
        load_raw("digits", image_size=8)
    bad = _cli("train", "--dataset", "folder", tmp_path / "photos", "--image-size", "0", "--out", tmp_path / "bad")
    assert bad.returncode == 2 and "--image-size must be positive, got 0" in bad.stderr


@pytest.mark.slow
def test_the_cli_trains_and_evaluates_photos_of_mixed_sizes_with_image_size(tmp_path):
    _photos(tmp_path / "photos", MIXED_SIZES)
    run = _cli(
        "train",
        "--dataset",
        "folder",
        tmp_path / "photos",
        "--image-size",
        "8",
        "--model",
        "fc",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--quiet",
        "--val-size",
        "2",
        "--out",
        tmp_path / "run",
    )
    assert run.returncode == 0, run.stderr[-800:]
    checkpoint = tmp_path / "run" / "last.npz"
    evaluated = _cli("evaluate", checkpoint)
    assert evaluated.returncode == 0, evaluated.stderr[-800:]  # the checkpoint says image_size 8, so the photos fit
    assert "test accuracy" in evaluated.stdout and "on 4 images" in evaluated.stdout
    from numcnn.io import load_checkpoint

    assert load_checkpoint(checkpoint).state["metadata"]["image_size"] == 8


def test_a_dangling_link_in_a_class_folder_is_one_data_error(tmp_path):
    write_image_folder(tmp_path / "f", classes=("a",), per_class=1)
    (tmp_path / "f" / "a" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    with pytest.raises(DataError, match=r"a/gone.png: cannot be read \(FileNotFoundError"):
        load_image_folder(tmp_path / "f")
