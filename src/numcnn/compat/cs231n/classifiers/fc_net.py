"""CS231n's classifiers/fc_net.py."""

from ....models.fc_net import FullyConnectedNet, TwoLayerNet

__all__ = ["FullyConnectedNet", "TwoLayerNet"]
