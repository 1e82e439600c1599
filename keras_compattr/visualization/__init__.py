"""Matplotlib figures of attribution masks."""

from keras_compattr.visualization.plots import plot_explanations
