"""Input checks: bad images, labels or datasets get a clear error early.

`ComprehensiveAttributionModel.fit`, `evaluate`, `predict` and `explain`
run these checks on the host before any graph is built or traced, so a
mistake in the data is reported as a `ValueError` or `TypeError` that
names the problem and its fix, instead of as a shape error deep inside a
compiled training step (or, worse, as a silently wrong result).

What is checked:

- arrays and tensors: fully (rank, channels, size, dtype, NaN or infinite
  pixels, float pixels far outside `[0, 1]`, labels);
- `tf.data.Dataset`: cheaply, from `element_spec` only (structure, rank,
  static sizes and dtypes); the data itself is not read;
- `keras.utils.PyDataset`: the first batch, fully;
- Python generators: the first batch fully, at once, and every later
  batch's shape and dtype lazily, as training reads them.
"""

import types
import warnings

import keras
import numpy as np

# Float images outside [-FLOAT_SLACK, 1 + FLOAT_SLACK] trigger a warning.
FLOAT_SLACK = 0.5
_CHUNK = 256  # Images per chunk when scanning values (bounds memory).


def dtype_name(dtype):
    """Standard dtype name (`"float32"`, `"uint8"`, ...) or `str(dtype)`."""
    try:
        return keras.backend.standardize_dtype(dtype)
    except (ValueError, TypeError, AttributeError):
        return str(dtype)


def _is_real_number_dtype(name):
    return ("float" in name or "int" in name) and "complex" not in name


def check_image_dtype(dtype, name="images"):
    """Raises `TypeError` unless images of `dtype` can be used."""
    dtype = dtype_name(dtype)
    if _is_real_number_dtype(dtype):
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


