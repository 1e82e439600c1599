"""Models: `ComprehensiveAttributionModel` and builders for its networks.

- `ComprehensiveAttributionModel`: COMET as a `keras.Model`;
- `build_selector`, `build_predictor`, `build_classifier`: networks from
  scratch; `as_selector`, `as_predictor`, `as_detector`: networks from any
  backbone or classifier; `RECIPES`: the names of the known backbones;
- `DetectorHardening`: how the judge of the masked-out image is hardened;
- `GroupedOptimizer`: one optimizer for the selector, one for the predictor;
- `load_model`: a saved `.keras` file, with a clear error on a bad one.

The modules behind them are internals; import from here. Each holds one
concern: `comprehensive_attribution_model` (the model), `comet_trainer` (its
`compile`, `fit`, steps and data checks), `networks` (the networks built from
scratch), `adapters` (networks users bring), `recipes` (known backbones and
their preprocessing), `checks` (shapes, classes and arguments), `hardening`
(the judge of the masked-out image), `data_statistics` (the fill value and
batch-norm statistics), `grouped_optimizer` and `loading`.
"""

from keras_compattr.models.adapters import as_detector
from keras_compattr.models.adapters import as_predictor
from keras_compattr.models.adapters import as_selector
from keras_compattr.models.comprehensive_attribution_model import (
    ComprehensiveAttributionModel,
)
from keras_compattr.models.grouped_optimizer import GroupedOptimizer
from keras_compattr.models.hardening import DetectorHardening
from keras_compattr.models.loading import load_model
from keras_compattr.models.networks import build_classifier
from keras_compattr.models.networks import build_predictor
from keras_compattr.models.networks import build_selector
from keras_compattr.models.recipes import RECIPES

__all__ = [
    "RECIPES",
    "ComprehensiveAttributionModel",
    "DetectorHardening",
    "GroupedOptimizer",
    "as_detector",
    "as_predictor",
    "as_selector",
    "build_classifier",
    "build_predictor",
    "build_selector",
    "load_model",
]
