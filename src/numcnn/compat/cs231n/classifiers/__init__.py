"""CS231n's classifiers package."""

from .cnn import ThreeLayerConvNet
from .fc_net import FullyConnectedNet, TwoLayerNet

__all__ = ["ThreeLayerConvNet", "FullyConnectedNet", "TwoLayerNet"]
