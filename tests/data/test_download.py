"""Checked downloads against a real HTTP server on 127.0.0.1."""

import hashlib
import http.server
import tarfile
import threading

import numpy as np
import pytest
from fake_data import cifar_arrays, tar_folder, write_cifar_python

from numcnn.data import DataError, DatasetNotFound, download, load_cifar10
from numcnn.data import cifar as cifar_module
from numcnn.data.download import safe_extract


class RangeHandler(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    requests: list = []
    cut_after: int | None = None  # close the connection after this many bytes, as a flaky network does

    def do_GET(self):
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.requests.append((self.path, self.headers.get("Range")))
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if self.cut_after is not None:
            self.wfile.write(body[start : start + self.cut_after])
            self.close_connection = True
            return
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    RangeHandler.files, RangeHandler.requests, RangeHandler.cut_after = {}, [], None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", RangeHandler
    httpd.shutdown()


def test_download_verifies_and_keeps_a_good_file(server, tmp_path):
    base, handler = server
    body = bytes(range(256)) * 1000
    handler.files["/data.bin"] = body
    path = download(base + "/data.bin", tmp_path / "data.bin", sha256=hashlib.sha256(body).hexdigest(), progress=False)
    assert path.read_bytes() == body
    download(base + "/data.bin", path, md5=hashlib.md5(body).hexdigest())  # already there and verified
    assert len(handler.requests) == 1


def test_a_corrupted_download_is_rejected_and_deleted(server, tmp_path):
    base, handler = server
    handler.files["/data.bin"] = b"tampered bytes"
    with pytest.raises(DataError, match="sha256 is .*expected 0000.*nothing from it was used"):
        download(base + "/data.bin", tmp_path / "data.bin", sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_a_partial_download_resumes_with_a_range_request(server, tmp_path):
    base, handler = server
    body = np.random.default_rng(0).bytes(50_000)
    handler.files["/big.bin"] = body
    (tmp_path / "big.bin.part").write_bytes(body[:20_000])  # an earlier attempt that stopped
    download(base + "/big.bin", tmp_path / "big.bin", md5=hashlib.md5(body).hexdigest())
    assert (tmp_path / "big.bin").read_bytes() == body
    assert handler.requests == [("/big.bin", "bytes=20000-")]


def test_a_connection_closed_early_keeps_what_arrived_and_the_next_call_resumes(server, tmp_path):
    base, handler = server
    body = np.random.default_rng(1).bytes(60_000)
    handler.files["/big.bin"] = body
    handler.cut_after = 25_000
    with pytest.raises(DatasetNotFound, match="closed after 25000 of 60000 bytes; run again to resume"):
        download(base + "/big.bin", tmp_path / "big.bin", md5=hashlib.md5(body).hexdigest())
    assert (tmp_path / "big.bin.part").read_bytes() == body[:25_000]
    handler.cut_after = None
    download(base + "/big.bin", tmp_path / "big.bin", md5=hashlib.md5(body).hexdigest())
    assert (tmp_path / "big.bin").read_bytes() == body
    assert handler.requests[-1] == ("/big.bin", "bytes=25000-")


def test_the_progress_bar_names_the_file_and_counts_bytes(server, tmp_path, capsys):
    pytest.importorskip("tqdm", reason="the progress bar is tqdm's")
    base, handler = server
    body = bytes(300_000)
    handler.files["/data.bin"] = body
    download(base + "/data.bin", tmp_path / "data.bin", md5=hashlib.md5(body).hexdigest(), progress=True)
    err = capsys.readouterr().err
    assert "data.bin" in err and "100%" in err


def test_load_mnist_download_fetches_and_checks_the_four_files(server, tmp_path, monkeypatch):
    import gzip

    from fake_data import idx_bytes

    from numcnn.data import load_mnist
    from numcnn.data import mnist as mnist_module

    base, handler = server
    rng = np.random.default_rng(2)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 12),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 5),
    }
    md5s = {}
    for name, array in arrays.items():
        handler.files[f"/{name}.gz"] = gzip.compress(idx_bytes(array))
        md5s[f"{name}.gz"] = hashlib.md5(handler.files[f"/{name}.gz"]).hexdigest()
    monkeypatch.setitem(mnist_module.SOURCES, "mnist", (base + "/", md5s))
    X_train, y_train, X_test, y_test, classes = load_mnist(tmp_path / "mnist", download=True)
    np.testing.assert_array_equal(X_train[..., 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte"])
    assert len(handler.requests) == 4
    load_mnist(tmp_path / "mnist", download=True)  # all there: nothing fetched again
    assert len(handler.requests) == 4


def test_no_network_says_where_to_put_the_file(tmp_path):
    with pytest.raises(DatasetNotFound, match="no network\\? Download it by hand and put it at .*x.tar.gz"):
        download("http://127.0.0.1:9/x.tar.gz", tmp_path / "x.tar.gz", md5="0" * 32, timeout=2)


def test_a_checksum_is_required():
    with pytest.raises(ValueError, match="needs a checksum"):
        download("http://127.0.0.1:9/x", "x")


def _cifar_archive(tmp_path):
    source = tmp_path / "source"
    write_cifar_python(source, cifar_arrays())
    return tar_folder(
        source / "cifar-10-batches-py", tmp_path / "cifar-10-python.tar.gz", arcname="cifar-10-batches-py"
    ).read_bytes()


def test_load_cifar10_download_fetches_checks_and_unpacks(server, tmp_path, monkeypatch):
    base, handler = server
    archive = _cifar_archive(tmp_path)
    handler.files["/cifar-10-python.tar.gz"] = archive
    monkeypatch.setattr(cifar_module, "PYTHON_URL", base + "/cifar-10-python.tar.gz")
    monkeypatch.setattr(cifar_module, "PYTHON_MD5", hashlib.md5(archive).hexdigest())
    X_train, y_train, X_test, y_test, classes = load_cifar10(tmp_path / "cache", download=True)
    assert X_train.shape == (35, 32, 32, 3) and X_test.shape == (7, 32, 32, 3)
    monkeypatch.setattr(cifar_module, "PYTHON_MD5", "0" * 32)
    handler.files["/cifar-10-python.tar.gz"] = archive[:-100] + b"\x00" * 100  # corrupted in transit
    with pytest.raises(DataError, match="md5 is .*expected 0{32}"):
        load_cifar10(tmp_path / "other-cache", download=True)
    assert not (tmp_path / "other-cache" / "cifar-10-batches-py").exists()


def test_unpacking_refuses_members_outside_the_folder(tmp_path):
    evil = tmp_path / "evil.tar"
    (tmp_path / "payload").write_text("x")
    with tarfile.open(evil, "w") as tar:
        tar.add(tmp_path / "payload", arcname="../escaped.txt")
    with pytest.raises(DataError, match="refusing to unpack '../escaped.txt'"):
        safe_extract(evil, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()


def test_a_download_cut_short_is_one_line_not_a_message_nested_in_itself(server, tmp_path):
    base, handler = server
    body = bytes(range(256)) * 200
    handler.files["/cut.bin"] = body
    handler.cut_after = 1000
    with pytest.raises(DatasetNotFound) as caught:
        download(base + "/cut.bin", tmp_path / "cut.bin", md5=hashlib.md5(body).hexdigest())
    message = str(caught.value)
    assert message.count("could not download") == 1 and "no network" not in message and "\n" not in message
    assert message.startswith(f"could not download {base}/cut.bin: the connection closed after 1000 of 51200 bytes")


def test_get_cifar10_data_accepts_the_download_its_error_suggests(server, tmp_path, monkeypatch):
    from numcnn.compat.cs231n.data_utils import get_CIFAR10_data as assignment_data
    from numcnn.data import get_CIFAR10_data

    base, handler = server
    archive = _cifar_archive(tmp_path)
    handler.files["/cifar-10-python.tar.gz"] = archive
    monkeypatch.setattr(cifar_module, "PYTHON_URL", base + "/cifar-10-python.tar.gz")
    monkeypatch.setattr(cifar_module, "PYTHON_MD5", hashlib.md5(archive).hexdigest())
    with pytest.raises(DatasetNotFound, match="Pass download=True"):
        assignment_data(num_training=30, num_validation=5, num_test=7)
    data = assignment_data(num_training=30, num_validation=5, num_test=7, download=True)  # into $NUMCNN_DATA/cifar10
    assert data["X_train"].shape == (30, 3, 32, 32) and data["X_train"].dtype == np.float64
    own = get_CIFAR10_data(num_training=30, num_validation=5, num_test=7, root=tmp_path / "elsewhere", download=True)
    np.testing.assert_allclose(own["X_val"], data["X_val"], rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("kind", ["python release", "image folders"])
def test_an_archive_in_the_default_cifar10_folder_is_read_like_root_archive(tmp_path, kind):
    import os

    from fake_data import write_image_folder

    from numcnn.compat.cs231n.data_utils import get_CIFAR10_data as assignment_data

    default = tmp_path / "numcnn-data" / "cifar10"  # $NUMCNN_DATA/cifar10 (the autouse fixture's)
    default.mkdir(parents=True)
    if kind == "python release":
        (default / "cifar-10-python.tar.gz").write_bytes(_cifar_archive(tmp_path))
    else:
        for split in ("train", "test"):
            write_image_folder(tmp_path / "jpeg" / split, classes=("bird", "cat"), per_class=20, size=(32, 32))
        tar_folder(tmp_path / "jpeg", default / "cifar10-jpeg.tar.gz")
    [archive] = default.iterdir()
    from_root = load_cifar10(archive)
    from_default = load_cifar10()
    for a, b in zip(from_root, from_default):
        np.testing.assert_array_equal(a, b)
    assert sorted(os.listdir(default)) == [archive.name]  # read in place, nothing unpacked
    assert assignment_data(num_training=30, num_validation=5, num_test=7)["X_train"].shape == (30, 3, 32, 32)
    if kind == "python release":
        expected = cifar_arrays()[5][0].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        np.testing.assert_array_equal(from_root[2], expected)
