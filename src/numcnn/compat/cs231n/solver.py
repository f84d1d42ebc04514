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
    def __init__(self, model, data, **kwargs):
        rule = kwargs.get("update_rule", "sgd")
        if isinstance(rule, str) and rule in optim.__all__:
            kwargs["update_rule"] = getattr(optim, rule)
        super().__init__(model, data, **kwargs)


__all__ = ["Solver"]
