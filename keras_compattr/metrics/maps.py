"""Checks shared by the metrics: attribution maps in, float32 `(N, H, W)` out.

Internal to `keras_compattr.metrics` (not exported from the package), but
public within it, so that no metric module imports another's private name.
"""

import numpy as np


def as_maps(array, name):
    """Float32 maps `(N, H, W)`; raises on bad dtype, shape, emptiness, NaN."""
    array = np.asarray(array)
    if (
        not np.issubdtype(array.dtype, np.number) and array.dtype != bool
    ) or np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(
            f"`{name}` must hold real numbers. Received dtype {array.dtype}."
        )
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(
            f"`{name}` must have shape (N, H, W) or (N, H, W, 1). "
            f"Received shape {array.shape}."
        )
    if array.size == 0:
        raise ValueError(f"`{name}` is empty (shape {array.shape}).")
    array = array.astype("float32")
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"`{name}` contains NaN or infinite values: no metric of it "
            "would mean anything. Check the method that produced it."
        )
    return array


def check_same_shape(a, b, names):
    """Raises unless `a` and `b` (named `names` in the message) match."""
    if a.shape != b.shape:
        raise ValueError(
            f"`{names[0]}` and `{names[1]}` must have the same shape. "
            f"Received {a.shape} and {b.shape}."
        )


def as_ground_truth(array, name="gt_masks", first="attributions"):
    """Binary ground truth `(N, H, W)`; raises on values other than 0 and 1.

    A map of scores passed as the ground truth (the arguments swapped)
    would otherwise be thresholded and scored without a word.

    Args:
        array: the ground truth, boolean or numbers in `{0, 1}` (`0..255`
            8-bit masks with values 0 and 255 are taken too).
        name: the argument name used in messages.
        first: the name of the metric's first argument, for the hint.

    Returns:
        A boolean array `(N, H, W)`.
    """
    gt = as_maps(array, name)
    values = np.unique(gt)
    if np.isin(values, (0.0, 1.0)).all():
        return gt > 0.5
    if np.isin(values, (0.0, 255.0)).all():
        return gt > 127.5
    inside = values[(values != 0.0) & (values != 1.0)]
    raise ValueError(
        f"`{name}` must hold ground-truth masks in {{0, 1}}; it holds "
        f"{len(values)} distinct values in [{values.min():.3g}, "
        f"{values.max():.3g}], such as {inside[0]:.3g}, as a map of scores "
        f"does. The arguments are `({first}, {name})`: were they swapped? "
        f"Binarise soft masks first, e.g. `{name} > 0.5`."
    )
