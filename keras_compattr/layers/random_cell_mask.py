"""`RandomCellMask`: random partial evidence, for training a judge."""

import keras
from keras import layers
from keras import ops

from keras_compattr.api_export import keras_compattr_export
from keras_compattr.utils.argument_checks import check_fill
from keras_compattr.utils.argument_checks import check_fill_noise


def fill_pixels(fill_value, fill_noise, shape, seed, dtype="float32"):
    """What removed pixels take: the fill value, plus noise when asked.

    One definition for the judge's holes (`RandomCellMask`) and the
    model's masked-in and masked-out images (`apply_masks`), so both
    remove pixels alike.

    Args:
        fill_value: per-channel values (a sequence or a tensor).
        fill_noise: `None` (a flat fill), or the per-channel standard
            deviation of the Gaussian noise added to each pixel.
        shape: the shape of the images, `(N, H, W, C)`.
        seed: the seed of the noise (a `keras.random.SeedGenerator` or an
            int).
        dtype: the images' dtype.

    Returns:
        A tensor that broadcasts against the images: `(1, 1, 1, C)` for a
        flat fill, `shape` with noise.
    """
    fill = ops.reshape(ops.cast(fill_value, dtype), (1, 1, 1, -1))
    if fill_noise is None:
        return fill
    level = ops.reshape(ops.cast(fill_noise, dtype), (1, 1, 1, -1))
    return fill + level * keras.random.normal(shape, dtype=dtype, seed=seed)


