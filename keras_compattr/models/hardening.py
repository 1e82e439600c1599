"""`DetectorHardening`: a judge of the masked-out image that partial
evidence cannot fool.

COMET punishes the selector while the frozen detector still recognises the
class in the masked-out image. A detector trained on whole images only
often stops recognising a glyph or a silhouette once part of it is erased,
so a mask that covers half of the evidence already passes. Hardening
fine-tunes a *copy* of the detector on images with random parts removed
(`keras_compattr.layers.RandomCellMask`), so that the judge still finds
the class in what is left of it. The user's detector is never changed.
"""

import copy as copy_module

import keras
from keras import ops

from keras_compattr.api_export import keras_compattr_export
from keras_compattr.layers.random_cell_mask import RandomCellMask
from keras_compattr.losses.objective import log_probabilities
from keras_compattr.losses.objective import per_sample_cross_entropy
from keras_compattr.models import data_statistics
from keras_compattr.models.data_statistics import can_read_again
from keras_compattr.models.data_statistics import image_batches
from keras_compattr.utils.images import to_unit_range
from keras_compattr.utils.images import to_unit_range_numpy


def frozen_config(detector):
    """The detector's config without its compile state.

    The detector comes trained and compiled (optimizer, loss, metrics),
    and COMET freezes it. Restoring its compile state on load builds an
    optimizer for no trainable variables, which then cannot take the saved
    optimizer's variables: Keras warns "Skipping variable loading for
    optimizer" and drops them. COMET never trains the detector, so its
    saved form is the frozen network alone. (The optimizer's variables
    are still written with the detector's, and ignored on load.)

    Args:
        detector: the frozen detector, a `keras.Model`.

    Returns:
        A dict, `keras.saving.serialize_keras_object(detector)` less its
        `"compile_config"`.
    """
    config = keras.saving.serialize_keras_object(detector)
    config.pop("compile_config", None)
    return config


def copy_network(network, name=None):
    """A new network with `network`'s architecture and weights.

    Args:
        network: a serialisable Keras model.
        name: optional name of the copy.

    Returns:
        The copy, built, with the same weights and `trainable = False`.
    """
    config = copy_module.deepcopy(frozen_config(network))
    if name is not None and isinstance(config.get("config"), dict):
        config["config"]["name"] = name
    duplicate = keras.saving.deserialize_keras_object(config)
    if not duplicate.built:
        duplicate.build(network.input_shape)
    duplicate.set_weights(network.get_weights())
    duplicate.trainable = False
    return duplicate


class _MaskedClassifier(keras.Model):
    """`judge(random_cell_mask(x))` as log-probabilities, for `fit`."""

    def __init__(self, judge, masking, output_kind, **kwargs):
        super().__init__(**kwargs)
        self.judge = judge
        self.masking = masking
        self.output_kind = output_kind

    def call(self, images, training=False):
        images = self.masking(to_unit_range(images), training=training)
        return log_probabilities(
            self.judge(images, training=training), self.output_kind
        )


def _cross_entropy(labels, log_probs):
    return per_sample_cross_entropy(labels, log_probs)


# The settings of `DetectorHardening` that are `RandomCellMask`'s.
_MASK_SETTINGS = (
    "min_cells",
    "max_cells",
    "whole_fraction",
    "fade_fraction",
    "blob_fraction",
    "seed",
)


