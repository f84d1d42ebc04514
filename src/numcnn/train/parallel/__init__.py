"""numcnn.train.parallel: data parallelism over whole training steps.

    comm.py   Communicator: broadcast, allgather, gather in rank order; WorkerLost

Layer: part of train; may import models, nn, ops, checks and io.
"""

from .comm import Communicator, SingleProcess, WorkerLost

__all__ = ["Communicator", "SingleProcess", "WorkerLost"]
