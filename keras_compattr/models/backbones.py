"""Where the networks users bring are turned into COMET's networks.

This module gathers, for older imports, what now lives in:

- `keras_compattr.models.adapters`: `as_selector`, `as_predictor`,
  `as_detector` and `resolve_networks`;
- `keras_compattr.models.recipes`: the catalogue `RECIPES`, pretrained
  weights and the optional KerasHub and KerasCV extras;
- `keras_compattr.layers.image_preprocessing`: `ImagePreprocessing`.

Import from `keras_compattr.models` (or those modules) in new code.
"""

from keras_compattr.layers.image_preprocessing import PREPROCESSING_MODES
from keras_compattr.layers.image_preprocessing import ImagePreprocessing
from keras_compattr.models.adapters import as_detector
from keras_compattr.models.adapters import as_predictor
from keras_compattr.models.adapters import as_selector
from keras_compattr.models.adapters import resolve_networks
from keras_compattr.models.recipes import RECIPES
from keras_compattr.models.recipes import import_extra
from keras_compattr.models.recipes import network_source

__all__ = [
    "PREPROCESSING_MODES",
    "RECIPES",
    "ImagePreprocessing",
    "as_detector",
    "as_predictor",
    "as_selector",
    "import_extra",
    "network_source",
    "resolve_networks",
]
