"""Host-side helpers to run any Keras classifier on image batches.

Shared by the fidelity metrics and the post-hoc explainers: input checks,
labels, fill values and batched forward passes. Everything returns NumPy.
"""

import numpy as np
from keras import ops

from keras_compattr.utils.argument_checks import check_fill
from keras_compattr.utils.argument_checks import check_number
from keras_compattr.utils.image_checks import validate_classifier_images
from keras_compattr.utils.images import to_unit_range_numpy
from keras_compattr.utils.labels import integer_labels
from keras_compattr.utils.labels import validate_labels


def check_images(images, name="images", image_shape=None):
    """Checks `(N, H, W, C)` images and returns float32 pixels in `[0, 1]`.

    The checks are those of
    `keras_compattr.utils.image_checks.validate_classifier_images`: they
    raise a `ValueError` or `TypeError` that names the fix.

    Args:
        images: channels-last images, float in `[0, 1]` or integer in
            `0..255`.
        name: the argument name used in error messages.
        image_shape: `(H, W, C)` the classifier takes (see `input_shape`),
            or `None` to check the rank only.

    Returns:
        A float32 NumPy array `(N, H, W, C)`.
    """
    images = validate_classifier_images(images, name, image_shape)
    return to_unit_range_numpy(images)


def input_shape(model):
    """`(H, W, C)` of a classifier with one rank-4 input, else `None`.

    Dimensions the model leaves open are `None`.
    """
    inputs = getattr(model, "inputs", None)
    if not inputs or len(inputs) != 1 or len(inputs[0].shape) != 4:
        return None
    return tuple(inputs[0].shape[1:])


def num_classes(model, images):
    """Number of classes `K` of a classifier, from its output shape.

    Read from the static output shape of a functional or Sequential
    model; otherwise from one forward pass on the first image.
    """
    outputs = getattr(model, "outputs", None)
    if outputs and len(outputs) == 1 and len(outputs[0].shape) == 2:
        if outputs[0].shape[-1] is not None:
            return int(outputs[0].shape[-1])
    return int(model_outputs(model, images[:1]).shape[-1])


def class_labels(model, images, labels, batch_size, name="labels"):
    """Checked integer labels `(N,)`; the predicted class for `None`.

    Labels are checked against the classifier's number of classes with
    `keras_compattr.utils.labels.validate_labels`.

    Args:
        model: a Keras classifier.
        images: float32 NumPy images `(N, H, W, C)`, already checked.
        labels: `(N,)` integer or `(N, K)` one-hot labels, or `None`.
        batch_size: int, images per forward pass for `None`.
        name: the argument name used in error messages.

    Returns:
        An int32 NumPy array `(N,)`.
    """
    if labels is None:
        return predicted_labels(model, images, batch_size)
    validate_labels(labels, num_classes(model, images), len(images), name)
    return integer_labels(labels, len(images))


def fill_values(fill, channels, name="fill"):
    """The fill value `q` as a float32 array `(C,)`.

    Args:
        fill: a float, or one float per channel, in `[0, 1]`.
        channels: int, number of image channels `C`.
        name: the argument name used in error messages.

    Returns:
        A float32 NumPy array `(C,)`.
    """
    return check_fill(fill, channels, name)


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
    return check_number(batch_size, "batch_size", low=1, integer=True)
