"""The README's promises: its commands and its code run as written."""

import re
import runpy
import subprocess
import sys
from pathlib import Path

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


def test_examples_run(capsys):
    for script in sorted((ROOT / "examples").glob("*.py")):
        runpy.run_path(str(script), run_name="__main__")
    assert "gradient check" in capsys.readouterr().out


def test_readmes_run_command_runs():
    run_command = next(c for c in _indented_commands() if "pytest" not in c)
    script = run_command.split("&&", 1)[1].strip().split()[1]
    result = subprocess.run([sys.executable, script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
