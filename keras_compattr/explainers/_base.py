"""Shared input handling of the post-hoc explainers."""

import keras
import numpy as np

from keras_compattr.utils.classifiers import check_batch_size
from keras_compattr.utils.classifiers import check_images
from keras_compattr.utils.classifiers import class_labels
from keras_compattr.utils.classifiers import input_shape


class Explainer:
    """Base class: batching, labels and output format of the explainers.

    Subclasses implement `_explain_batch(images, labels, context)`, where
    `context` is what `_start(images)` returned (built once per `explain`
    call, e.g. a jitted gradient function).

    Args:
        model: a Keras classifier mapping channels-last images to `(N, K)`
            logits or probabilities.
    """

    def __init__(self, model):
        if not isinstance(model, keras.layers.Layer):
            raise TypeError(
                "`model` must be a Keras model (or layer). "
                f"Received {type(model).__name__}."
            )
        self.model = model

    def explain(self, images, labels=None, batch_size=32):
        """Attribution maps of `images` for `labels`.

        Args:
            images: `(N, H, W, C)` images, float in `[0, 1]` or integer in
                `0..255` (divided by 255).
            labels: `(N,)` integer or `(N, K)` one-hot classes to explain;
                `None` explains the model's predicted class.
            batch_size: int, images processed at a time.

        Returns:
            A float32 NumPy array `(N, H, W)`.

        Raises:
            ValueError: images of the wrong shape, with NaN or infinite
                pixels, or float pixels far outside `[0, 1]` (such as
                0..255 values: divide them by 255); labels outside
                `[0, K)` for the model's `K` classes, or not one per
                image; a `batch_size` that is not a positive int.
            TypeError: images or labels that are not real numbers.
        """
        images, labels, batch_size = self._inputs(images, labels, batch_size)
        context = self._start(images)
        maps = [
            self._explain_batch(
                images[start : start + batch_size],
                labels[start : start + batch_size],
                context,
            )
            for start in range(0, len(images), batch_size)
        ]
        return np.concatenate(maps, axis=0).astype("float32")

    def _inputs(self, images, labels, batch_size):
        images = check_images(images, image_shape=input_shape(self.model))
        batch_size = check_batch_size(batch_size)
        labels = class_labels(self.model, images, labels, batch_size)
        return images, labels, batch_size

    def _start(self, images):
        return None

    def _explain_batch(self, images, labels, context):
        raise NotImplementedError


def scale_by_max(maps):
    """Divides each non-negative map by its maximum (zero maps stay 0)."""
    peak = maps.max(axis=(1, 2), keepdims=True)
    return np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)
