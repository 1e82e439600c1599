"""An independent judge of completeness, for benchmarks.

COMET's own judge is the network it was trained against, so its
masked-out accuracy says little about the evidence itself: a mask can be
shaped to fool one network. The benchmark scores every mask with a judge
that COMET never saw: another architecture (a wider ResNet than the
benchmark's detector), another seed and other random masks, trained from
scratch on images with random parts removed, so that it recognises a
class from part of its evidence.

Its accuracy on what a decision mask leaves out should sit within a few
points of chance: above chance, evidence was left out; well below, the
mask's shape itself tells the class (ROAD's leakage, Rong et al. 2022).
"""

import keras
import numpy as np

from keras_compattr.api_export import keras_compattr_export
from keras_compattr.layers.random_cell_mask import RandomCellMask
from keras_compattr.models.networks import build_classifier


@keras_compattr_export("keras_compattr.evaluation.train_judge")
def train_judge(
    images,
    labels,
    num_classes,
    fill_value,
    seed=0,
    epochs=12,
    batch_size=64,
    widths=(24, 48, 96),
    verbose=0,
):
    """Trains an independent judge on randomly masked images.

    Args:
        images: `(N, H, W, C)` training images in `[0, 1]`.
        labels: `(N,)` integer labels.
        num_classes: int.
        fill_value: the value of removed pixels (COMET's fill value).
        seed: int, seed of the weights and the masks.
        epochs: int, training epochs (Adam 2e-3, cosine decay).
        batch_size: int.
        widths: the widths of the ResNet's stages
            (`keras_compattr.models.build_classifier`).
        verbose: Keras verbosity of `fit`.

    Returns:
        A `keras.Model` mapping images in `[0, 1]` to logits.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.evaluation import train_judge
    >>> images = np.random.default_rng(0).random((16, 16, 16, 3))
    >>> judge = train_judge(images, np.arange(16) % 2, 2, 0.5, epochs=1,
    ...                     widths=(4, 8))
    >>> judge.output_shape
    (None, 2)
    """
    keras.utils.set_random_seed(seed)
    shape = tuple(np.shape(images)[1:])
    judge = build_classifier(
        shape, num_classes, widths=widths, blocks_per_stage=1, name="judge"
    )
    trainer = keras.Sequential(
        [
            keras.Input(shape),
            # Coarser grids than the hardening's, with no fading.
            RandomCellMask(
                fill_value,
                min_cells=3,
                max_cells=12,
                whole_fraction=0.2,
                fade_fraction=0.0,
                seed=seed,
            ),
            judge,
        ]
    )
    steps = epochs * int(np.ceil(len(images) / batch_size))
    trainer.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(2e-3, steps)
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    trainer.fit(
        images, labels, epochs=epochs, batch_size=batch_size, verbose=verbose
    )
    return judge


@keras_compattr_export("keras_compattr.evaluation.masked_out_accuracy")
def masked_out_accuracy(
    classifier, images, labels, maps, fill_value, threshold=0.5
):
    """Accuracy of `classifier` on what the decision mask leaves out.

    Pixels where `maps > threshold` are replaced by `fill_value`; the
    classifier sees the rest.

    Args:
        classifier: a Keras classifier on images in `[0, 1]`.
        images: `(N, H, W, C)` images in `[0, 1]`.
        labels: `(N,)` integer labels.
        maps: `(N, H, W)` masks in `[0, 1]`.
        fill_value: float or per-channel values.
        threshold: float, the decision threshold.

    Returns:
        A Python float in `[0, 1]`.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.evaluation import masked_out_accuracy
    >>> from keras_compattr.models import build_classifier
    >>> model = build_classifier((16, 16, 3), 2, widths=(4,))
    >>> images = np.zeros((4, 16, 16, 3), "float32")
    >>> maps = np.ones((4, 16, 16), "float32")
    >>> 0.0 <= masked_out_accuracy(model, images, [0, 1, 0, 1], maps,
    ...                            0.5) <= 1.0
    True
    """
    decision = (np.asarray(maps) > threshold).astype("float32")[..., None]
    fill = np.asarray(fill_value, "float32").reshape(1, 1, 1, -1)
    masked_out = np.asarray(images, "float32") * (1.0 - decision)
    masked_out = masked_out + decision * fill
    predictions = classifier.predict(masked_out, verbose=0).argmax(-1)
    return float(np.mean(predictions == np.asarray(labels).reshape(-1)))
