"""Models: `ComprehensiveAttributionModel` and builders for its networks."""

from keras_compattr.models.builders import build_classifier
from keras_compattr.models.builders import build_predictor
from keras_compattr.models.builders import build_selector
from keras_compattr.models.comprehensive_attribution_model import (
    ComprehensiveAttributionModel,
)
from keras_compattr.models.grouped_optimizer import GroupedOptimizer
