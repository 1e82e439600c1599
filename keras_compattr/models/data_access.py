"""Reading images from the data a model is given, without consuming it.

`fit` peeks at the first examples (the detector check), `adapt` averages
the images (the fill value) and the batch-norm refresh reads them again
after training. Arrays, `tf.data` datasets, `keras.utils.PyDataset`s and
other sized iterables can be read again; generators cannot.
"""

import types

import keras
import numpy as np

from keras_compattr.utils import data_checks


def first_examples(x, y, max_images=256, max_batches=4):
    """Up to `max_images` `(images, labels)` from the start of the data.

    Args:
        x: images as an array (with labels `y`), or a dataset, a
            `PyDataset` or a generator yielding `(images, labels)`.
        y: labels for an array `x`, else `None`.
        max_images: int, images to return at most.
        max_batches: int, batches to read at most from a dataset.

    Returns:
        `(images, labels, x)`: NumPy arrays (`None` when they cannot be
        read without consuming the data) and the `x` to train on, a
        generator being re-wrapped so that its first batch is not lost.
    """
    if isinstance(x, types.GeneratorType):
        first, x = data_checks.peek(x)
        batches = [] if first is None else [first]
    elif data_checks.is_dataset(x):
        batches = list(x.take(max_batches))
    elif isinstance(x, keras.utils.PyDataset):
        count = x.num_batches
        count = max_batches if count is None else min(count, max_batches)
        batches = [x[i] for i in range(count)]
    elif hasattr(x, "shape") and y is not None:
        return np.asarray(x[:max_images]), np.asarray(y[:max_images]), x
    else:
        return None, None, x
    batches = [b for b in batches if isinstance(b, (tuple, list))]
    if not batches:
        return None, None, x
    convert = keras.ops.convert_to_numpy
    images = np.concatenate([convert(b[0]) for b in batches])
    labels = np.concatenate([convert(b[1]) for b in batches])
    return images[:max_images], labels[:max_images], x


def _images_of(data):
    """The images of `(images, labels, ...)`, or `data` itself."""
    if isinstance(data, (tuple, list)) and data and hasattr(data[0], "shape"):
        return data[0]
    return data


def _is_array(data):
    return hasattr(data, "shape") and not hasattr(data, "element_spec")


def can_read_again(data):
    """Whether `image_batches` can read `data` without consuming it."""
    data = _images_of(data)
    return (
        _is_array(data)
        or isinstance(data, keras.utils.PyDataset)
        or hasattr(data, "element_spec")
        or hasattr(data, "__len__")
    )


def image_batches(data, batch_size=None, max_images=None, steps=None):
    """NumPy image batches from arrays, datasets or `PyDataset`s.

    Args:
        data: images or `(images, labels, ...)`: arrays (one image
            `(H, W, C)` is a batch of one), a `tf.data` dataset, a
            `keras.utils.PyDataset` or another sized iterable of batches.
        batch_size: int, images per batch for arrays; `None` yields an
            array as one batch.
        max_images: int, images to yield at most; `None` for all.
        steps: int, batches to read at most from a dataset; `None` for
            all.

    Yields:
        NumPy arrays `(n, H, W, C)`, the images only.

    Raises:
        ValueError: `data` cannot be read again (see `can_read_again`).
    """
    if not can_read_again(data):
        raise ValueError(
            "The images cannot be read from a generator or iterator "
            "without consuming it. Pass an array, a `tf.data` dataset or "
            "a `keras.utils.PyDataset`."
        )
    data = _images_of(data)
    if _is_array(data):
        array = np.asarray(data)
        if array.ndim == 3:
            array = array[None]
        end = len(array) if max_images is None else min(len(array), max_images)
        step = batch_size or max(end, 1)
        for start in range(0, end, step):
            yield array[start : min(start + step, end)]
        return
    if isinstance(data, keras.utils.PyDataset):
        batches = (data[i] for i in range(len(data)))
    else:
        batches = iter(data)
    seen = 0
    for step, batch in enumerate(batches):
        if steps is not None and step >= steps:
            return
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        batch = keras.ops.convert_to_numpy(batch)
        if max_images is not None:
            batch = batch[: max_images - seen]
        yield batch
        seen += len(batch)
        if max_images is not None and seen >= max_images:
            return
