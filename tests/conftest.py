import sys
from pathlib import Path

import pytest
from hypothesis import settings

# tests import their helpers as a plain module
sys.path.insert(0, str(Path(__file__).parent))

# Randomized comparisons: enough examples to cover the hyper-parameter
# space, no per-example deadline (the loop versions are slow by design).
settings.register_profile("default", max_examples=30, deadline=None, derandomize=True)
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.load_profile("default")


@pytest.fixture(autouse=True)
def private_data_dir(tmp_path, monkeypatch):
    """Datasets, downloads and decoded-image caches go to a temporary folder, never the user's
    ~/.cache/numcnn (subprocesses inherit it too)."""
    monkeypatch.setenv("NUMCNN_DATA", str(tmp_path / "numcnn-data"))
