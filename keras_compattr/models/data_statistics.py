"""What a model reads from its data without consuming it.

`fit` peeks at the first examples (the detector check), `adapt` averages
the images into the fill value (`channel_means`) and measures their pixel
noise for a noisy fill (`pixel_noise`), and the batch-norm
refresh re-estimates the networks' statistics after training (`refresh`,
`refresh_classifier`). Arrays, `tf.data` datasets,
`keras.utils.PyDataset`s and other sized iterables can be read again;
generators cannot.

Batch-norm layers keep moving averages of their inputs' mean and variance
for inference. In COMET the predictor's inputs are masked-in images whose
masks change while the selector learns, so the moving averages lag behind:
a model can score 100% in training mode and chance in inference mode after
a short run. Re-estimating the statistics with the final weights (forward
passes in training mode, no weight update) closes the gap.
"""

import types
import warnings

import keras
import numpy as np

from keras_compattr import distributed
from keras_compattr.utils import data_checks
from keras_compattr.utils.images import to_unit_range_numpy


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


# A normal variable's median absolute value is 0.6745 standard deviations.
_MAD_PER_STD = 0.6745


def pixel_noise(data, channels, steps=None, max_images=2000):
    """The standard deviation of the pixel noise of images in `[0, 1]`.

    The implementation of `fill_noise="auto"` in
    `ComprehensiveAttributionModel.adapt`: the median absolute difference
    between horizontally and vertically neighbouring pixels, divided by
    `0.6745 * sqrt(2)`, per channel. For independent pixel noise of
    standard deviation `s` on a smooth image that is `s`; the median
    ignores the few differences across edges and shapes, so an image of
    flat regions with sharp outlines measures 0. Images stored as 8-bit
    photographs, whose neighbours mostly differ by a few levels, measure
    a few hundredths at most.

    Args:
        data: images as an array `(N, H, W, C)`, or a `tf.data.Dataset`
            or `keras.utils.PyDataset` yielding images or
            `(images, labels, ...)` tuples.
        channels: int, the expected `C`.
        steps: int, number of batches to read from a dataset.
        max_images: int, cap on the number of images read.

    Returns:
        A float32 NumPy array `(C,)`, the same on every process (the mean
        of the processes' estimates).

    Raises:
        ValueError: a generator, images of another channel count, or no
            images.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.models.data_statistics import pixel_noise
    >>> rng = np.random.default_rng(0)
    >>> images = 0.5 + rng.normal(0, 0.05, (16, 32, 32, 3))
    >>> [round(float(level), 2) for level in pixel_noise(images, 3)]
    [0.05, 0.05, 0.05]
    """
    if not can_read_again(data):
        raise ValueError(
            "The pixel noise cannot be measured on a generator or iterator "
            "without consuming it. Pass `fill_noise=` as a number, or call "
            "`model.adapt(images_or_dataset)` before `fit`."
        )
    differences = []
    count = 0
    for batch in image_batches(
        data, batch_size=64, max_images=max_images, steps=steps
    ):
        batch = to_unit_range_numpy(batch).astype("float32")
        if batch.ndim != 4 or batch.shape[-1] != channels:
            raise ValueError(
                f"Expected images of shape (N, H, W, {channels}). Received "
                f"a batch of shape {batch.shape}."
            )
        for axis in (1, 2):
            step = np.abs(np.diff(batch, axis=axis)).reshape(-1, channels)
            # At most 20000 differences per batch and direction.
            differences.append(step[:: max(len(step) // 20_000, 1)])
        count += len(batch)
    if count == 0:
        raise ValueError("`adapt` received no images.")
    noise = np.median(np.concatenate(differences), axis=0)
    noise = noise / (_MAD_PER_STD * np.sqrt(2.0))
    return distributed.mean_over_processes(noise, count).astype("float32")


def batch_norm_layers(model):
    """Every `BatchNormalization` layer of `model`, nested models included.

    Args:
        model: a Keras layer or model.

    Returns:
        A list of layers, each once, in depth-first order.
    """
    found, seen = [], set()

    def visit(layer):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        for child in getattr(layer, "layers", None) or ():
            visit(child)

    visit(model)
    return found


class exact_average:
    """Context: batch-norm layers average their batch statistics exactly.

    Inside the context, the k-th call in training mode of each layer sets
    its moving statistics to the mean of the k batch statistics seen so far
    (momentum `(k - 1) / k`), so the first batch replaces the stale values.
    The layers' momenta are restored on exit.
    """

    def __init__(self, layers):
        self.layers = list(layers)
        self.count = 0

    def __enter__(self):
        self.momenta = [layer.momentum for layer in self.layers]
        return self

    def step(self):
        """Sets the momenta for the next batch."""
        self.count += 1
        for layer in self.layers:
            layer.momentum = (self.count - 1) / self.count

    def __exit__(self, *exc):
        for layer, momentum in zip(self.layers, self.momenta):
            layer.momentum = momentum
        return False


def refresh(model, images, batch_size=32, max_images=2048, warn=False):
    """Re-estimates the batch-norm statistics of a COMET model's networks.

    The implementation of `ComprehensiveAttributionModel.refresh_batch_norm`
    (`model`), which describes the other arguments and the result.
    """
    # Frozen layers are skipped: a frozen network (`LearnedMask`'s
    # classifier) keeps its statistics bit for bit.
    layers_by_network = [
        [layer for layer in batch_norm_layers(network) if layer.trainable]
        for network in (model.selector, model.predictor)
    ]
    if not any(layers_by_network):
        return 0
    used = 0
    for network, bn_layers in enumerate(layers_by_network):
        if not bn_layers:
            continue
        if not can_read_again(images):
            break
        used = 0
        with exact_average(bn_layers) as average:
            for batch in image_batches(images, batch_size, max_images):
                used += len(batch)
                batch = keras.ops.convert_to_tensor(to_unit_range_numpy(batch))
                average.step()
                if network == 0:
                    model.selector(batch, training=True)
                else:
                    masks = model.compute_masks(batch, training=False)
                    masked_in, _ = model.apply_masks(batch, masks)
                    model.predictor(masked_in, training=True)
    if used == 0 and warn:
        warnings.warn(
            "The batch-norm statistics were not refreshed after `fit`: "
            "the training data is a generator and cannot be read again. "
            "Call `model.refresh_batch_norm(images)` with training images "
            "before `evaluate` or `predict`.",
            stacklevel=4,
        )
    return used


def refresh_classifier(model, data, max_images=2048):
    """Re-estimates the batch-norm statistics of a plain classifier.

    The classifier is run in training mode (no weight update) on up to
    `max_images` images of `data`, fed as `fit` feeds them, and each
    batch-norm layer's moving statistics become the exact average of the
    batch statistics seen. A short training run leaves the moving averages
    far from the weights' statistics (momentum 0.99 needs hundreds of
    steps), so a classifier can score well in training mode and near
    chance in inference mode; this closes that gap.

    Args:
        model: a Keras classifier.
        data: images (an array), or a dataset or `PyDataset` of
            `(images, labels)` batches.
        max_images: int, images read at most.

    Returns:
        int, the number of images used (0 when the model has no batch
        norm or `data` cannot be read again).
    """
    layers = batch_norm_layers(model)
    if not layers or not can_read_again(data):
        return 0
    used = 0
    with exact_average(layers) as average:
        for batch in image_batches(data, 64, max_images):
            used += len(batch)
            average.step()
            model(keras.ops.convert_to_tensor(batch), training=True)
    return used
