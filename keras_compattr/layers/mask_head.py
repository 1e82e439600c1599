"""Layers that turn a selector's features into a mask and apply it."""

from keras import layers
from keras import ops

from keras_compattr.api_export import keras_compattr_export


@keras_compattr_export("keras_compattr.layers.MaskHead")
class MaskHead(layers.Layer):
    """Turns a selector feature map into a soft mask at the image size.

    A feature map with more than one channel first goes through a 1x1
    convolution to one logit channel. The logits are resized bilinearly to
    `(height, width)` and squashed with a sigmoid, so the mask is continuous
    in `[0, 1]` (no binarisation, as in the reference method).

    Args:
        height: int, mask height (the image height).
        width: int, mask width (the image width).
        **kwargs: base layer keyword arguments such as `name` and `dtype`.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.layers import MaskHead
    >>> head = MaskHead(32, 32)
    >>> tuple(head(np.zeros((2, 8, 8, 16), "float32")).shape)
    (2, 32, 32, 1)
    """

    def __init__(self, height, width, **kwargs):
        super().__init__(**kwargs)
        self.height = int(height)
        self.width = int(width)
        self.projection = None

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                "The selector must return a feature map of rank 4 "
                f"(N, h, w, F). Received shape {tuple(input_shape)}."
            )
        if input_shape[-1] != 1:
            self.projection = layers.Conv2D(
                1, 1, name="logit_projection", dtype=self.dtype_policy
            )
            self.projection.build(input_shape)

    def logits(self, features):
        """The pre-sigmoid mask scores `(N, height, width, 1)`, float32.

        `call` returns `sigmoid(logits(features))`. The logits rank pixels
        exactly as the mask does, without the ties a saturated sigmoid
        makes in float32.
        """
        logits = features
        if self.projection is not None:
            logits = self.projection(logits)
        logits = ops.cast(logits, "float32")
        if tuple(logits.shape[1:3]) != (self.height, self.width):
            logits = ops.image.resize(
                logits, (self.height, self.width), interpolation="bilinear"
            )
        return logits

    def call(self, features):
        return ops.sigmoid(self.logits(features))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, 1)

    def get_config(self):
        config = super().get_config()
        config.update({"height": self.height, "width": self.width})
        return config
