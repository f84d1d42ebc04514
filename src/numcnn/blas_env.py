"""What numcnn asks of NumPy's OpenBLAS, which reads it once, when NumPy is first imported.

OpenBLAS's idle threads busy-wait for 2^28 cycles (about 0.1 s) after each
threaded call before they sleep, on the very cores numcnn's own threads
(convolution chunks, batch norm passes, pooling blocks) need next. With
2^20 cycles (about 0.4 ms) numcnn's training steps ran 7-35% faster on 2
cores, and threads still stay awake across the back-to-back GEMMs of one
layer (BENCHMARKS.md). This only sets a default: a value the user exported
is kept, and it takes effect only when numcnn is imported before NumPy (as
it is by the `numcnn` command); otherwise export it yourself:

    OPENBLAS_THREAD_TIMEOUT=20 python train.py

numcnn/__init__.py imports this module first, for that side effect; it is
public because bench/ prints thread_timeout_description() in its headers.
"""

import os
import sys

THREAD_TIMEOUT = "20"

user_value = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
numpy_was_loaded = "numpy" in sys.modules  # then OpenBLAS has read its settings already
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", THREAD_TIMEOUT)


def thread_timeout_description() -> str:
    """How long OpenBLAS's idle threads spin in this process, for benchmark headers."""
    if user_value is not None:
        return f"idle threads spin 2^{user_value} cycles (OPENBLAS_THREAD_TIMEOUT, exported)"
    if numpy_was_loaded:
        return "idle threads spin 2^28 cycles (OpenBLAS's default: NumPy was imported before numcnn)"
    return f"idle threads spin 2^{THREAD_TIMEOUT} cycles (numcnn's default, see numcnn.blas_env)"
