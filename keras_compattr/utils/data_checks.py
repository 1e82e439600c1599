"""Checks of what `fit`, `evaluate`, `predict` and `explain` receive.

Arrays are checked fully; a `tf.data.Dataset` from its `element_spec`
only; a `keras.utils.PyDataset` from its first batch; a generator's first
batch at once (`peek` keeps it) and its later batches lazily.
"""

import types

import keras
import numpy as np

from keras_compattr.utils.arrays import as_array
from keras_compattr.utils.image_checks import check_image_dtype
from keras_compattr.utils.image_checks import check_image_shape
from keras_compattr.utils.image_checks import validate_images
from keras_compattr.utils.labels import check_label_spec
from keras_compattr.utils.labels import validate_labels


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
    weights = len(parts) == 3 and len(_spec_shape(parts[2]) or ()) == 1
    if len(parts) > 2 and not weights:
        raise ValueError(
            f"`{name}` yields {len(parts)} elements; it must yield "
            "`(images, labels)` pairs or `(images, labels, sample_weight)` "
            "with `(N,)` weights. Keras would read this third element as "
            "sample weights (e.g. masks from `keras_compattr.datasets."
            "load(..., with_masks=True)`): drop it with "
            "`ds.map(lambda images, labels, *rest: (images, labels))`."
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
        check_label_spec(
            _spec_shape(parts[1]),
            parts[1].dtype,
            num_classes,
            f"the labels of {name}",
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
        label_name = f"the labels of {name}"
        count = as_array(images, "images").shape[0]
        if check_values:
            validate_labels(parts[1], num_classes, count, label_name)
        else:
            labels = as_array(parts[1], label_name)
            check_label_spec(
                labels.shape, labels.dtype, num_classes, label_name
            )


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
