"""The embedded synthetic data as a tensorflow-datasets builder.

Importing this module (done by `import keras_compattr.datasets`) registers
the `compattr_synthetic` data set, so that
`tfds.load("compattr_synthetic/two_part")` works offline: it generates the
data with `keras_compattr.datasets.synthetic` (fixed seeds), writes it to
the TFDS data folder once, and reads it from there afterwards.
"""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from keras_compattr.datasets.synthetic import synthetic

_TRAIN_SEED = 0
_TEST_SEED = 1


# The settings of `CompattrSyntheticConfig` passed on to `synthetic`.
_SYNTHETIC_SETTINGS = (
    "variant",
    "background_swap",
    "image_size",
    "num_classes",
    "num_distractors",
)


@dataclasses.dataclass
class CompattrSyntheticConfig(tfds.core.BuilderConfig):
    """Settings of a `compattr_synthetic` configuration.

    Takes `name` (and `version`, `description`) as every
    `tfds.core.BuilderConfig` does, plus:

    Args:
        variant: `"one_part"` or `"two_part"`, see
            `keras_compattr.datasets.synthetic`.
        background_swap: bool, add a `"swapped_image"` feature: the
            evidence on the background of an image of another class.
        image_size: int, height and width in pixels.
        num_classes: int.
        num_train: int, images in the `"train"` split.
        num_test: int, images in the `"test"` split.
        num_distractors: int, non-class tiles per image.

    Example:

    >>> import tensorflow_datasets as tfds
    >>> from keras_compattr.datasets import CompattrSyntheticConfig
    >>> config = CompattrSyntheticConfig(
    ...     name="tiny", image_size=32, num_train=8, num_test=4)
    >>> builder = tfds.builder("compattr_synthetic", config=config,
    ...                        data_dir="/tmp/compattr_tfds_doctest")
    """

    variant: str = "two_part"
    background_swap: bool = False
    image_size: int = 48
    num_classes: int = 4
    num_train: int = 2000
    num_test: int = 500
    num_distractors: int = 2


class CompattrSynthetic(tfds.core.GeneratorBasedBuilder):
    """Synthetic glyph images with exact ground-truth evidence masks.

    Each class is a 5x5 glyph; an image holds one (`one_part`) or two
    (`two_part`) tiles of its class glyph among distractor tiles on a
    random background. Features: `image` (uint8), `label` (`ClassLabel`),
    `mask` (uint8 `(S, S)` in `{0, 1}`, the union of the evidence tiles),
    `part_masks` (uint8 `(P, S, S)`, one per tile) and, for
    `two_part_swap`, `swapped_image`. Splits `train` (2000 images, seed 0)
    and `test` (500 images, seed 1), 48 px, 4 classes. Other sizes: pass a
    `CompattrSyntheticConfig` as `config`.

    Example:

    >>> import tensorflow_datasets as tfds
    >>> import keras_compattr.datasets  # Registers the builder.
    >>> ds = tfds.load("compattr_synthetic/two_part", split="test",
    ...                data_dir="/tmp/compattr_tfds")  # doctest: +SKIP
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        CompattrSyntheticConfig(
            name="one_part",
            variant="one_part",
            description="One evidence tile per image.",
        ),
        CompattrSyntheticConfig(
            name="two_part",
            variant="two_part",
            description="Two evidence tiles per image.",
        ),
        CompattrSyntheticConfig(
            name="two_part_swap",
            variant="two_part",
            background_swap=True,
            description="Two evidence tiles, plus a background-swapped copy.",
        ),
    ]
    DEFAULT_CONFIG_NAME = "two_part"

    def _info(self):
        config = self.builder_config
        size = config.image_size
        num_parts = 2 if config.variant == "two_part" else 1
        features = {
            "image": tfds.features.Image(shape=(size, size, 3)),
            "label": tfds.features.ClassLabel(
                names=[f"glyph_{k}" for k in range(config.num_classes)]
            ),
            "mask": tfds.features.Tensor(
                shape=(size, size),
                dtype=np.uint8,
                encoding=tfds.features.Encoding.ZLIB,
            ),
            "part_masks": tfds.features.Tensor(
                shape=(num_parts, size, size),
                dtype=np.uint8,
                encoding=tfds.features.Encoding.ZLIB,
            ),
        }
        if config.background_swap:
            features["swapped_image"] = tfds.features.Image(
                shape=(size, size, 3)
            )
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(features),
            supervised_keys=("image", "label"),
            homepage="https://arxiv.org/abs/2407.19308",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Nothing to download.
        config = self.builder_config
        return {
            "train": self._generate_examples(config.num_train, _TRAIN_SEED),
            "test": self._generate_examples(config.num_test, _TEST_SEED),
        }

    def _generate_examples(self, num_images, seed):
        config = self.builder_config
        # The configuration's fields are `synthetic`'s arguments, but for
        # the split sizes.
        settings = {name: getattr(config, name) for name in _SYNTHETIC_SETTINGS}
        data = synthetic(num_images=num_images, seed=seed, **settings)
        images = _to_uint8(data["images"])
        swapped = (
            _to_uint8(data["swapped_images"])
            if config.background_swap
            else None
        )
        for i in range(num_images):
            example = {
                "image": images[i],
                "label": int(data["labels"][i]),
                "mask": data["masks"][i].astype(np.uint8),
                "part_masks": data["part_masks"][i].astype(np.uint8),
            }
            if swapped is not None:
                example["swapped_image"] = swapped[i]
            yield i, example


def _to_uint8(images):
    return np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)
