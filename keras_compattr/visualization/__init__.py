"""Matplotlib figures of attribution masks, and a callback that saves them.

Every function returns a bare `matplotlib.figure.Figure` (no pyplot state,
no GUI backend needed; notebooks display it) and writes a PNG when given
`save_path=`.
"""

from keras_compattr.visualization.comparison import plot_comparison
from keras_compattr.visualization.comparison import plot_curves
from keras_compattr.visualization.history import plot_history
from keras_compattr.visualization.monitor import ExplanationMonitor
from keras_compattr.visualization.plots import plot_explanations

__all__ = [
    "ExplanationMonitor",
    "plot_comparison",
    "plot_curves",
    "plot_explanations",
    "plot_history",
]
