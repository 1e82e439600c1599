"""Host-side views of what users pass: dtype names and NumPy arrays."""

import keras
import numpy as np


def dtype_name(dtype):
    """Standard dtype name (`"float32"`, `"uint8"`, ...) or `str(dtype)`."""
    try:
        return keras.backend.standardize_dtype(dtype)
    except (ValueError, TypeError, AttributeError):
        return str(dtype)


def is_real_number_dtype(name):
    """Whether a dtype name is an integer or real floating type."""
    return ("float" in name or "int" in name) and "complex" not in name


def as_array(data, name):
    """NumPy view of an array, tensor or nested list, with a clear error.

    Example:

    >>> from keras_compattr.utils.arrays import as_array
    >>> as_array([[0, 1], [2, 3]], "labels").shape
    (2, 2)
    """
    if isinstance(data, np.ndarray):
        return data
    if hasattr(data, "shape") and hasattr(data, "dtype"):
        return keras.ops.convert_to_numpy(data)
    if isinstance(data, (list, tuple)):
        try:
            return np.asarray(data)
        except ValueError as error:
            raise ValueError(
                f"`{name}` is a list of arrays of different shapes. Stack "
                "equally sized images into one array (N, H, W, C) with "
                f"`np.stack`. ({error})"
            ) from None
    raise TypeError(
        f"`{name}` must be an array or tensor of images (N, H, W, C), a "
        "`tf.data.Dataset`, a `keras.utils.PyDataset` or a generator. "
        f"Received an object of type {type(data).__name__}."
    )
