"""Datasets: the embedded synthetic data."""

from keras_compattr.datasets.synthetic import as_dataset
from keras_compattr.datasets.synthetic import class_glyphs
from keras_compattr.datasets.synthetic import synthetic
