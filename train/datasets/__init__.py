"""Loaders for the public fashion data sets, each returning the sample dict of ``sample.py``.

Every loader is a torch ``Dataset`` reading the data set's own published layout; a missing file
or folder raises :class:`DatasetLayoutError` (a ``FileNotFoundError``) naming it, malformed
content raises :class:`DatasetFormatError` (a ``ValueError``).
"""

from .deepfashion import DeepFashionPoseTransfer
from .dresscode import DressCode
from .fashion_mnist import FashionMNIST, FashionMNISTOutfits, fashion_mnist_available
from .files import DatasetFormatError, DatasetLayoutError
from .hm import HMArticles
from .polyvore import PolyvoreOutfits
from .sample import Sample, to_signed
from .vitonhd import VitonHD

__all__ = [
    "DatasetFormatError",
    "DatasetLayoutError",
    "DeepFashionPoseTransfer",
    "DressCode",
    "FashionMNIST",
    "FashionMNISTOutfits",
    "HMArticles",
    "PolyvoreOutfits",
    "Sample",
    "VitonHD",
    "fashion_mnist_available",
    "to_signed",
]
