"""The fill value `q`: the per-channel mean of the training images."""

import numpy as np

from keras_compattr import distributed
from keras_compattr.models.data_access import can_read_again
from keras_compattr.models.data_access import image_batches
from keras_compattr.utils.images import to_unit_range_numpy


def channel_means(data, channels, steps=None, max_images=10000):
    """The per-channel mean of images in `[0, 1]`, over all processes.

    The implementation of `ComprehensiveAttributionModel.adapt`.

    Args:
        data: images as an array `(N, H, W, C)`, or a `tf.data.Dataset`
            or `keras.utils.PyDataset` yielding images or
            `(images, labels, ...)` tuples.
        channels: int, the expected `C`.
        steps: int, number of batches to read from a dataset. Defaults to
            reading until `max_images` images are seen.
        max_images: int, cap on the number of images read from a dataset
            (an array is read whole).

    Returns:
        A float32 NumPy array `(C,)`.

    Raises:
        ValueError: a generator (it cannot be read without consuming
            it), images of another channel count, no images, or NaN or
            infinite pixels.
    """
    if not can_read_again(data):
        raise ValueError(
            "The fill value cannot be computed from a generator or iterator "
            "without consuming it. Pass `fill_value=` to the model, or call "
            "`model.adapt(images_or_dataset)` before `fit`."
        )
    total = np.zeros(channels, "float64")
    count = 0
    for batch in image_batches(data, steps=steps):
        batch = to_unit_range_numpy(batch)
        if batch.ndim != 4 or batch.shape[-1] != channels:
            raise ValueError(
                f"Expected images of shape (N, H, W, {channels}). Received "
                f"a batch of shape {batch.shape}."
            )
        total += batch.sum(axis=(0, 1, 2), dtype="float64")
        count += batch.shape[0] * batch.shape[1] * batch.shape[2]
        if count >= max_images * batch.shape[1] * batch.shape[2]:
            break
    if count == 0:
        raise ValueError("`adapt` received no images.")
    # Under a multi-process run every process reads its own share of the
    # data: all of them take the mean of the global data.
    mean = distributed.mean_over_processes(total / count, count)
    mean = mean.astype("float32")
    if not np.all(np.isfinite(mean)):
        raise ValueError(
            "`adapt` found NaN or infinite pixels: the fill value would be "
            "NaN. Fix or drop those images, or pass `fill_value=`."
        )
    return mean
