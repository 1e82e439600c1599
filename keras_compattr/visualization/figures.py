"""Helpers shared by the figures of `keras_compattr.visualization`."""


def new_figure(figsize, layout=None):
    """A bare `matplotlib.figure.Figure` of `figsize` inches.

    No pyplot: no global state, no GUI backend needed, and notebooks still
    display the figure when it is returned.
    """
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout=layout)


def label_name(index, class_names):
    """The name of class `index`: `class_names[index]`, else the number."""
    if class_names is None:
        return str(int(index))
    return str(class_names[int(index)])
