"""Helpers shared by the figures of `keras_compattr.visualization`."""

import functools
import io

import numpy as np


@functools.cache
def _figure_class():
    from matplotlib.figure import Figure

    class NotebookFigure(Figure):
        """A `Figure` that Jupyter shows as a PNG, whatever the backend.

        A bare `Figure` has no PNG form of its own: IPython shows one only
        after pyplot's inline backend has registered its formatters (as
        `%matplotlib inline` does), else it prints
        `<Figure size ... with N Axes>`. This class gives it one.
        """

        def _repr_png_(self):
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
            return buffer.getvalue()

    return NotebookFigure


def new_figure(figsize, layout=None):
    """A bare `matplotlib.figure.Figure` of `figsize` inches.

    No pyplot: no global state, no GUI backend needed. Notebooks (Jupyter,
    Colab) show the figure as a PNG when a cell returns it or passes it to
    `IPython.display.display`, with or without `%matplotlib inline`.
    """
    return _figure_class()(figsize=figsize, layout=layout)


def label_name(index, class_names):
    """The name of class `index`: `class_names[index]`, else the number."""
    if class_names is None:
        return str(int(index))
    return str(class_names[int(index)])


def image_maps(values, images, name):
    """`values` as float32 maps `(N, H, W)`, one per image of `images`.

    A trailing channel of one is dropped and maps past the images' count
    are cut off (figures show at most `max_images` rows).

    Raises:
        ValueError: the maps do not match the images' `(N, H, W)`; the
            message names them `name`.
    """
    maps = np.asarray(values, "float32")
    if maps.ndim == 4 and maps.shape[-1] == 1:
        maps = maps[..., 0]
    maps = maps[: len(images)]
    if maps.shape != images.shape[:3]:
        raise ValueError(
            f"{name} must have shape (N, H, W) matching the images "
            f"{images.shape[:3]}. Received {np.shape(values)}."
        )
    return maps
