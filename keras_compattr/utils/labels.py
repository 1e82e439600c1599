"""Class labels: integer indices `(N,)` or one-hot rows `(N, K)`.

Every check and conversion of labels lives here: `check_label_spec` (dtype
and shape, for arrays and `tf.data` element specs alike), `validate_labels`
(also the values) and `integer_labels` (one-hot rows to indices).
"""

import numpy as np

from keras_compattr.utils.arrays import as_array
from keras_compattr.utils.arrays import dtype_name
from keras_compattr.utils.arrays import is_real_number_dtype


def is_one_hot(shape, num_classes):
    """Whether labels of `shape` are one-hot rows for `num_classes` classes.

    `(N, 1)` labels of a one-class problem count as indices.

    Example:

    >>> from keras_compattr.utils.labels import is_one_hot
    >>> is_one_hot((8, 3), 3), is_one_hot((8, 1), 3), is_one_hot((8,), 3)
    (True, False, False)
    """
    return len(shape) == 2 and shape[1] == num_classes and num_classes != 1


def check_label_spec(shape, dtype, num_classes, name="labels"):
    """Checks the dtype and shape of labels; unknown (`None`) sizes pass.

    Args:
        shape: the labels' shape, or `None` when unknown.
        dtype: the labels' dtype.
        num_classes: int.
        name: how messages name the labels.

    Raises:
        TypeError: non-numeric labels.
        ValueError: neither `(N,)`, `(N, 1)` nor `(N, num_classes)`.
    """
    dtype = dtype_name(dtype)
    if not (is_real_number_dtype(dtype) or dtype == "bool"):
        raise TypeError(
            f"`{name}` must be integer class indices or one-hot rows. "
            f"Received dtype {dtype}. Map class names to indices first."
        )
    if shape is None:
        return
    shape = tuple(shape)
    if len(shape) not in (1, 2):
        raise ValueError(
            f"`{name}` must have shape (N,) (class indices) or "
            f"(N, {num_classes}) (one-hot). Received shape {shape}."
        )
    if len(shape) == 2 and shape[1] not in (None, 1, num_classes):
        raise ValueError(
            f"`{name}` has shape {shape}: one-hot labels need one column "
            f"per class ({num_classes}); class indices have shape (N,)."
        )


def validate_labels(labels, num_classes, num_images=None, name="labels"):
    """Checks integer or one-hot labels for `num_classes` classes.

    Accepted: `(N,)` or `(N, 1)` class indices in `[0, num_classes)`
    (integers, or floats with integer values), and `(N, num_classes)`
    one-hot (or soft) rows of non-negative values summing to one.

    Args:
        labels: an array or tensor.
        num_classes: int.
        num_images: int or `None`, the expected `N`.
        name: the argument name used in messages.

    Raises:
        TypeError: non-numeric labels.
        ValueError: wrong shape, wrong `N`, out-of-range or non-integer
            indices, or one-hot rows that are not distributions.
    """
    array = as_array(labels, name)
    check_label_spec(array.shape, array.dtype, num_classes, name)
    if num_images is not None and array.shape[0] != num_images:
        raise ValueError(
            f"`{name}` must hold one label per image: {num_images} images "
            f"but {array.shape[0]} labels."
        )
    values = array.astype("float64")
    if values.size and not np.all(np.isfinite(values)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    if is_one_hot(array.shape, num_classes):
        if values.size and values.min() < 0:
            raise ValueError(
                f"One-hot `{name}` (N, {num_classes}) must be non-negative."
            )
        sums = values.sum(axis=1)
        wrong = np.flatnonzero(np.abs(sums - 1.0) > 1e-3)
        if wrong.size:
            raise ValueError(
                f"Rows of one-hot `{name}` (N, {num_classes}) must sum to 1; "
                f"row {int(wrong[0])} sums to {sums[wrong[0]]:g}."
            )
        return
    if values.size == 0:
        return
    if not np.all(values == np.round(values)):
        raise ValueError(
            f"`{name}` must be integer class indices; found non-integer "
            f"values such as {values[values != np.round(values)][0]:g}."
        )
    low, high = values.min(), values.max()
    if low < 0 or high >= num_classes:
        hint = " If they start at 1, subtract 1." if low >= 1 else ""
        raise ValueError(
            f"`{name}` must be class indices in [0, {num_classes}) "
            f"(num_classes={num_classes}). Found values in "
            f"[{low:g}, {high:g}].{hint}"
        )


def integer_labels(labels, num_images):
    """Integer class labels `(N,)` from integer or one-hot labels.

    Args:
        labels: `(N,)` or `(N, 1)` integers, or `(N, K)` one-hot rows.
        num_images: int, the expected `N`.

    Returns:
        An int32 NumPy array `(N,)`.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] > 1:
        labels = labels.argmax(axis=1)
    labels = labels.reshape(-1) if labels.ndim == 2 else labels
    if labels.ndim != 1 or labels.shape[0] != num_images:
        raise ValueError(
            f"`labels` must hold one label per image ({num_images}): shape "
            f"(N,) integers or (N, K) one-hot. Received shape {labels.shape}."
        )
    if labels.size and not np.all(labels == np.round(labels)):
        raise ValueError("`labels` must be integers or one-hot rows.")
    return labels.astype("int32")
