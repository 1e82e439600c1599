"""Layers of keras_compattr."""

from keras_compattr.layers.mask_head import MaskHead