def check_image_values(images, name="images", strict=False):
    """Checks pixel values: finite, and in a range the model understands.

    Integer images are read as `0..255`: values outside raise a
    `ValueError`. Float images are read as `[0, 1]`: NaN or infinite
    values raise a `ValueError`, values far outside `[0, 1]` (below
    `-0.5` or above `1.5`) give a warning with a hint to rescale, or
    with `strict=True` a `ValueError` with that hint.

    Args:
        images: a NumPy array of images.
        name: the argument name used in messages.
        strict: whether float pixels far outside `[0, 1]` raise rather
            than warn.
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
    if low < -FLOAT_SLACK or high > 1.0 + FLOAT_SLACK:
        if high > 1.0 + FLOAT_SLACK and low >= -FLOAT_SLACK:
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


def _as_array(data, name):
    """NumPy view of an array, tensor or nested list, with a clear error."""
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
    array = _as_array(images, name)
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
        check_image_values(array, name)
    if isinstance(images, (list, tuple)):
        images = array
    return images, is_single


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
    array = _as_array(labels, name)
    dtype = dtype_name(array.dtype)
    if not (_is_real_number_dtype(dtype) or dtype == "bool"):
        raise TypeError(
            f"`{name}` must be integer class indices or one-hot rows. "
            f"Received dtype {dtype}. Map class names to indices first."
        )
    if array.ndim == 0 or array.ndim > 2:
        raise ValueError(
            f"`{name}` must have shape (N,) (class indices) or "
            f"(N, {num_classes}) (one-hot). Received shape {array.shape}."
        )
    if num_images is not None and array.shape[0] != num_images:
        raise ValueError(
            f"`{name}` must hold one label per image: {num_images} images "
            f"but {array.shape[0]} labels."
        )
    values = array.astype("float64")
    if values.size and not np.all(np.isfinite(values)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    one_hot = array.ndim == 2 and array.shape[1] == num_classes
    if one_hot and num_classes != 1:
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
    if array.ndim == 2 and array.shape[1] != 1:
        raise ValueError(
            f"`{name}` has shape {array.shape}: one-hot labels need one "
            f"column per class ({num_classes}); class indices have shape "
            "(N,)."
        )
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


# === Datasets ===


def _element_parts(element, name):
    """Splits a dataset element (or its spec) into a tuple of parts."""
    if isinstance(element, dict):
        raise ValueError(
            f"`{name}` yields dicts with keys {sorted(element)}; it must "
            "yield `(images, labels)` tuples. Map it, e.g. "
            "`ds.map(lambda d: (d['image'], d['label']))`."
        )
    if isinstance(element, (tuple, list)):
        return tuple(element)
    return (element,)


def _check_structure(parts, with_labels, name):
    if not with_labels:
        return
    if len(parts) == 1:
        raise ValueError(
            f"`{name}` yields images only; training and evaluation need "
            "`(images, labels)` pairs."
        )
    if len(parts) > 2:
        raise ValueError(
            f"`{name}` yields {len(parts)} elements; it must yield "
            "`(images, labels)` pairs. Keras would read a third element as "
            "sample weights, which the COMET objective does not use (e.g. "
            "masks from `keras_compattr.datasets.load(..., "
            "with_masks=True)`): drop it with "
            "`ds.map(lambda images, labels, *rest: (images, labels))`."
        )


def _check_label_spec(shape, dtype, num_classes, name):
    dtype = dtype_name(dtype)
    if not (_is_real_number_dtype(dtype) or dtype == "bool"):
        raise TypeError(
            f"The labels of `{name}` must be integer class indices or "
            f"one-hot rows. Received dtype {dtype}."
        )
    if shape is None:
        return
    if len(shape) not in (1, 2):
        raise ValueError(
            f"The labels of `{name}` must have shape (N,) or "
            f"(N, {num_classes}). Received shape {tuple(shape)}."
        )
    if len(shape) == 2 and shape[1] not in (None, 1, num_classes):
        raise ValueError(
            f"The labels of `{name}` have shape {tuple(shape)}: one-hot "
            f"labels need one column per class ({num_classes})."
        )


def _spec_shape(spec):
    shape = getattr(spec, "shape", None)
    if shape is None or getattr(shape, "rank", 0) is None:
        return None
    return tuple(shape)


def validate_dataset_spec(dataset, image_shape, num_classes, with_labels):
    """Checks a `tf.data.Dataset` from its `element_spec` (no data read).

    Args:
        dataset: a `tf.data.Dataset` of batches.
        image_shape: `(H, W, C)`.
        num_classes: int.
        with_labels: whether elements must be `(images, labels)` pairs.
    """
    name = "the dataset"
    parts = _element_parts(dataset.element_spec, name)
    _check_structure(parts, with_labels, name)
    image_spec = parts[0]
    if not hasattr(image_spec, "dtype") or isinstance(
        image_spec, (dict, tuple, list)
    ):
        raise TypeError(
            f"The images of {name} must be one tensor per batch. Received "
            f"the element spec {image_spec}."
        )
    type_name = type(image_spec).__name__
    if "Ragged" in type_name or "Sparse" in type_name:
        raise TypeError(
            f"The images of {name} are a {type_name}: resize them to one "
            "size and batch them into a dense tensor."
        )
    check_image_dtype(image_spec.dtype, "the images of the dataset")
    shape = _spec_shape(image_spec)
    if shape is not None:
        if len(shape) == 3:
            raise ValueError(
                f"The images of {name} have shape {shape}: single images, "
                "not batches. Batch the dataset with `ds.batch(batch_size)`."
            )
        check_image_shape(shape, image_shape, "the images of the dataset")
    if with_labels:
        _check_label_spec(
            _spec_shape(parts[1]), parts[1].dtype, num_classes, name
        )


def validate_batch(
    batch, image_shape, num_classes, with_labels, name, check_values=True
):
    """Checks one batch yielded by a `PyDataset` or a generator."""
    parts = _element_parts(batch, name)
    _check_structure(parts, with_labels, name)
    images, _ = validate_images(
        parts[0],
        image_shape,
        f"the images of {name}",
        check_values=check_values,
    )
    if with_labels:
        count = _as_array(images, "images").shape[0]
        if check_values:
            validate_labels(
                parts[1], num_classes, count, f"the labels of {name}"
            )
        else:
            labels = _as_array(parts[1], "labels")
            _check_label_spec(labels.shape, labels.dtype, num_classes, name)


def peek(generator):
    """Returns `(first_item, generator)` without losing the first item.

    Returns `(None, generator)` for an empty generator.
    """
    try:
        first = next(generator)
    except StopIteration:
        return None, iter(())

    def chained():
        yield first
        yield from generator

    return first, chained()


def _checked_generator(generator, image_shape, num_classes, with_labels):
    """Checks the first batch fully now, later batches' shapes lazily."""
    name = "the generator"
    first, generator = peek(generator)
    if first is None:
        raise ValueError(f"`{name}` yields no batch.")
    validate_batch(first, image_shape, num_classes, with_labels, name)

    def checked():
        for index, batch in enumerate(generator):
            if index:
                validate_batch(
                    batch,
                    image_shape,
                    num_classes,
                    with_labels,
                    name,
                    check_values=False,
                )
            yield batch

    return checked()


def is_dataset(data):
    return hasattr(data, "element_spec")


