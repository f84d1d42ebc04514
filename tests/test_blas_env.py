"""numcnn's default for OpenBLAS's idle-thread timeout: set before NumPy loads, never over the user's."""

import os
import subprocess
import sys

REPORT = (
    "import os, numcnn; from numcnn.blas_env import thread_timeout_description; "
    "print(os.environ['OPENBLAS_THREAD_TIMEOUT']); print(thread_timeout_description())"
)


def _python(code: str, **env) -> list[str]:
    environment = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    environment.update(env)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_importing_numcnn_first_sets_the_default_before_numpy_loads():
    value, description = _python(REPORT)
    assert value == "20" and "2^20" in description and "numcnn's default" in description


def test_a_value_the_user_exported_is_kept():
    value, description = _python(REPORT, OPENBLAS_THREAD_TIMEOUT="8")
    assert value == "8" and "2^8" in description and "exported" in description


def test_numpy_imported_first_is_reported_as_openblas_default():
    value, description = _python("import numpy; " + REPORT)
    assert "2^28" in description and "imported before numcnn" in description
