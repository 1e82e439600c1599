"""Layers of keras_compattr."""

from keras_compattr.layers.image_preprocessing import PREPROCESSING_MODES
from keras_compattr.layers.image_preprocessing import ImagePreprocessing
from keras_compattr.layers.mask_head import MaskHead
from keras_compattr.layers.random_cell_mask import RandomCellMask

__all__ = [
    "PREPROCESSING_MODES",
    "ImagePreprocessing",
    "MaskHead",
    "RandomCellMask",
]
