"""Mask resizing and the paper's training augmentation, on `tf.data`.

TensorFlow is imported inside the functions, when a data set is loaded.
"""

import math


def resize_mask(mask, size):
    """Resizes a boolean `(H, W)` mask to `size` (nearest), as uint8."""
    import tensorflow as tf

    mask = tf.cast(mask, tf.uint8)[..., None]
    mask = tf.image.resize(mask, size, method="nearest")
    return tf.cast(mask[..., 0], tf.uint8)


def augment_dataset(ds, image_size, with_masks, seed):
    """The paper's augmentation, with fresh parameters every epoch."""
    import tensorflow as tf

    seeds = tf.data.Dataset.random(
        seed=seed, rerandomize_each_iteration=True
    ).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds))

    def apply(elements, pair):
        image, label = elements[:2]
        mask = elements[2] if with_masks else None
        image, mask = _augment_example(image, mask, pair, image_size)
        return (image, label, mask) if with_masks else (image, label)

    return ds.map(apply, num_parallel_calls=tf.data.AUTOTUNE)


def _augment_example(image, mask, seed, image_size):
    """Pads and random-crops, flips and rotates one image and its mask.

    Args:
        image: `(H, W, C)` float32 tensor.
        mask: `(H, W)` float32 tensor, or `None`.
        seed: `(2,)` integer tensor, the stateless random seed.
        image_size: `(H, W)`.

    Returns:
        `(image, mask)`, transformed identically (`mask` stays `None`).
    """
    import tensorflow as tf

    height, width = image_size
    pad = max(1, round(16 * min(height, width) / 224))
    channels = image.shape[-1]
    stacked = image if mask is None else tf.concat([image, mask[..., None]], -1)
    depth = stacked.shape[-1]
    keys = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)

    padded = tf.pad(stacked, [[pad, pad], [pad, pad], [0, 0]])
    offset = tf.random.stateless_uniform(
        [2], keys[0], 0, 2 * pad + 1, dtype=tf.int32
    )
    stacked = tf.slice(
        padded, [offset[0], offset[1], 0], [height, width, depth]
    )
    flip = tf.random.stateless_uniform([], keys[1]) < 0.5
    stacked = tf.where(flip, tf.reverse(stacked, axis=[1]), stacked)

    angle = tf.random.stateless_uniform([], keys[2], -15.0, 15.0)
    angle = angle * (math.pi / 180.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    x_extent, y_extent = float(width - 1), float(height - 1)
    # Maps output to input pixel coordinates: a rotation about the centre.
    x_offset = (x_extent - (cos * x_extent - sin * y_extent)) / 2.0
    y_offset = (y_extent - (sin * x_extent + cos * y_extent)) / 2.0
    zero = tf.zeros_like(cos)
    transform = tf.stack([cos, -sin, x_offset, sin, cos, y_offset, zero, zero])[
        None
    ]

    def rotate(x, interpolation):
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=x[None],
            transforms=transform,
            output_shape=[height, width],
            fill_value=0.0,
            interpolation=interpolation,
            fill_mode="CONSTANT",
        )[0]

    image = rotate(stacked[..., :channels], "BILINEAR")
    image = tf.ensure_shape(image, [height, width, channels])
    if mask is None:
        return image, None
    mask = rotate(stacked[..., channels:], "NEAREST")[..., 0]
    return image, tf.ensure_shape(mask, [height, width])
