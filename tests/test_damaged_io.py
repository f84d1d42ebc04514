"""Files numcnn reads back from its own earlier writes, after a kill, a full disk or a flipped bit."""

import json

import numpy as np
import pytest

from solver_run import make_run


def _flip_first_entry_flag(path):
    """Set the "encrypted" bit of the first central-directory entry: zipfile raises RuntimeError."""
    data = bytearray(path.read_bytes())
    data[data.index(b"PK\x01\x02") + 8] ^= 1
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flag", "npy-header"])
def test_a_damaged_image_folder_cache_is_rebuilt(tmp_path, damage):
    Image = pytest.importorskip("PIL.Image")
    from numcnn.data import data_dir
    from numcnn.data.folder import load_image_folder

    for label, value in (("cats", 40), ("dogs", 200)):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (32, 32), (value + i, value, value)).save(tmp_path / "images" / label / f"{i}.png")
    X, y, classes = load_image_folder(tmp_path / "images", workers=1)
    [cache] = (data_dir() / "image-folders").glob("*.npz")
    if damage == "flag":
        _flip_first_entry_flag(cache)
    else:  # a malformed .npy header in a member over 4 KiB: NumPy parses it before zipfile checks the CRC
        data = cache.read_bytes()
        cache.write_bytes(data.replace(b"'descr'", b"'''scr'", 1))  # tokenize.TokenError
    with pytest.warns(UserWarning, match="damaged cache of decoded images"):
        X2, y2, classes2 = load_image_folder(tmp_path / "images", workers=1)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)
    assert classes2 == classes == ["cats", "dogs"]


def test_a_torn_last_metrics_line_is_dropped_on_resume(tmp_path):
    make_run(tmp_path, 1, resume=False).train()
    log = tmp_path / "metrics.jsonl"
    with open(log, "ab") as f:
        f.write(b'{"epoch": 2, "train_lo\xff')  # killed (or out of disk space) mid-append
    make_run(tmp_path, 2, resume=True).train()
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [record["epoch"] for record in records] == [1, 2]
