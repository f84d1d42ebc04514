"""The CS231n assignments' API on numcnn: change `cs231n.` to `numcnn.compat.cs231n.` in the imports.

    from numcnn.compat.cs231n.layers import *
    from numcnn.compat.cs231n.fast_layers import conv_forward_fast, conv_backward_fast
    from numcnn.compat.cs231n.classifiers.cnn import ThreeLayerConvNet
    from numcnn.compat.cs231n.gradient_check import eval_numerical_gradient_array

Submodules mirror the assignment's files; every name is also importable
from numcnn.compat.cs231n itself. Names are thin aliases of numcnn's, so
the assignment's numbers come out of numcnn's ops.
"""

from .classifiers import FullyConnectedNet, ThreeLayerConvNet, TwoLayerNet
from .data_utils import *  # noqa: F401,F403
from .fast_layers import *  # noqa: F401,F403
from .gradient_check import *  # noqa: F401,F403
from .layer_utils import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from .solver import Solver
from .vis_utils import vis_grid, vis_nn, visualize_grid