@keras_compattr_export("keras_compattr.models.DetectorHardening")
class DetectorHardening:
    """How COMET hardens its judge of the masked-out image.

    `fit` of a `ComprehensiveAttributionModel` first fine-tunes a copy of
    the detector on the training images with random parts removed
    (`keras_compattr.layers.RandomCellMask`: random grids of 2 to 16 cells
    a side, every removed share equally likely, a quarter of the images
    whole), then re-estimates the copy's batch-norm statistics on such
    images. COMET then judges its masked-out images with this copy, which
    still recognises a class from part of its evidence, so a mask must
    cover *all* of the evidence to pass. The detector passed by the user
    is never changed, and serves as the black box (Grad-CAM, evaluation).

    The recipe is EVAL-X's (Jethani et al., 2021): a classifier fine-tuned
    on inputs masked at random recognises partial inputs, and since the
    random masks carry no class information, it does not learn to read
    the class from the shape of a hole. `hardening=False` in the model
    gives the paper's recipe (the frozen detector as it is).

    With `erosion` (`"auto"` by default), the judge also sees a little more
    than the mask leaves out: the mask eroded by `erosion` pixels
    (`judged_masks`), so that a band at the inner edge of every selected
    region counts as left out. Without it even a hardened judge lets a mask
    stop a rim short of the evidence: a rim a pixel or two wide is
    recognised by no judge, and the area pressure stops the mask where the
    judge stops finding the class. With it, the evidence within `erosion`
    pixels of the mask's edge must also leave the judge at chance, so the
    mask covers each part of the evidence out to its edge.

    Args:
        epochs: int >= 1, fine-tuning epochs over the training data.
        learning_rate: float, Adam's learning rate (constant).
        batch_size: int, batch size for array inputs.
        max_images: int or `None`, images of array inputs to fine-tune on
            at most (`None`: all).
        erosion: int >= 0 or `"auto"` (the default), pixels by which the
            mask is eroded before the judge sees what it leaves out
            (`judged_masks`). `"auto"`: 1 pixel per 32 of the image's
            shorter side, at least 1 (2 at 48 to 79 px, 7 at 224 px), with
            the model's default `area_budget="auto"`, and none with a
            fixed budget (see `erosion_pixels`). 0 judges the mask itself.
        **masking: the settings of the random masks, passed to
            `keras_compattr.layers.RandomCellMask`, which holds their
            defaults: `min_cells=2`, `max_cells=16` (the coarsest and
            finest grid, in cells per side), `whole_fraction=0.25` (images
            left whole), `fade_fraction=0.25` (images whose cells are
            faded rather than removed), `blob_fraction=0.0` (images with
            curved holes) and `seed=None`. The fill value is the model's.

    Example:

    ```python
    import keras

    import keras_compattr as kca

    data = kca.datasets.synthetic(num_images=64, image_size=32, seed=0)
    detector = kca.models.build_classifier((32, 32, 3), 4, widths=(4, 8))
    detector.compile("adam", keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    detector.fit(data["images"], data["labels"], epochs=1, verbose=0)
    model = kca.ComprehensiveAttributionModel(
        selector=kca.models.build_selector(
            (32, 32, 3), backbone="tiny", width=4
        ),
        predictor=kca.models.build_classifier((32, 32, 3), 4, widths=(4,)),
        detector=detector,
        hardening=kca.models.DetectorHardening(epochs=1),
    )
    model.compile()
    # Hardens `model.judge` (a copy of the detector), then trains COMET.
    model.fit(data["images"], data["labels"], epochs=1, verbose=0)
    ```

    Reference:
        [Jethani et al., 2021](https://arxiv.org/abs/2103.01890)
    """

    def __init__(
        self,
        epochs=4,
        learning_rate=5e-4,
        batch_size=64,
        max_images=None,
        erosion="auto",
        **masking,
    ):
        if int(epochs) < 1:
            raise ValueError(
                "`epochs` must be at least 1; pass `hardening=False` to "
                f"the model to judge with the detector as it is. Received "
                f"epochs={epochs!r}."
            )
        if not float(learning_rate) > 0.0:
            raise ValueError(
                "`learning_rate` must be positive. Received "
                f"learning_rate={learning_rate!r}."
            )
        self.epochs = int(epochs)
        self.learning_rate = float(learning_rate)
        self.batch_size = int(batch_size)
        self.max_images = None if max_images is None else int(max_images)
        if erosion != "auto" and (
            isinstance(erosion, bool)
            or not isinstance(erosion, int)
            or erosion < 0
        ):
            raise ValueError(
                "`erosion` must be 'auto' or an int >= 0 (pixels). "
                f"Received erosion={erosion!r}."
            )
        self.erosion = erosion
        unknown = sorted(set(masking) - set(_MASK_SETTINGS))
        if unknown:
            raise TypeError(
                f"Unknown argument(s) {', '.join(unknown)}. The settings "
                "of the random masks are those of `RandomCellMask`: "
                f"{', '.join(_MASK_SETTINGS)} (the fill value is the "
                "model's)."
            )
        # `RandomCellMask` checks the settings now rather than at `fit`,
        # and fills in its defaults.
        config = RandomCellMask(**masking).get_config()
        self.mask_settings = {name: config[name] for name in _MASK_SETTINGS}

    def masking(self, fill_value, fill_noise=0.0):
        """The `RandomCellMask` of these settings, with the model's fill."""
        return RandomCellMask(
            fill_value=fill_value, fill_noise=fill_noise, **self.mask_settings
        )

    def erosion_pixels(self, height, width, area_budget="auto"):
        """The erosion in pixels for images of `height` x `width`.

        `erosion="auto"` is 1 pixel per 32 of the shorter side, at least 1,
        for a model whose area control is `area_budget="auto"`, and 0 for
        one with a fixed budget: the erosion asks the mask to reach past
        the evidence's edge, which the adaptive control pays for (it lets
        masks grow while the judge still finds the class) and a budget
        sized to the evidence does not. An int is used as it is.
        """
        if self.erosion != "auto":
            return self.erosion
        if area_budget != "auto":
            return 0
        return max(1, round(min(height, width) / 32))

    def judged_masks(self, masks, area_budget="auto"):
        """`masks` `(N, H, W, 1)` eroded by `erosion` pixels (a min-pool).

        The judge sees the image with these masks' pixels removed, which
        keeps a band of `erosion` pixels at the inner edge of each
        selected region. At the image's border only pixels inside it
        count. Gradients reach the smallest mask value of each window:
        the pixel just outside a region's edge, the one that must grow for
        the eroded mask to cover the evidence. `area_budget` is the
        model's (see `erosion_pixels`).
        """
        pixels = self.erosion_pixels(
            masks.shape[1], masks.shape[2], area_budget
        )
        if pixels == 0:
            return masks
        size = 2 * pixels + 1
        return ops.negative(
            ops.max_pool(ops.negative(masks), size, strides=1, padding="same")
        )

    def harden(
        self,
        judge,
        x,
        y=None,
        fill_value=0.5,
        fill_noise=0.0,
        output_kind="logits",
        batch_size=None,
        verbose="auto",
        jit_compile="auto",
        steps_per_epoch=None,
    ):
        """Fine-tunes `judge` in place on randomly masked images.

        Args:
            judge: the network to fine-tune (a copy of the detector; see
                `copy_network`). It is frozen again afterwards.
            x: images (with labels `y`), a `tf.data` dataset or a
                `keras.utils.PyDataset` of `(images, labels)`: data that
                can be read again.
            y: labels for array `x`.
            fill_value: the value of removed pixels.
            fill_noise: the standard deviation of the Gaussian noise added
                to it (see `RandomCellMask`).
            output_kind: `"logits"` or `"probabilities"`, what `judge`
                returns.
            batch_size: int, overrides `self.batch_size` for arrays.
            verbose: Keras verbosity of the fine-tuning `fit`.
            jit_compile: as in `keras.Model.compile`.
            steps_per_epoch: int, batches per epoch of a dataset that
                repeats (as in `keras.Model.fit`); `None` reads it to its
                end.

        Returns:
            The Keras `History` of the fine-tuning.
        """
        if not can_read_again(x):
            raise ValueError(
                "The detector cannot be hardened on a generator, which "
                "would be consumed: pass an array, a `tf.data` dataset or "
                "a `keras.utils.PyDataset`; or call "
                "`model.harden_detector(images, labels)` on training images "
                "first; or pass `hardening=False` to the model."
            )
        masking = self.masking(fill_value, fill_noise)
        wrapper = _MaskedClassifier(
            judge, masking, output_kind, name="detector_hardening"
        )
        judge.trainable = True
        try:
            wrapper.compile(
                optimizer=keras.optimizers.Adam(self.learning_rate),
                loss=_cross_entropy,
                metrics=["accuracy"],
                jit_compile=jit_compile,
            )
            if y is not None and self.max_images is not None:
                x, y = x[: self.max_images], y[: self.max_images]
            history = wrapper.fit(
                x,
                y,
                epochs=self.epochs,
                batch_size=(batch_size or self.batch_size)
                if y is not None
                else None,
                shuffle=y is not None,
                steps_per_epoch=steps_per_epoch,
                verbose=verbose,
            )
            self._refresh_batch_norm(wrapper, judge, x, batch_size)
        finally:
            judge.trainable = False
        return history

    def _refresh_batch_norm(self, wrapper, judge, x, batch_size):
        """Exact batch-norm statistics of `judge` on masked images."""
        layers = data_statistics.batch_norm_layers(judge)
        if not layers:
            return
        with data_statistics.exact_average(layers) as average:
            for batch in image_batches(
                x, batch_size or self.batch_size, max_images=2048
            ):
                average.step()
                wrapper(
                    keras.ops.convert_to_tensor(to_unit_range_numpy(batch)),
                    training=True,
                )

    def get_config(self):
        return {
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "max_images": self.max_images,
            "erosion": self.erosion,
            **self.mask_settings,
        }

    @classmethod
    def from_config(cls, config):
        # Files saved before the erosion judged the mask itself.
        return cls(**{"erosion": 0, **config})


def judged_masks(hardening, masks, area_budget="auto"):
    """The masks whose removal the judge sees: eroded by `hardening`.

    `hardening` is the model's `DetectorHardening`, or `None` (the paper's
    recipe: the judge sees what the masks themselves leave out);
    `area_budget` the model's objective's.
    """
    if hardening is None:
        return masks
    return hardening.judged_masks(masks, area_budget)


def resolve_hardening(hardening):
    """`DetectorHardening` or `None` from the model's `hardening` argument.

    `True` gives the default settings, `False` or `None` none (the
    paper's recipe), a `DetectorHardening` or its config itself.
    """
    if hardening is True:
        return DetectorHardening()
    if hardening is False or hardening is None:
        return None
    if isinstance(hardening, dict):
        return keras.saving.deserialize_keras_object(hardening)
    if isinstance(hardening, DetectorHardening):
        return hardening
    raise TypeError(
        "`hardening` must be True, False or a "
        "`keras_compattr.models.DetectorHardening`. Received "
        f"hardening={hardening!r}."
    )
