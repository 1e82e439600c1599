"""Integrated gradients from a constant baseline image."""

import numpy as np

from keras_compattr.explainers._base import Explainer
from keras_compattr.explainers._gradients import class_score_gradients
from keras_compattr.utils.argument_checks import check_fill
from keras_compattr.utils.argument_checks import check_number
from keras_compattr.utils.classifiers import fill_values


class IntegratedGradients(Explainer):
    """Integrated-gradients maps for any Keras image classifier.

    With `b` the constant baseline image, the attribution of pixel `i`,
    channel `c` is `(x - b)_ic * int_0^1 dS(b + a (x - b)) / dx_ic da`,
    where `S` is the class score; the integral is approximated with the
    trapezoid rule on `steps + 1` evenly spaced points. Maps are summed
    over channels and kept **signed** and unnormalised, so they satisfy
    completeness: each map sums to about `S(x) - S(b)` (exactly for a
    model linear in its input). Use `keras_compattr.metrics.normalize_maps`
    or `np.maximum(map, 0)` where a non-negative map is needed.

    The class score is the model output at the label as the model outputs
    it (a logit, or a probability for a model that ends with a softmax).

    Args:
        model: a Keras classifier mapping images to `(N, K)` logits or
            probabilities.
        steps: int, number of intervals of the path integral (`steps + 1`
            gradient evaluations per image).
        baseline: float or per-channel sequence in `[0, 1]`, the value of
            every pixel of the baseline image.

    Example:

    >>> import keras, numpy as np
    >>> from keras_compattr.explainers import IntegratedGradients
    >>> model = keras.Sequential(
    ...     [keras.Input((16, 16, 3)), keras.layers.Flatten(),
    ...      keras.layers.Dense(2)])
    >>> images = np.random.rand(2, 16, 16, 3).astype("float32")
    >>> maps = IntegratedGradients(model, steps=8).explain(images, [0, 1])
    >>> maps.shape
    (2, 16, 16)

    Reference:
        [Sundararajan et al., 2017](https://arxiv.org/abs/1703.01365).
    """

    def __init__(self, model, steps=32, baseline=0.5):
        super().__init__(model)
        self.steps = check_number(steps, "steps", low=1, integer=True)
        check_fill(baseline, name="baseline")
        self.baseline = baseline

    def _start(self, images):
        return class_score_gradients(self.model)

    def _explain_batch(self, images, labels, gradients):
        baseline = fill_values(self.baseline, images.shape[-1], "baseline")
        difference = images - baseline
        alphas = np.linspace(0.0, 1.0, self.steps + 1, dtype="float32")
        weights = np.full(self.steps + 1, 1.0 / self.steps, "float32")
        weights[[0, -1]] *= 0.5
        path_gradients = np.zeros_like(images)
        for alpha, weight in zip(alphas, weights):
            _, grads = gradients(baseline + alpha * difference, labels)
            path_gradients += weight * grads
        return (difference * path_gradients).sum(axis=-1)
