"""The fill `q` of removed pixels: its state, `adapt`, and the composition.

COMET removes a pixel by setting it to `q`: the masked-in image is
`m * x + (1 - m) * q`, the masked-out image `(1 - m) * x + m * q`. By
default `q` is the mean colour of the training images (the reference
normalises images and multiplies by the mask, so removed pixels become
the mean), one flat value.

A flat fill is not neutral on every data set. Where images have noisy
backgrounds (sensor noise, film grain, the synthetic data of the
benchmarks), a flat region is something the networks never saw: the
silhouettes benchmark's classifier gives its class on 19-36% of images
that keep all of the evidence on the mean colour, and on 88-98% when the
mean colour carries noise of the images' own level (docs/learned-mask.md).
A selector trained against such a classifier keeps background in its mask
to give the texture back. `fill_noise` adds Gaussian noise to `q`: a new
draw at each training step (from the model's `fill_seed`), a fixed draw in
inference so that `evaluate` and `predict` are deterministic. The noise
carries no evidence: it is drawn independently of the image and label.

`FillState` is a mixin of `ComprehensiveAttributionModel`: its weights are
the model's own (`fill_value`, `fill_adapted`, and for a noisy fill
`fill_noise`), made in the order older files hold them.
"""

import keras
import numpy as np
from keras import ops

from keras_compattr.layers.random_cell_mask import fill_pixels
from keras_compattr.models import data_statistics
from keras_compattr.utils.argument_checks import check_fill
from keras_compattr.utils.argument_checks import check_fill_noise

# The seed of the fill's noise in inference (`evaluate`, `predict`): the
# same draw at every call, so that inference is deterministic.
INFERENCE_NOISE_SEED = 1337


def noise_setting(fill_noise):
    """`fill_noise` as saved: `"auto"`, a float or a list of floats.

    Raises:
        TypeError, ValueError: see `check_fill_noise`.
    """
    if isinstance(fill_noise, str) and fill_noise == "auto":
        return "auto"
    values = check_fill_noise(fill_noise).reshape(-1)
    return float(values[0]) if values.size == 1 else values.tolist()


class FillState:
    """The fill value `q`, its pixel noise, and `apply_masks`."""

    def build_fill(self, channels, fill_value, fill_noise):
        """Makes the fill's weights; called once by the model's `__init__`.

        Args:
            channels: int, the images' channel count.
            fill_value: `None` (the mean colour, set by `adapt`), a float
                or a per-channel sequence in `[0, 1]`.
            fill_noise: a standard deviation (float or per channel) in
                `[0, 1]`, or `"auto"` (measured by `adapt`).
        """
        self.fill_value = fill_value
        self.fill_noise = noise_setting(fill_noise)
        auto = self.fill_noise == "auto"
        initial_fill = (
            0.5
            if fill_value is None
            else check_fill(fill_value, channels, name="fill_value")
        )
        self.fill = self.add_weight(
            shape=(channels,),
            initializer=keras.initializers.Constant(initial_fill),
            trainable=False,
            name="fill_value",
        )
        # Set by `adapt`, unless neither the fill nor its noise needs it.
        self.fill_adapted = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(
                float(fill_value is not None and not auto)
            ),
            trainable=False,
            name="fill_adapted",
        )
        # Made only for a noisy fill, so that older files still load.
        self.fill_noise_level = self.fill_seed = None
        if auto or np.any(check_fill_noise(self.fill_noise)):
            self.fill_noise_level = self.add_weight(
                shape=(channels,),
                initializer=keras.initializers.Constant(
                    0.0 if auto else check_fill_noise(fill_noise, channels)
                ),
                trainable=False,
                name="fill_noise",
            )
            self.fill_seed = keras.random.SeedGenerator(name="fill_seed")

    @property
    def fill_is_set(self):
        """Whether the fill (and its noise) is given or set by `adapt`."""
        return bool(ops.convert_to_numpy(self.fill_adapted) > 0.5)

    def fill_noise_values(self):
        """The noise's standard deviation per channel, a NumPy array."""
        if self.fill_noise_level is None:
            return np.zeros(self.image_shape[-1], "float32")
        return ops.convert_to_numpy(self.fill_noise_level)

    def apply_masks(self, images, masks, training=False):
        """Returns `(masked_in, masked_out)` images for `masks`.

        `masked_in = m * x + (1 - m) * q` keeps what the mask selects;
        `masked_out = (1 - m) * x + m * q` keeps what it leaves out. With
        `fill_noise`, `q` is the fill value plus Gaussian noise, drawn anew
        at each call in training and the same at each call in inference.
        """
        fill = fill_pixels(
            self.fill,
            self.fill_noise_level,
            ops.shape(images),
            self.fill_seed if training else INFERENCE_NOISE_SEED,
        )
        difference = ops.multiply(masks, ops.subtract(images, fill))
        return ops.add(fill, difference), ops.subtract(images, difference)

    def adapt(self, data, batch_size=None, steps=None, max_images=10000):
        """Sets the fill value to the per-channel mean of `data`.

        With `fill_noise="auto"`, also measures the pixel noise of `data`
        (`data_statistics.pixel_noise`); a `fill_value` given to the model
        is kept.

        Args:
            data: images as an array `(N, H, W, C)`, or a `tf.data.Dataset`
                or `keras.utils.PyDataset` yielding images or
                `(images, labels, ...)` tuples.
            batch_size: unused for arrays; kept for symmetry with `fit`.
            steps: int, number of batches to read from a dataset.
                Defaults to reading until `max_images` images are seen.
            max_images: int, cap on the number of images read.

        Returns:
            The fill value as a NumPy array `(C,)`.
        """
        del batch_size
        channels = self.image_shape[-1]
        if self.fill_value is None:
            self.fill.assign(
                data_statistics.channel_means(
                    data, channels, steps=steps, max_images=max_images
                )
            )
        if self.fill_noise == "auto":
            self.fill_noise_level.assign(
                data_statistics.pixel_noise(
                    data, channels, steps=steps, max_images=max_images
                )
            )
        self.fill_adapted.assign(1.0)
        return ops.convert_to_numpy(self.fill)
