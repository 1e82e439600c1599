"""The mask head: a selector's features to mask scores, and the maps that
`explain` returns from those scores."""

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


def ranked_maps(logits):
    """Maps in `[0, 1]` that rank pixels by mask score, without saturating.

    The soft mask `sigmoid(z)` is what the predictor sees, but in float32
    it is 1.0 for every score above about 17 and within 0.01 of 0 or 1 for
    most pixels, so metrics that bin scores (PxAP on a grid of 0.01) or
    break ties (deletion curves) lose the order the selector learned. This
    map keeps it: per image, scores `z >= 0` go linearly from 0.5 (the
    decision boundary, `z = 0`) to 1.0 (the highest score), scores
    `z < 0` from 0.5 down to 0.0 (the lowest). It orders pixels exactly
    as the mask does, and is above 0.5 exactly where the mask is.

    Args:
        logits: `(N, H, W)` or `(N, H, W, 1)` mask scores (pre-sigmoid).

    Returns:
        Float32 maps of the same shape, in `[0, 1]`.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.layers.mask_head import ranked_maps
    >>> z = np.array([[[-4.0, -1.0, 0.0, 20.0, 40.0]]], "float32")
    >>> np.asarray(ranked_maps(z)).round(3).tolist()
    [[[0.0, 0.375, 0.5, 0.75, 1.0]]]
    """
    z = ops.cast(logits, "float32")
    axes = tuple(range(1, len(z.shape)))
    high = ops.maximum(ops.max(z, axis=axes, keepdims=True), 1e-6)
    low = ops.minimum(ops.min(z, axis=axes, keepdims=True), -1e-6)
    above = 0.5 + 0.5 * z / high
    below = 0.5 - 0.5 * z / low
    return ops.where(z >= 0.0, above, below)


# What `explain(output=...)` returns per pixel (see `maps_from_logits`).
MAP_OUTPUTS = ("mask", "logits", "ranked", "binary")


def check_map_output(output):
    """Refuses an `output` that is not one of `MAP_OUTPUTS`."""
    if output not in MAP_OUTPUTS:
        raise ValueError(
            "`output` must be 'mask', 'logits', 'ranked' or 'binary'. "
            f"Received output={output!r}."
        )


def maps_from_logits(logits, output):
    """The maps `explain(output=output)` returns, from mask scores.

    `"mask"`: `sigmoid(logits)`; `"logits"`: the scores; `"ranked"`:
    `ranked_maps(logits)`; `"binary"`: 1.0 where `logits >= 0`, else 0.0.
    """
    check_map_output(output)
    logits = ops.convert_to_tensor(logits, "float32")
    if output == "mask":
        return ops.sigmoid(logits)
    if output == "ranked":
        return ranked_maps(logits)
    if output == "binary":
        return ops.cast(ops.greater_equal(logits, 0.0), "float32")
    return logits
