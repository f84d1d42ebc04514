"""CS231n's solver.py: numcnn's Solver keeps the assignment's arguments and histories.

Two deliberate differences: epochs are shuffled passes without replacement
(pass sampling='replacement' for the assignment's np.random.choice batches),
and checkpoint_name writes numcnn's safe .npz checkpoints instead of pickles.
"""

from ...solver import Solver

__all__ = ["Solver"]
