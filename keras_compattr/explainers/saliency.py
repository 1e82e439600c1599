"""Saliency: the plain input gradient of the class score."""

import numpy as np

from keras_compattr.explainers._base import Explainer
from keras_compattr.explainers._base import scale_by_max
from keras_compattr.explainers._gradients import class_score_gradients


class Saliency(Explainer):
    """Gradient saliency maps for any Keras image classifier.

    The map is the absolute gradient of the class score with respect to
    the image, maximised over channels, then divided by its maximum so
    that maps lie in `[0, 1]`. The class score is the model output at the
    label as the model outputs it (a logit, or a probability for a model
    that ends with a softmax).

    Args:
        model: a Keras classifier mapping images to `(N, K)` logits or
            probabilities.

    Example:

    >>> import keras, numpy as np
    >>> from keras_compattr.explainers import Saliency
    >>> model = keras.Sequential(
    ...     [keras.Input((16, 16, 3)), keras.layers.Flatten(),
    ...      keras.layers.Dense(2)])
    >>> images = np.random.rand(2, 16, 16, 3).astype("float32")
    >>> Saliency(model).explain(images, labels=[0, 1]).shape
    (2, 16, 16)

    Reference:
        [Simonyan et al., 2013](https://arxiv.org/abs/1312.6034).
    """

    def _start(self, images):
        return class_score_gradients(self.model)

    def _explain_batch(self, images, labels, gradients):
        _, grads = gradients(images, labels)
        return scale_by_max(np.abs(grads).max(axis=-1))
