"""Metrics for attribution maps from any method."""

from keras_compattr.metrics.complexity import sparseness
from keras_compattr.metrics.fidelity import deletion_accuracy
from keras_compattr.metrics.fidelity import deletion_auc
from keras_compattr.metrics.fidelity import insertion_auc
from keras_compattr.metrics.fidelity import keep_accuracy
from keras_compattr.metrics.localization import attribution_mass
from keras_compattr.metrics.localization import coverage
from keras_compattr.metrics.localization import normalize_maps
from keras_compattr.metrics.localization import pxap
from keras_compattr.metrics.pointing import pointing_game
from keras_compattr.metrics.robustness import robustness
from keras_compattr.metrics.robustness import sensitivity
from keras_compattr.metrics.streaming import Coverage
from keras_compattr.metrics.streaming import PxAP

__all__ = [
    "Coverage",
    "PxAP",
    "attribution_mass",
    "coverage",
    "deletion_accuracy",
    "deletion_auc",
    "insertion_auc",
    "keep_accuracy",
    "normalize_maps",
    "pointing_game",
    "pxap",
    "robustness",
    "sensitivity",
    "sparseness",
]
