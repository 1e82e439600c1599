"""The selector and mask head as one model, for `explain`."""

import keras
from keras import ops

from keras_compattr.utils.images import to_unit_range


class MaskModel(keras.Model):
    """Selector plus mask head: images to mask logits `(N, H, W)`.

    `ComprehensiveAttributionModel.explain` runs it with `predict`, which
    batches arrays, datasets and generators. It shares the selector's and
    mask head's variables and is not saved on its own (no `get_config`).

    Args:
        selector: the selector network.
        mask_head: the `keras_compattr.layers.MaskHead`.
        **kwargs: base model keyword arguments such as `name`.
    """

    def __init__(self, selector, mask_head, **kwargs):
        super().__init__(**kwargs)
        self.selector = selector
        self.mask_head = mask_head

    def call(self, images):
        features = self.selector(to_unit_range(images), training=False)
        return ops.squeeze(self.mask_head.logits(features), axis=-1)
