"""Metrics for attribution maps from any method."""

from keras_compattr.metrics.localization import attribution_mass
from keras_compattr.metrics.localization import coverage
from keras_compattr.metrics.localization import normalize_maps
from keras_compattr.metrics.localization import pxap
