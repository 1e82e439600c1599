"""Helpers shared by the figures of `keras_compattr.visualization`."""

import functools
import io


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
