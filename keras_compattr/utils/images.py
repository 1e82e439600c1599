"""Helpers shared by the models, metrics and explainers for image inputs."""

import numpy as np
from keras import backend
from keras import ops


def to_unit_range(images):
    """Casts images to float32 pixels in `[0, 1]`.

    Integer images are taken as `0..255` and divided by 255; float images
    are taken as already in `[0, 1]` and only cast.

    Args:
        images: a tensor or array of images.

    Returns:
        A float32 tensor.
    """
    dtype = backend.standardize_dtype(images.dtype)
    if "int" in dtype:
        return ops.cast(images, "float32") / 255.0
    return ops.cast(images, "float32")


def to_unit_range_numpy(images):
    """NumPy twin of `to_unit_range`, for host-side arrays."""
    images = np.asarray(images)
    if np.issubdtype(images.dtype, np.integer):
        return images.astype("float32") / 255.0
    return images.astype("float32")