@keras_compattr_export("keras_compattr.layers.RandomCellMask")
class RandomCellMask(layers.Layer):
    """Removes a random grid of cells from each image (training only).

    Each image gets its own grid of `n x n` cells (`n` drawn uniformly in
    `[min_cells, max_cells]`, the grid shifted by a random offset), and its
    own removal probability, drawn uniformly in `[0, 1]`: every share of
    the image, from none to all of it, is removed equally often. Removed
    cells take the fill value, as COMET removes pixels. A share
    `whole_fraction` of the images is left whole, and in a share
    `fade_fraction` the removed cells are only faded towards the fill
    value (by a strength drawn uniformly in `[0, 1]`), as a soft mask
    fades pixels. In a share `blob_fraction` of the images the holes are
    blobs with curved outlines instead of square cells. The masks are
    drawn independently of the images and labels, so their shape carries
    no class information. With `fill_noise`, removed pixels take the fill
    value plus Gaussian pixel noise of that standard deviation, as
    `ComprehensiveAttributionModel(fill_noise=...)` removes them.

    A classifier trained behind this layer still recognises a class from
    part of its evidence: the judge of the masked-out image in
    `keras_compattr.models.DetectorHardening`, and the recipe of EVAL-X
    (Jethani et al., 2021), whose masks are random superpixels. In
    inference mode the layer returns its input unchanged.

    Args:
        fill_value: float or per-channel sequence in `[0, 1]`, the value of
            removed pixels (COMET's fill value `q`, by default the mean
            colour of the training images).
        fill_noise: float >= 0 or per-channel sequence, the standard
            deviation of the Gaussian noise added to the fill value of each
            removed pixel (0, the default: a flat fill).
        min_cells: int >= 1, the coarsest grid, in cells per side.
        max_cells: int >= `min_cells`, the finest grid.
        whole_fraction: float in `[0, 1]`, share of images left whole.
        fade_fraction: float in `[0, 1]`, share of images whose removed
            cells are faded rather than removed.
        blob_fraction: float in `[0, 1]`, share of images whose holes are
            blobs with curved outlines (the cell noise interpolated
            between cell centres) rather than unions of square cells.
        seed: int or `None`, seed of the layer's random generator.
        **kwargs: base layer keyword arguments such as `name`.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.layers import RandomCellMask
    >>> layer = RandomCellMask(fill_value=0.5, seed=0)
    >>> images = np.ones((8, 32, 32, 3), "float32")
    >>> masked = np.asarray(layer(images, training=True))
    >>> bool(np.all((masked >= 0.5) & (masked <= 1.0)))
    True
    >>> bool(np.any(masked < 1.0))
    True
    >>> bool(np.all(np.asarray(layer(images)) == images))
    True

    Reference:
        [Jethani et al., 2021](https://arxiv.org/abs/2103.01890)
    """

    def __init__(
        self,
        fill_value=0.5,
        min_cells=2,
        max_cells=16,
        whole_fraction=0.25,
        fade_fraction=0.25,
        blob_fraction=0.0,
        seed=None,
        fill_noise=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 1 <= int(min_cells) <= int(max_cells):
            raise ValueError(
                "`min_cells` and `max_cells` must satisfy "
                f"1 <= min_cells <= max_cells. Received min_cells={min_cells}"
                f", max_cells={max_cells}."
            )
        for name, value in (
            ("whole_fraction", whole_fraction),
            ("fade_fraction", fade_fraction),
            ("blob_fraction", blob_fraction),
        ):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(
                    f"`{name}` must be in [0, 1]. Received {name}={value!r}."
                )
        values = check_fill(fill_value, name="fill_value").reshape(-1)
        self.fill_value = [float(v) for v in values]
        noise = check_fill_noise(fill_noise).reshape(-1)
        self.fill_noise = [float(v) for v in noise]
        self.min_cells = int(min_cells)
        self.max_cells = int(max_cells)
        self.whole_fraction = float(whole_fraction)
        self.fade_fraction = float(fade_fraction)
        self.blob_fraction = float(blob_fraction)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = False

    def build(self, input_shape):
        # One value, or one per channel.
        check_fill(self.fill_value, input_shape[-1], name="fill_value")
        check_fill_noise(self.fill_noise, input_shape[-1])

    def removal(self, batch_size, height, width):
        """A random removal map `(batch_size, height, width, 1)` in [0, 1].

        1 where a pixel is removed, a strength in `(0, 1)` where it is
        faded, 0 where it is kept.
        """
        side = self.max_cells + 1  # a shifted grid shows one more cell
        uniform = lambda shape: keras.random.uniform(  # noqa: E731
            shape, seed=self.seed_generator
        )
        per_image = (batch_size, 1, 1)
        cells = ops.floor(
            self.min_cells
            + uniform(per_image) * (self.max_cells - self.min_cells + 1)
        )
        rows = (ops.arange(height, dtype="float32") + 0.5) / height
        columns = (ops.arange(width, dtype="float32") + 0.5) / width
        # Continuous cell coordinates of each pixel, the grid shifted by a
        # random offset in [0, 1) cell.
        row = rows[None, :, None] * cells + uniform(per_image)
        column = columns[None, None, :] * cells + uniform(per_image)
        noise = uniform((batch_size, side * side))

        def lookup(r, c):
            r = ops.clip(r, 0.0, side - 1.0)
            c = ops.clip(c, 0.0, side - 1.0)
            cell = ops.cast(r * side + c, "int32")
            values = ops.take_along_axis(
                noise, ops.reshape(cell, (batch_size, height * width)), axis=1
            )
            return ops.reshape(values, (batch_size, height, width))

        # Cells: the noise is constant over each cell (square holes).
        cell_noise = lookup(ops.floor(row), ops.floor(column))
        # Blobs: the noise is interpolated between cell centres, so the
        # holes have curved outlines of every shape.
        r0, c0 = ops.floor(row - 0.5), ops.floor(column - 0.5)
        fr, fc = row - 0.5 - r0, column - 0.5 - c0
        blob_noise = (
            (1 - fr) * (1 - fc) * lookup(r0, c0)
            + (1 - fr) * fc * lookup(r0, c0 + 1)
            + fr * (1 - fc) * lookup(r0 + 1, c0)
            + fr * fc * lookup(r0 + 1, c0 + 1)
        )
        blobs = ops.cast(uniform(per_image) < self.blob_fraction, "float32")
        pixel_noise = blobs * blob_noise + (1.0 - blobs) * cell_noise
        removed = ops.cast(pixel_noise < uniform(per_image), "float32")
        whole = ops.cast(uniform(per_image) < self.whole_fraction, "float32")
        faded = ops.cast(uniform(per_image) < self.fade_fraction, "float32")
        strength = 1.0 - faded * uniform(per_image)
        return ops.expand_dims(removed * (1.0 - whole) * strength, -1)

    def call(self, images, training=None):
        if not training:
            return images
        shape = ops.shape(images)
        removal = ops.cast(
            self.removal(shape[0], shape[1], shape[2]), images.dtype
        )
        fill = fill_pixels(
            self.fill_value,
            self.fill_noise if any(self.fill_noise) else None,
            shape,
            self.seed_generator,
            images.dtype,
        )
        return images + removal * (fill - images)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "fill_value": self.fill_value,
                "min_cells": self.min_cells,
                "max_cells": self.max_cells,
                "whole_fraction": self.whole_fraction,
                "fade_fraction": self.fade_fraction,
                "blob_fraction": self.blob_fraction,
                "seed": self.seed,
                "fill_noise": self.fill_noise,
            }
        )
        return config
