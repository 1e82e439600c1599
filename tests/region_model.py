"""A fixed-weight toy classifier whose evidence lies in a known region.

The model averages the channels, zeroes everything outside `REGION`, pools
globally and maps the result linearly to two logits. Class 0 wins when the
region is bright (mean above one half), so images whose region is 1 are
class 0 and removing the region (fill 0) turns them into class 1. Pixels
outside the region have no effect on the output at all.
"""

import keras
import numpy as np
from keras import ops

SIZE = 16
REGION = (slice(4, 10), slice(6, 12))


def region_mask(size=SIZE):
    mask = np.zeros((size, size), "float32")
    mask[REGION] = 1.0
    return mask


class RegionGate(keras.layers.Layer):
    """Multiplies a `(N, H, W, 1)` input by the fixed region mask."""

    def __init__(self, size=SIZE, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def call(self, inputs):
        mask = ops.convert_to_tensor(region_mask(self.size))
        return inputs * mask[None, :, :, None]

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def build_region_model(softmax=False, size=SIZE):
    area = float(region_mask(size).mean())
    scale = 20.0 / area
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(
        1,
        1,
        use_bias=False,
        kernel_initializer=keras.initializers.Constant(1.0 / 3.0),
        trainable=False,
        name="channel_mean",
    )(inputs)
    x = RegionGate(size, name="region_gate")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(2, trainable=False, name="logits")(x)
    model = keras.Model(inputs, outputs, name="region_model")
    # Logit 0 is 20 * (region mean - 0.5); logit 1 is its negative.
    model.get_layer("logits").set_weights(
        [
            np.array([[scale, -scale]], "float32"),
            np.array([-10.0, 10.0], "float32"),
        ]
    )
    if softmax:
        outputs = keras.layers.Softmax()(model.output)
        model = keras.Model(inputs, outputs, name="region_model_softmax")
    return model


def region_images(num_images=6, size=SIZE, seed=0):
    """Class-0 images: random background, region set to 1."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 1.0, (num_images, size, size, 3))
    images[:, REGION[0], REGION[1]] = 1.0
    gt = np.repeat(region_mask(size)[None], num_images, axis=0)
    return images.astype("float32"), np.zeros(num_images, "int32"), gt
