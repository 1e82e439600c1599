"""Checks of images: dtype, shape (with a hint to fix it) and pixel values."""

import warnings

import numpy as np

from keras_compattr.utils.arrays import as_array
from keras_compattr.utils.arrays import dtype_name
from keras_compattr.utils.arrays import is_real_number_dtype

FLOAT_SLACK = 0.5
_CHUNK = 256  # Images per chunk when scanning values (bounds memory).


def check_image_dtype(dtype, name="images"):
    """Raises `TypeError` unless images of `dtype` can be used."""
    dtype = dtype_name(dtype)
    if is_real_number_dtype(dtype):
        return dtype
    if dtype == "string":
        hint = (
            " The data holds encoded image files: decode them first, e.g. "
            "with `tf.io.decode_image` in a `Dataset.map`."
        )
    elif dtype == "bool":
        hint = " Cast boolean images with `.astype('float32')`."
    else:
        hint = ""
    raise TypeError(
        f"`{name}` must hold real numbers: float pixels in [0, 1] or "
        f"integer pixels in 0..255. Received dtype {dtype}.{hint}"
    )


def _shape_hint(shape, image_shape):
    """A hint on how to turn images of `shape` into `(N, *image_shape)`."""
    height, width, channels = image_shape
    if len(shape) == 3 and tuple(shape) == tuple(image_shape):
        return " This is one image: add a batch axis with `images[None]`."
    if len(shape) == 3 and tuple(shape[1:]) == (height, width):
        return (
            " These look like single-channel images without a channel "
            "axis: add one with `images[..., None]`."
        )
    if len(shape) == 4 and shape[1] == channels and shape[3] != channels:
        return (
            " The images look channels-first (N, C, H, W): the model is "
            "channels-last, use `np.transpose(images, (0, 2, 3, 1))`."
        )
    if len(shape) == 4 and shape[3] != channels:
        if shape[3] == 1 and channels == 3:
            return (
                " Grayscale images can be repeated to RGB with "
                "`np.repeat(images, 3, axis=-1)`."
            )
        if shape[3] == 4 and channels == 3:
            return " Drop the alpha channel with `images[..., :3]`."
        return (
            f" Convert the images to {channels} channel(s), or build the "
            f"networks for {shape[3]}."
        )
    if len(shape) == 4:
        return (
            f" Resize them to {height}x{width}, e.g. with "
            f"`keras.ops.image.resize(images, ({height}, {width}))` or a "
            "`keras.layers.Resizing` in the data pipeline."
        )
    return ""


def check_image_shape(shape, image_shape, name="images", batched=True):
    """Raises `ValueError` unless `shape` is `(N, *image_shape)`.

    Unknown (`None`) dimensions pass, so the shapes of `tf.data` element
    specs can be checked too.

    Args:
        shape: the shape of a batch of images (a tuple, `None` for unknown
            dimensions).
        image_shape: `(H, W, C)`, the image shape of the model.
        name: the argument name used in messages.
        batched: whether `shape` is a batch (rank 4) rather than one image.
    """
    shape = tuple(None if d is None else int(d) for d in shape)
    expected = ((None,) if batched else ()) + tuple(image_shape)
    described = (
        "(N, {}, {}, {})".format(*image_shape)
        if batched
        else ("({}, {}, {})".format(*image_shape))
    )
    matches = len(shape) == len(expected) and all(
        s is None or e is None or s == e for s, e in zip(shape, expected)
    )
    if not matches:
        raise ValueError(
            f"`{name}` must have shape {described} (channels-last) for this "
            f"model. Received shape {shape}." + _shape_hint(shape, image_shape)
        )
    if batched and shape[0] == 0:
        raise ValueError(f"`{name}` holds no image (shape {shape}).")


