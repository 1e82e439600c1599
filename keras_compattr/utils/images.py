"""Helpers shared by the models, metrics and explainers for image inputs.

The pixel range rule of `keras_compattr`: integer images are `0..255`;
float images are `[0, 1]`, except a float image (each image on its own)
whose largest value is above `FLOAT_255_ABOVE` (1.5) and whose smallest is
not below -0.5: that one is `0..255`, as `keras.utils.load_img`,
`keras.utils.image_dataset_from_directory` and `tf.image.resize` of 8-bit
images give it, and is divided by 255. Any overshoot of `[0, 1]` below 1.5
(e.g. from a bicubic resize) stays `[0, 1]`. Only an image whose every
pixel is at most 1.5 on the `0..255` scale (black to the eye) would be
misread; pass such images as `uint8`, or divided by 255.
"""

import numpy as np
from keras import backend
from keras import ops

# A float image whose maximum is above this is read as 0..255 pixels.
FLOAT_255_ABOVE = 1.5
# ... when no pixel is below this (a normalised image is neither range).
FLOAT_255_LOWEST = -0.5


def to_unit_range(images):
    """Casts images to float32 pixels in `[0, 1]`.

    Integer images are taken as `0..255` and divided by 255. Float images
    are taken as `[0, 1]` and only cast, except each image whose maximum
    is above 1.5 and minimum not below -0.5, which is taken as `0..255`
    and divided by 255 (see the module docstring).

    Args:
        images: a tensor or array of images, `(..., H, W, C)`.

    Returns:
        A float32 tensor.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> from keras_compattr.utils import to_unit_range
    >>> unit, eight_bit = np.full((2, 2, 3), 0.5), np.full((2, 2, 3), 255.0)
    >>> images = to_unit_range(np.stack([unit, eight_bit]))
    >>> keras.ops.convert_to_numpy(images).max(axis=(1, 2, 3)).tolist()
    [0.5, 1.0]
    """
    dtype = backend.standardize_dtype(images.dtype)
    if "int" in dtype:
        return ops.cast(images, "float32") / 255.0
    images = ops.cast(images, "float32")
    if len(images.shape) < 3:
        return images
    axes = (-3, -2, -1)
    is_255 = ops.logical_and(
        ops.max(images, axis=axes, keepdims=True) > FLOAT_255_ABOVE,
        ops.min(images, axis=axes, keepdims=True) >= FLOAT_255_LOWEST,
    )
    return images * ops.where(is_255, 1.0 / 255.0, 1.0)


def to_unit_range_numpy(images):
    """NumPy twin of `to_unit_range`, for host-side arrays."""
    images = np.asarray(images)
    if np.issubdtype(images.dtype, np.integer):
        return images.astype("float32") / 255.0
    images = images.astype("float32")
    if images.ndim < 3:
        return images
    axes = (-3, -2, -1)
    is_255 = (images.max(axis=axes, keepdims=True) > FLOAT_255_ABOVE) & (
        images.min(axis=axes, keepdims=True) >= FLOAT_255_LOWEST
    )
    return images * np.where(is_255, np.float32(1 / 255), np.float32(1))


def to_unit_range_dataset(dataset):
    """A `tf.data.Dataset` of `(images, ...)` with images as `to_unit_range`.

    The same rule in TensorFlow ops, so that it runs in the data pipeline
    whatever the Keras backend.

    Args:
        dataset: a `tf.data.Dataset` yielding `(images, labels, ...)`.

    Returns:
        The mapped dataset: float32 images in `[0, 1]`, the rest as it was.
    """
    import tensorflow as tf

    def scale(images, *rest):
        if images.dtype.is_integer:
            return (tf.cast(images, tf.float32) / 255.0, *rest)
        images = tf.cast(images, tf.float32)
        axes = [-3, -2, -1]
        is_255 = tf.logical_and(
            tf.reduce_max(images, axis=axes, keepdims=True) > FLOAT_255_ABOVE,
            tf.reduce_min(images, axis=axes, keepdims=True) >= FLOAT_255_LOWEST,
        )
        return (images * tf.where(is_255, 1.0 / 255.0, 1.0), *rest)

    return dataset.map(scale, num_parallel_calls=tf.data.AUTOTUNE)
