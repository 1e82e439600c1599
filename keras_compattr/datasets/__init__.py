"""Datasets: the embedded synthetic data and loaders of real data sets."""

from keras_compattr.datasets.checks import DatasetNotAvailableError
from keras_compattr.datasets.loaders import DATASETS
from keras_compattr.datasets.loaders import load
from keras_compattr.datasets.synthetic import as_dataset
from keras_compattr.datasets.synthetic import class_glyphs
from keras_compattr.datasets.synthetic import synthetic
from keras_compattr.datasets.tfds_builder import CompattrSynthetic
from keras_compattr.datasets.tfds_builder import CompattrSyntheticConfig

__all__ = [
    "DATASETS",
    "CompattrSynthetic",
    "CompattrSyntheticConfig",
    "DatasetNotAvailableError",
    "as_dataset",
    "class_glyphs",
    "load",
    "synthetic",
]
