"""CS231n's solver.py: numcnn's Solver keeps the assignment's arguments and histories.

Two deliberate differences: epochs are shuffled passes without replacement
(pass sampling='replacement' for the assignment's np.random.choice batches),
and checkpoint_name writes numcnn's safe .npz checkpoints instead of pickles.
An update rule named by a string is the assignment's optim.py's, as there
(sgd_momentum: v = mu*v - lr*dw, which lr_decay then acts on as it does in
the assignment), not numcnn.train.optim's PyTorch form.
"""

from ...train.solver import Solver as _NumcnnSolver
from . import optim


class Solver(_NumcnnSolver):
    """numcnn's Solver, with an update rule named by a string taken from the assignment's optim.py.

    update_rule="sgd_momentum" (or another name of numcnn.compat.cs231n.optim) runs the
    assignment's function, as its solver.py does; everything else is numcnn.train.Solver's
    (the module's docstring above gives the two deliberate differences).
    """

    def __init__(self, model, data, **kwargs):
        rule = kwargs.get("update_rule", "sgd")
        if isinstance(rule, str) and rule in optim.__all__:
            kwargs["update_rule"] = getattr(optim, rule)
        super().__init__(model, data, **kwargs)


__all__ = ["Solver"]