def validate_inputs(
    x,
    y,
    image_shape,
    num_classes,
    with_labels,
    allow_single_image=False,
    name="x",
    label_name="y",
):
    """Checks what is passed to `fit`, `evaluate`, `predict` or `explain`.

    Args:
        x: images (array or tensor), a `tf.data.Dataset`, a
            `keras.utils.PyDataset` or a Python generator.
        y: labels for array `x`; must be `None` otherwise.
        image_shape: `(H, W, C)`.
        num_classes: int.
        with_labels: whether labels are required.
        allow_single_image: whether one rank-3 image is taken as a batch of
            one (`predict`, `explain`).
        name: the argument name of the images, used in messages.
        label_name: the argument name of the labels, used in messages.

    Returns:
        A tuple `(x, is_single)`: `x` to pass on (a generator is wrapped so
        that its batches are checked as they are read; one image gets a
        batch axis) and whether one rank-3 image was given.
    """
    if x is None:
        raise ValueError(f"`{name}` is required: pass images.")
    if isinstance(x, dict):
        raise TypeError(
            f"`{name}` is a dict with keys {sorted(x)}; the model has one "
            "input: pass the images array itself."
        )
    streamed = (
        is_dataset(x)
        or isinstance(x, keras.utils.PyDataset)
        or isinstance(x, types.GeneratorType)
    )
    if streamed and y is not None:
        raise ValueError(
            f"`{label_name}` must be `None` when `{name}` is a dataset or "
            "generator: it yields `(images, labels)` pairs itself."
        )
    if is_dataset(x):
        validate_dataset_spec(x, image_shape, num_classes, with_labels)
        return x, False
    if isinstance(x, keras.utils.PyDataset):
        validate_batch(
            x[0], image_shape, num_classes, with_labels, "the PyDataset"
        )
        return x, False
    if isinstance(x, types.GeneratorType):
        return (
            _checked_generator(x, image_shape, num_classes, with_labels),
            False,
        )
    if not (
        hasattr(x, "shape") or isinstance(x, (list, tuple, np.ndarray))
    ) and hasattr(x, "__iter__"):
        # Another iterable (e.g. a torch DataLoader): left to Keras.
        return x, False
    x, is_single = validate_images(
        x, image_shape, name, allow_single_image=allow_single_image
    )
    if with_labels:
        if y is None:
            raise ValueError(
                f"Labels are required: pass `{label_name}` with `{name}` "
                "images (integer class indices or one-hot rows)."
            )
        validate_labels(y, num_classes, int(x.shape[0]), label_name)
    return x, is_single


# === Explainers and metrics ===


def _range_text(low, high, low_open, high_open):
    if low is not None and high is not None:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        return f"in {left}{low:g}, {high:g}{right}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return "finite"


def check_number(
    value,
    name,
    low=None,
    high=None,
    low_open=False,
    high_open=False,
    integer=False,
):
    """Checks a scalar argument of a metric or explainer.

    Args:
        value: the argument: a Python or NumPy number, or a scalar tensor.
        name: the argument name used in messages.
        low: lower bound, or `None`.
        high: upper bound, or `None`.
        low_open: whether `low` itself is excluded.
        high_open: whether `high` itself is excluded.
        integer: whether the value must be a whole number.

    Returns:
        The value as a Python `int` (with `integer`) or `float`.

    Raises:
        TypeError: not a real number (a string, `None`, a bool, an array
            of several values).
        ValueError: NaN, infinite, not whole (with `integer`), or out of
            bounds.
    """
    kind = "an int" if integer else "a number"
    wanted = f"`{name}` must be {kind} " + _range_text(
        low, high, low_open, high_open
    )
    scalar = value
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        scalar = np.asarray(value)
        scalar = scalar.item() if scalar.shape == () else value
    if isinstance(scalar, (bool, np.bool_)) or not isinstance(
        scalar, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{wanted}. Received {name}={value!r}.")
    number = float(scalar)
    bad = not np.isfinite(number) or (integer and number != round(number))
    if low is not None:
        bad = bad or number < low or (low_open and number == low)
    if high is not None:
        bad = bad or number > high or (high_open and number == high)
    if bad:
        raise ValueError(f"{wanted}. Received {name}={value!r}.")
    return int(number) if integer else number


def check_fill(fill, channels=None, name="fill"):
    """Checks a pixel value (a fill or baseline) for `[0, 1]` images.

    Args:
        fill: a number, or one number per channel, in `[0, 1]`.
        channels: int, the number of image channels; `None` skips the
            check of the number of values.
        name: the argument name used in messages.

    Returns:
        A float32 NumPy array: `(channels,)`, or the values as given when
        `channels` is `None`.

    Raises:
        TypeError: not numbers.
        ValueError: NaN or infinite values, values outside `[0, 1]`, or
            a number of values that is neither 1 nor `channels`.
    """
    values = np.asarray(fill)
    if (
        values.dtype == bool
        or not np.issubdtype(values.dtype, np.number)
        or np.iscomplexobj(values)
    ):
        raise TypeError(
            f"`{name}` must be a number or one number per channel, a pixel "
            f"value in [0, 1]. Received {name}={fill!r}."
        )
    values = values.astype("float64").reshape(-1)
    if values.size == 0:
        raise ValueError(f"`{name}` holds no value. Received {name}={fill!r}.")
    if not np.all(np.isfinite(values)):
        raise ValueError(
            f"`{name}` must be finite: a pixel value in [0, 1]. "
            f"Received {name}={fill!r}."
        )
    if values.min() < 0.0 or values.max() > 1.0:
        raise ValueError(
            f"`{name}` must be a pixel value in [0, 1], the range images "
            "are read in (integer images are divided by 255): divide a "
            f"0..255 value by 255. Received {name}={fill!r}."
        )
    if channels is not None:
        if values.size == 1:
            values = np.repeat(values, channels)
        if values.size != channels:
            raise ValueError(
                f"`{name}` must be a float or one value per channel "
                f"({channels}). Received {values.size} values."
            )
    return values.astype("float32")


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
    array = _as_array(images, name)
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
