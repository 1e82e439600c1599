"""Grad-CAM: class activation maps weighted by pooled gradients."""

import keras
import numpy as np
from keras import ops

from keras_compattr.explainers import _model_split
from keras_compattr.explainers._base import Explainer
from keras_compattr.explainers._base import scale_by_max
from keras_compattr.explainers._gradients import class_score_gradients


def _single_input(model):
    inputs = getattr(model, "inputs", None)
    if not inputs or len(inputs) != 1:
        raise ValueError(
            "GradCAM needs a functional or Sequential model with one "
            "defined input (e.g. built from `keras.Input`), so that an "
            "inner layer's output can be reached. Received "
            f"{type(model).__name__} with inputs={inputs!r}."
        )
    return inputs[0]


def _four_dimensional(layer):
    try:
        return len(layer.output.shape) == 4
    except (AttributeError, ValueError):  # Unbuilt or multi-output layer.
        return False


def _find_layer(model, layer):
    if isinstance(layer, keras.layers.Layer):
        return layer
    if isinstance(layer, str):
        if any(x.name == layer for x in model.layers):
            return model.get_layer(layer)
        nested = _model_split.find_nested_layer(model, layer)
        # `get_layer` raises its own error for a name found nowhere.
        return nested if nested is not None else model.get_layer(layer)
    if layer is not None:
        raise TypeError(
            "`layer` must be None, a layer name or a layer. "
            f"Received {type(layer).__name__}."
        )
    # Nested backbones are searched too: their last feature map is
    # usually the one wanted.
    candidates = [
        x for x in _model_split.inner_layers(model) if _four_dimensional(x)
    ]
    if not candidates:
        raise ValueError(
            f"Model {model.name!r} has no layer with a 4-D output; pass "
            "`layer` explicitly."
        )
    return candidates[-1]


def _with_preprocessing(model):
    """A KerasHub or KerasCV task behind its preprocessing, as a detector."""
    # Imported here: `keras_compattr.models` is heavier and imports more.
    from keras_compattr.models import as_detector
    from keras_compattr.models import recipes

    source = recipes.network_source(model)
    if recipes.is_task(model, source):
        return as_detector(model)
    return model


class GradCAM(Explainer):
    """Grad-CAM maps for any functional Keras image classifier.

    For the feature map `A` (`h x w x F`) of `layer`, each channel is
    weighted by the spatial mean of the gradient of the class score with
    respect to it; the map is `ReLU(sum_f w_f A_f)`, resized bilinearly to
    the image size and divided by its maximum, so maps lie in `[0, 1]`
    (an all-zero map stays 0).

    The class score is the model output at the label as the model outputs
    it: a logit, or a probability for a model that ends with a softmax
    (whose gradients can vanish when it is confident; prefer logits).

    The model is split at `layer` into a feature model and a head; the
    head must depend on the input only through `layer`'s output, which
    holds for the usual last convolutional stage before global pooling.

    A backbone held as a nested functional or Sequential model (a KerasHub
    `ImageClassifier`'s `Backbone`, a `keras.applications` model called
    like a layer) is opened: `layer=None` takes its last feature map, and
    `layer` may name a layer inside it (or the backbone, for its output).
    The classifier's graph is then called again with the backbone split
    in two, sharing its weights; every path from the input to the output
    must go through the backbone (the layers after it form a chain). A
    KerasHub or KerasCV task is wrapped with its image converter first,
    as `keras_compattr.models.as_detector` does, so `explain` takes
    images in `[0, 1]` like every explainer.

    Args:
        model: a functional or Sequential Keras classifier with one image
            input, mapping images to `(N, K)` logits or probabilities,
            or a KerasHub or KerasCV `ImageClassifier`.
        layer: a layer or layer name whose 4-D output is used, in the
            model or in a model nested in it; `None` takes the last layer
            with a 4-D output, nested models included.

    Example:

    >>> import keras, numpy as np
    >>> from keras_compattr.explainers import GradCAM
    >>> inputs = keras.Input((16, 16, 3))
    >>> x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    >>> x = keras.layers.GlobalAveragePooling2D()(x)
    >>> model = keras.Model(inputs, keras.layers.Dense(2)(x))
    >>> images = np.random.rand(2, 16, 16, 3).astype("float32")
    >>> GradCAM(model).explain(images).shape
    (2, 16, 16)

    A classifier calling a nested backbone:

    >>> backbone = keras.Sequential(
    ...     [keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, name="conv")],
    ...     name="backbone",
    ... )
    >>> x = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
    >>> classifier = keras.Model(inputs, keras.layers.Dense(2)(x))
    >>> grad_cam = GradCAM(classifier)
    >>> grad_cam.layer.name
    'conv'
    >>> grad_cam.explain(images).shape
    (2, 16, 16)

    Reference:
        [Selvaraju et al., 2017](https://arxiv.org/abs/1610.02391).
    """

    def __init__(self, model, layer=None):
        super().__init__(model)
        self.model = _with_preprocessing(self.model)
        _single_input(self.model)
        self.layer = _find_layer(self.model, layer)
        if not _four_dimensional(self.layer):
            raise ValueError(
                f"Layer {self.layer.name!r} must have one 4-D output "
                "(N, h, w, F)."
            )
        self.features, self.head = _model_split.split(self.model, self.layer)

    def _start(self, images):
        return class_score_gradients(self.head)

    def _explain_batch(self, images, labels, gradients):
        activations = ops.convert_to_numpy(
            self.features(images, training=False)
        ).astype("float32")
        _, grads = gradients(activations, labels)
        weights = grads.mean(axis=(1, 2), keepdims=True)
        cam = np.maximum((weights * activations).sum(axis=-1), 0.0)
        cam = ops.convert_to_numpy(
            ops.image.resize(
                cam[..., None],
                images.shape[1:3],
                interpolation="bilinear",
            )
        )[..., 0]
        return scale_by_max(np.maximum(cam, 0.0))
