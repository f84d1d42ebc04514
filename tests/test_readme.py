"""The README's promises: its commands and its code run as written."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _indented_commands():
    return [line.strip() for line in README.splitlines() if line.startswith("    pip install")]


def test_ci_runs_the_readmes_test_command():
    test_command = next(c for c in _indented_commands() if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_python_snippets_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # snippets may write run folders
    for block in re.findall(r"```python\n(.*?)```", README, re.S):
        exec(compile(block, "README.md", "exec"), {})


def test_readmes_run_command_is_the_installed_numcnn_train():
    """`numcnn train` itself is run with no arguments by tests/cli/test_cli.py."""
    run_command = next(c for c in _indented_commands() if "pytest" not in c)
    assert run_command == 'pip install -e ".[train]" && numcnn train'
    assert 'numcnn = "numcnn.cli:main"' in (ROOT / "pyproject.toml").read_text()


@pytest.mark.parametrize("document", ["README.md", "BENCHMARKS.md"])
def test_links_and_pictures_point_at_files_in_the_repository(document):
    text = (ROOT / document).read_text()
    targets = [
        t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text) if not t.startswith(("http://", "https://", "#"))
    ]
    assert targets, "no relative links found: the pattern is wrong"
    assert [t for t in targets if not (ROOT / t).exists()] == []
