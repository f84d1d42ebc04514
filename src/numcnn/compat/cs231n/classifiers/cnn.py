"""CS231n's classifiers/cnn.py."""

from ....models.cnn import ThreeLayerConvNet

__all__ = ["ThreeLayerConvNet"]
