"""The documentation site's notebooks (docs/notebooks/*.py, jupytext's percent format) run from start to end.

Each is read with jupytext and executed cell by cell in a python3 kernel (nbclient), in its short mode
(NUMCNN_DOCS_SHORT=1: small sizes, seconds of training), in a temporary working folder, so that nothing is
written into the repository. The notebooks assert their own numbers, so a cell that raises is a drift in
numcnn (or a stale notebook): the test fails with that cell's source and error.

Data comes through numcnn's loaders from the kernel's data folder ($NUMCNN_DATA): CIFAR-10 from the shared
real datasets beside the project (../shared/data) when they are there, else nothing, and the notebooks use
scikit-learn's digits instead. Nothing is downloaded.
"""

import os
import re
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "docs" / "notebooks").glob("*.py"))
SHARED = Path(os.environ.get("NUMCNN_SHARED_DATA", ROOT.parent / "shared" / "data"))
# Decoding CIFAR-10's 60,000 JPEGs takes a minute or two; the decoded arrays are kept in the project's
# (git-ignored) cache folder, the one tests/data/test_real_data.py fills, and read back in about a second.
PROJECT_CACHE = ROOT / ".test-cache"
CELL_TIMEOUT = 300  # seconds for one cell; a short-mode notebook takes seconds in all
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def kernel_data_folder(tmp_path: Path) -> Path:
    """A numcnn data folder holding CIFAR-10 (a link to the shared archive) when it is available."""
    folder = tmp_path / "numcnn-data"
    folder.mkdir()
    archive = SHARED / "cifar10-jpeg.tar.gz"
    if archive.is_file():
        (folder / "cifar10").mkdir()
        (folder / "cifar10" / archive.name).symlink_to(archive)
        (PROJECT_CACHE / "image-folders").mkdir(parents=True, exist_ok=True)
        (folder / "image-folders").symlink_to(PROJECT_CACHE / "image-folders", target_is_directory=True)
    return folder


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4, f"expected the site's notebooks in {ROOT / 'docs' / 'notebooks'}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_short_mode(path, tmp_path, monkeypatch, record_property):
    jupytext = pytest.importorskip("jupytext", reason="reading the notebooks needs jupytext (the test extra)")
    nbclient = pytest.importorskip("nbclient", reason="executing the notebooks needs nbclient (the test extra)")
    pytest.importorskip("ipykernel", reason="executing the notebooks needs a python3 kernel: pip install ipykernel")
    # the kernel inherits this process's environment
    monkeypatch.setenv("NUMCNN_DOCS_SHORT", "1")
    monkeypatch.setenv("NUMCNN_DATA", str(kernel_data_folder(tmp_path)))
    monkeypatch.setenv("NUMCNN_TUNE", "0")  # the planner's fixed rules: nothing timed, same engines every run
    # One BLAS thread: beside other work on the machine (the rest of the suite, a training run) OpenBLAS's
    # threads wait on each other, and a small float32 GEMM took 10-60 times as long with two as with one.
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    work = tmp_path / "work"
    work.mkdir()

    notebook = jupytext.read(path)
    client = nbclient.NotebookClient(
        notebook, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    )
    started = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except nbclient.exceptions.CellExecutionError as error:
                pytest.fail(f"{path.name}: cell {index} raised:\n{ANSI.sub('', str(error))}", pytrace=False)
    seconds = time.perf_counter() - started
    record_property("seconds", round(seconds, 1))
    print(f"{path.name}: {seconds:.1f} s in short mode")

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert any("image/png" in output.get("data", {}) for output in outputs), f"{path.name} drew no figure"
    assert not list(work.iterdir()), f"{path.name} wrote files: {sorted(p.name for p in work.iterdir())}"


def _strings(node):
    """Every string in a parsed YAML tree."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def test_every_notebook_is_in_the_site_nav():
    yaml = pytest.importorskip("yaml", reason="reading mkdocs.yml needs PyYAML (jupytext brings it)")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = set(_strings(config["nav"]))
    missing = [path.name for path in NOTEBOOKS if f"notebooks/{path.name}" not in pages]
    assert not missing, f"docs/notebooks files missing from mkdocs.yml's nav: {missing}"
    listed = {page for page in pages if page.startswith("notebooks/")}
    absent = sorted(page for page in listed if not (ROOT / "docs" / page).is_file())
    assert not absent, f"mkdocs.yml's nav lists notebooks that do not exist: {absent}"
