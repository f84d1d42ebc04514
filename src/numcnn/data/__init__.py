"""numcnn.data: real datasets, checked downloads, augmentation and batching.

Loaders return uint8 images (N, H, W, C), int64 labels and class names:

    load_cifar10(root)        python or binary release, or train/ and test/ image folders
    load_mnist(root, kind)    IDX files (gzip or not), MNIST or Fashion-MNIST
    load_image_folder(root)   class sub-folders of any images Pillow reads (or an archive);
                              image_size=N resizes and center-crops photos of any size
    load_digits()             scikit-learn's 8x8 digits, no download
    get_CIFAR10_data(...)     the CS231n assignment's preprocessed dict

to_float_nchw turns them into the (N, C, H, W) floats the networks take.

Side room: may import numpy, the standard library, numcnn.checks and
numcnn.io (atomic writes into the cache folder); Pillow and scikit-learn when
installed. Never ops, nn, models or the training code.
"""

from .assignment import get_CIFAR10_data
from .cifar import load_cifar10, read_python_batch
from .digits import load_digits
from .download import download, download_and_extract
from .errors import DataError, DatasetNotFound, data_dir
from .folder import load_image_folder
from .loader import DataLoader, train_val_split
from .mnist import load_mnist, read_idx
from .transforms import Compose, Cutout, Normalize, RandomCrop, RandomHorizontalFlip, channel_stats, to_float_nchw

__all__ = [
    "load_cifar10",
    "read_python_batch",
    "load_mnist",
    "load_image_folder",
    "load_digits",
    "get_CIFAR10_data",
    "download",
    "download_and_extract",
    "DataError",
    "DatasetNotFound",
    "data_dir",
    "DataLoader",
    "train_val_split",
    "read_idx",
    "Compose",
    "Cutout",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "channel_stats",
    "to_float_nchw",
]