def check_image_values(images, name="images", strict=False, allow_255=False):
    """Checks pixel values: finite, and in a range the model understands.

    Integer images are read as `0..255`: values outside raise a
    `ValueError`. Float images are read as `[0, 1]`: NaN or infinite
    values raise a `ValueError`, values far outside `[0, 1]` (below
    `-0.5` or above `1.5`) give a warning with a hint to rescale, or
    with `strict=True` a `ValueError` with that hint. With
    `allow_255=True` (the rule of `ComprehensiveAttributionModel`, see
    `keras_compattr.utils.images`), float images in `[-0.5, 255.5]` are
    accepted too, as `0..255` pixels.

    Args:
        images: a NumPy array of images.
        name: the argument name used in messages.
        strict: whether float pixels far outside `[0, 1]` raise rather
            than warn.
        allow_255: whether float pixels in `0..255` are accepted.
    """
    dtype = dtype_name(images.dtype)
    is_float = "float" in dtype
    low, high = np.inf, -np.inf
    bad_count, first_bad = 0, None
    flat = images.reshape(images.shape[0], -1) if images.ndim else images
    for start in range(0, max(len(flat), 1), _CHUNK):
        chunk = flat[start : start + _CHUNK]
        if chunk.size == 0:
            continue
        if is_float:
            chunk = chunk.astype("float32", copy=False)
            finite = np.isfinite(chunk)
            if not finite.all():
                bad_rows = np.flatnonzero(~finite.all(axis=-1))
                bad_count += int((~finite).sum())
                if first_bad is None:
                    first_bad = start + int(bad_rows[0])
                chunk = chunk[finite]
                if chunk.size == 0:
                    continue
        low = min(low, float(chunk.min()))
        high = max(high, float(chunk.max()))
    if bad_count:
        raise ValueError(
            f"`{name}` contains {bad_count} NaN or infinite pixel value(s), "
            f"the first in image {first_bad}. Fix or drop those images "
            "(e.g. `np.nan_to_num`, or filter them out of the data)."
        )
    if not np.isfinite(low):
        return
    if not is_float:
        if low < 0 or high > 255:
            raise ValueError(
                f"`{name}` holds integers in [{low:g}, {high:g}], but integer "
                "images are read as 8-bit pixels in 0..255. Rescale them to "
                "0..255 (`uint8`) or to floats in [0, 1]."
            )
        return
    if allow_255 and low >= -FLOAT_SLACK and high <= 255.0 + FLOAT_SLACK:
        return
    if low < -FLOAT_SLACK or high > 1.0 + FLOAT_SLACK:
        if allow_255 and low >= -FLOAT_SLACK:
            hint = (
                "Float images are read as [0, 1], or as 0..255 pixels when "
                "an image's largest value is above 1.5: these go beyond "
                "255. Rescale them to 0..255 or [0, 1]."
            )
        elif high > 1.0 + FLOAT_SLACK and low >= -FLOAT_SLACK:
            hint = (
                "If they are 0..255 pixels, divide them by 255 (or pass "
                "them as `uint8`)."
            )
        else:
            hint = (
                "If they are normalised (e.g. by a mean and standard "
                "deviation), pass [0, 1] pixels instead and put the "
                "normalisation inside the networks."
            )
        message = (
            f"`{name}` are float pixels in [{low:.3g}, {high:.3g}], far "
            "outside [0, 1], the range float images are read in. " + hint
        )
        if strict:
            raise ValueError(message)
        warnings.warn(message, stacklevel=4)


def validate_images(
    images,
    image_shape,
    name="images",
    allow_single_image=False,
    check_values=True,
):
    """Checks a batch of images for a model built for `image_shape`.

    Args:
        images: an array, tensor or nested list of images `(N, H, W, C)`.
        image_shape: `(H, W, C)`.
        name: the argument name used in messages.
        allow_single_image: whether one image of rank 3, shaped exactly
            `image_shape`, is taken as a batch of one.
        check_values: whether to scan pixel values (NaN, infinity, range).

    Returns:
        A tuple `(images, is_single)`: the images (a NumPy batch with a
        batch axis added when `is_single`; the input itself otherwise) and
        whether one rank-3 image was given.

    Raises:
        TypeError: non-numeric images.
        ValueError: wrong rank, channels or size; no image; NaN or
            infinite pixels; integers outside 0..255.
    """
    array = as_array(images, name)
    check_image_dtype(array.dtype, name)
    is_single = (
        allow_single_image
        and array.ndim == 3
        and tuple(array.shape) == tuple(image_shape)
    )
    if is_single:
        array = array[None]
        images = array
    check_image_shape(array.shape, image_shape, name)
    if check_values:
        check_image_values(array, name, allow_255=True)
    if isinstance(images, (list, tuple)):
        images = array
    return images, is_single


def validate_classifier_images(images, name="images", image_shape=None):
    """Checks images given to an explainer or a metric, strictly.

    As `validate_images`, but for any classifier: rank 4, channels-last,
    matching `image_shape` when the classifier has a static input shape,
    at least one image, real numbers, finite pixels, integers in
    `0..255`, and floats not far outside `[0, 1]` (a `ValueError`, not a
    warning: maps and perturbations of such images mean nothing).

    Args:
        images: an array, tensor or nested list `(N, H, W, C)`.
        name: the argument name used in messages.
        image_shape: `(H, W, C)` of the classifier (`None` for unknown
            dimensions), or `None` to check the rank only.

    Returns:
        The images as a NumPy array (converted once from a tensor).
    """
    array = as_array(images, name)
    check_image_dtype(array.dtype, name)
    if array.ndim != 4:
        hint = (
            " For one image, add a batch axis with `images[None]`."
            if array.ndim == 3
            else ""
        )
        raise ValueError(
            f"`{name}` must have shape (N, H, W, C) (channels-last). "
            f"Received shape {array.shape}.{hint}"
        )
    if image_shape is not None:
        check_image_shape(array.shape, image_shape, name)
    if array.shape[0] == 0:
        raise ValueError(f"`{name}` holds no image (shape {array.shape}).")
    check_image_values(array, name, strict=True)
    return array
