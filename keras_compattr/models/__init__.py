"""Models: `ComprehensiveAttributionModel` and builders for its networks."""

from keras_compattr.models.backbones import PREPROCESSING_MODES
from keras_compattr.models.backbones import RECIPES
from keras_compattr.models.backbones import ImagePreprocessing
from keras_compattr.models.backbones import as_detector
from keras_compattr.models.backbones import as_predictor
from keras_compattr.models.backbones import as_selector
from keras_compattr.models.backbones import resolve_networks
from keras_compattr.models.builders import build_classifier
from keras_compattr.models.builders import build_predictor
from keras_compattr.models.builders import build_selector
from keras_compattr.models.builders import lraspp_head
from keras_compattr.models.comprehensive_attribution_model import (
    ComprehensiveAttributionModel,
)
from keras_compattr.models.grouped_optimizer import GroupedOptimizer
from keras_compattr.models.loading import load_model
