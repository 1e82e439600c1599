"""Grad-CAM: class activation maps weighted by pooled gradients."""

import keras
import numpy as np
from keras import ops

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
        return model.get_layer(layer)
    if layer is not None:
        raise TypeError(
            "`layer` must be None, a layer name or a layer. "
            f"Received {type(layer).__name__}."
        )
    candidates = [x for x in model.layers if _four_dimensional(x)]
    if not candidates:
        raise ValueError(
            f"Model {model.name!r} has no layer with a 4-D output; pass "
            "`layer` explicitly."
        )
    return candidates[-1]


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

    Args:
        model: a functional or Sequential Keras classifier with one image
            input, mapping images to `(N, K)` logits or probabilities.
        layer: a layer or layer name whose 4-D output is used; `None`
            takes the last layer with a 4-D output.

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

    Reference:
        [Selvaraju et al., 2017](https://arxiv.org/abs/1610.02391).
    """

    def __init__(self, model, layer=None):
        super().__init__(model)
        model_input = _single_input(model)
        self.layer = _find_layer(model, layer)
        if not _four_dimensional(self.layer):
            raise ValueError(
                f"Layer {self.layer.name!r} must have one 4-D output "
                "(N, h, w, F)."
            )
        self.features = keras.Model(
            model_input, self.layer.output, name=f"{model.name}_features"
        )
        try:
            self.head = keras.Model(
                self.layer.output, model.output, name=f"{model.name}_head"
            )
        except ValueError as error:
            raise ValueError(
                f"The model cannot be split at layer {self.layer.name!r}: "
                "its output also depends on earlier layers (e.g. a skip "
                "connection goes around it). Pick a layer every path to "
                "the output goes through, such as the last stage output."
            ) from error

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
