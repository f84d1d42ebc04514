"""numcnn: convolutional networks from first principles, in NumPy.

Every layer is a forward pass that returns (out, cache) and a backward pass
that turns the upstream gradient and the cache into gradients, written twice:
a loop version that reads like the maths and a fast vectorized one.

    numcnn.ops        the pure forward/backward functions
    numcnn.gradcheck  numerical gradients and checks
    numcnn.io         checkpoints and atomic writes
    numcnn.models     the models, and how each is saved and rebuilt
"""

from importlib.metadata import PackageNotFoundError, version

from . import (
    blas_env,  # noqa: F401  (first: it sets a default NumPy's OpenBLAS reads on import)
    gradcheck,
    models,  # noqa: F401  (registers the model codec numcnn.io's checkpoints use)
    ops,
)

try:
    __version__ = version("numcnn")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

__all__ = ["ops", "gradcheck", "__version__"]
