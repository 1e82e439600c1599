"""Host-side helpers to run any Keras classifier on image batches.

Shared by the fidelity metrics and the post-hoc explainers: input checks,
labels, fill values and batched forward passes. Everything returns NumPy.
"""

import numpy as np
from keras import ops

from keras_compattr.utils.images import to_unit_range_numpy


def check_images(images, name="images"):
    """Checks `(N, H, W, C)` images and returns float32 pixels in `[0, 1]`.

    Args:
        images: channels-last images, float in `[0, 1]` or integer in
            `0..255`.
        name: the argument name used in error messages.

    Returns:
        A float32 NumPy array `(N, H, W, C)`.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(
            f"`{name}` must have shape (N, H, W, C). "
            f"Received shape {images.shape}."
        )
    if images.shape[0] == 0:
        raise ValueError(f"`{name}` holds no image.")
    return to_unit_range_numpy(images)


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


def fill_values(fill, channels):
    """The fill value `q` as a float32 array `(C,)`.

    Args:
        fill: a float, or one float per channel.
        channels: int, number of image channels `C`.

    Returns:
        A float32 NumPy array `(C,)`.
    """
    fill = np.asarray(fill, "float32").reshape(-1)
    if fill.size == 1:
        fill = np.repeat(fill, channels)
    if fill.size != channels:
        raise ValueError(
            f"`fill` must be a float or one value per channel ({channels}). "
            f"Received {fill.size} values."
        )
    return fill


def model_outputs(model, images):
    """Runs `model` on one batch in inference mode.

    Args:
        model: a Keras classifier mapping images to `(N, K)` outputs.
        images: a float32 NumPy batch.

    Returns:
        A float32 NumPy array `(N, K)`.
    """
    outputs = ops.convert_to_numpy(model(images, training=False))
    if outputs.ndim != 2:
        raise ValueError(
            "The model must map images to (N, K) class scores. "
            f"Received outputs of shape {outputs.shape}."
        )
    return outputs.astype("float32")


def predicted_labels(model, images, batch_size):
    """Arg-max class of `model` for each image, in batches.

    Args:
        model: a Keras classifier.
        images: float32 NumPy images `(N, H, W, C)`.
        batch_size: int.

    Returns:
        An int32 NumPy array `(N,)`.
    """
    labels = [
        model_outputs(model, images[start : start + batch_size]).argmax(-1)
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(labels).astype("int32")


def check_batch_size(batch_size):
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive int. Received {batch_size!r}."
        )
    return int(batch_size)
