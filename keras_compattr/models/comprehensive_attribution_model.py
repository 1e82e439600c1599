"""`ComprehensiveAttributionModel`: COMET as a `keras.Model`."""

import keras
import numpy as np
from keras import ops

from keras_compattr.api_export import keras_compattr_export
from keras_compattr.layers import mask_head
from keras_compattr.layers.mask_head import MaskHead
from keras_compattr.losses import deletion
from keras_compattr.losses.comet import resolve_objective
from keras_compattr.losses.objective import log_probabilities
from keras_compattr.models import adapters
from keras_compattr.models import checks
from keras_compattr.models import hardening as hardening_lib
from keras_compattr.models import loading
from keras_compattr.models import networks
from keras_compattr.models.checks import output_shape
from keras_compattr.models.comet_trainer import CometTrainer
from keras_compattr.models.fill import FillState
from keras_compattr.models.networks import MaskModel
from keras_compattr.utils.images import to_unit_range


def _plus_losses(loss, losses):
    """`loss` plus the sum of a network's `losses` (regularisers), if any."""
    if not losses:
        return loss
    return loss + ops.cast(ops.sum(losses), "float32")


def _objective_setting(name):
    return property(
        lambda self: getattr(self.objective, name),
        doc=f"`objective.{name}` (read-only; see `CometObjective`).",
    )


@keras_compattr_export(
    (
        "keras_compattr.models.ComprehensiveAttributionModel",
        "keras_compattr.ComprehensiveAttributionModel",
    )
)
class ComprehensiveAttributionModel(CometTrainer, FillState, keras.Model):
    """An image classifier that explains every prediction with a mask.

    COMET trains three networks together. The **selector** draws a soft mask
    `m` over the image; the **predictor** classifies only the masked-in image
    `x_s = m * x + (1 - m) * q`; a frozen, already trained **detector** looks
    at the masked-out image `x_c = (1 - m) * x + m * q`. The selector is
    punished whenever the detector can still recognise the class in what was
    left out, so the mask must cover *all* the discriminative evidence
    (completeness) and cannot lock onto noise the predictor happens to
    fit (interlocking). At test time the prediction is `P(x_s)` and the mask
    is the explanation; the detector is not needed.

    Images are channels-last, in `[0, 1]` or `0..255` (integers, or
    floats above 1.5 as `image_dataset_from_directory` yields them; see
    `keras_compattr.utils.images`). The networks receive float32 images in
    `[0, 1]`: put any further normalisation inside them.

    `fit`, `evaluate`, `predict` and `explain` check their inputs before
    any graph is built (`keras_compattr.utils.data_checks`) and raise a
    `ValueError` or `TypeError` naming the fix.

    Args:
        selector: a `keras.Model` mapping images to a feature map
            `(N, h, w, F)`. With `F == 1` the map holds the mask logits;
            otherwise a 1x1 convolution to one logit channel is added. The
            logits are resized bilinearly to the image size, then go
            through a sigmoid. `None` builds the default selector
            (`keras_compattr.models.build_selector`). A feature extractor
            (KerasHub or KerasCV `Backbone`, `keras.applications` model
            with `include_top=False`) or a recipe name such as
            `"mobilenet_v3_small"` gets an LR-ASPP head: see
            `keras_compattr.models.as_selector` and `docs/backbones.md`.
        predictor: a `keras.Model` mapping images to class logits `(N, K)`.
            `None` builds a ResNet-18-like classifier
            (`keras_compattr.models.build_predictor`). A feature extractor
            or a recipe name gets pooling and a `Dense(num_classes)` head
            (`keras_compattr.models.as_predictor`). Recipe names need
            `input_shape`.
        detector: a trained classifier mapping images to `(N, K)` logits or
            softmax probabilities. It is frozen (`trainable = False`, even
            when passed trainable) and never changed; training refuses to
            run if it is made trainable again. `fit` warns when it looks
            untrained (see `detector_accuracy`). A KerasHub or KerasCV
            `ImageClassifier` is wrapped with its input preprocessing
            (`keras_compattr.models.as_detector`); wrap other classifiers
            that expect another input range yourself.
        num_classes: int, number of classes; needed only when no network
            fixes it.
        input_shape: `(H, W, C)`; needed only when no network fixes it.
        detector_weight: float >= 0, weight `a` of the detector term
            (`0.0`: the no-detector ablation).
        margin: float, margin `g` of the hinge.
        area_budget: `"auto"` (the default: the evidence-adaptive area
            control, whose multiplier is logged as `area_multiplier`; or a
            `keras_compattr.losses.AreaMultiplier` for other settings), or
            a float in `(0, 1]`, the share `t` of the image the mask may
            cover for free (the paper's recipe: `area_budget=0.6`).
        area_weight: float >= 0, weight `b` of the area penalty (fixed
            budget only).
        detector_term: `"hinge"` (the default with a fixed budget),
            `"chance_hinge"` (the default with `area_budget="auto"`),
            `"negative_ce"`, `"entropy"` or `"kl_uniform"`.
        hinge_reduction: `"batch"` (on batch means, as the reference code)
            or `"sample"` (per image, then averaged).
        fill_value: the value `q` that replaces removed pixels: a float or a
            per-channel sequence in `[0, 1]`. `None` uses the per-channel
            mean of the training images, computed by `adapt()` (called by
            the first `fit()` when needed) and saved with the model.
        fill_noise: `0.0` (the default, the paper's flat fill), a float or
            per-channel sequence in `[0, 1]`, or `"auto"`: the standard
            deviation of Gaussian noise added to `q` at each removed pixel
            (a new draw every training step, a fixed one in inference),
            in the selector's objective and in the judge's hardening.
            `"auto"` measures the training images' own pixel noise at
            `adapt()` (`keras_compattr.models.data_statistics.pixel_noise`).
            A flat fill on images with noisy backgrounds is itself
            evidence of a kind the networks never saw: a classifier of
            such images can fail on a masked-in image that holds all the
            evidence on a flat background, and the selector then keeps
            background in the mask to restore the texture.
        smoothness_weight: float >= 0, weight of a total-variation
            penalty on the mask (off in the reference method).
        deletion_weight: float >= 0, weight of the deletion term, which
            ranks the mask's pixels (off in the reference method).
        detector_output: `"auto"`, `"logits"` or `"probabilities"`. `"auto"`
            reads the detector's last activation and, when that is not
            conclusive, treats rows that lie in `[0, 1]` and sum to one as
            probabilities.
        predictor_output: as `detector_output`, for the predictor.
        hardening: `True` (the default), `False` (the paper's recipe: the
            detector judges as it is), or a `DetectorHardening`. With it,
            the masked-out image is judged by `judge`, a copy of the
            detector that the first `fit` fine-tunes on images with random
            parts removed and that is shown the mask eroded by a few
            pixels, so that a mask must cover all of the evidence.
        objective: a `keras_compattr.losses.CometObjective`, whose docs
            detail the arguments `detector_weight` to `deletion_weight`
            above: those are its short form, and are refused alongside it.
            Its settings read back as the model's read-only attributes
            (`model.area_budget`, `model.area_control`, ...).
        **kwargs: base model keyword arguments such as `name`.

    Example:

    Train on the embedded synthetic data and explain.
    ```python
    import keras

    import keras_compattr as kca

    # A tiny budget; use e.g. 1600 images, 8 + 10 epochs for real masks.
    data = kca.datasets.synthetic(num_images=64, image_size=32, seed=0)
    # Stage 1: the detector, a classifier trained on full images.
    detector = kca.models.build_classifier(
        (32, 32, 3), num_classes=4, widths=(4, 8)
    )
    detector.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    detector.fit(data["images"], data["labels"], epochs=1, verbose=0)
    # Stage 2: selector and predictor, against the frozen detector.
    model = kca.ComprehensiveAttributionModel(
        selector=kca.models.build_selector(
            (32, 32, 3), backbone="tiny", width=4
        ),
        predictor=kca.models.build_predictor(
            (32, 32, 3), num_classes=4, widths=(4, 8)
        ),
        detector=detector,
    )
    model.compile()
    model.fit(
        data["images"], data["labels"], epochs=1, batch_size=32, verbose=0
    )
    probabilities = model.predict(data["images"][:8], verbose=0)  # (8, 4)
    masks = model.explain(data["images"][:8], verbose=0)  # (8, 32, 32)
    ```

    Reference:
        [Zhang et al., 2024](https://arxiv.org/abs/2407.19308)
    """

    def __init__(
        self,
        selector=None,
        predictor=None,
        detector=None,
        num_classes=None,
        input_shape=None,
        detector_weight=4.0,
        margin=2.0,
        area_budget="auto",
        area_weight=100.0,
        detector_term=None,
        hinge_reduction="batch",
        fill_value=None,
        smoothness_weight=0.0,
        detector_output="auto",
        predictor_output="auto",
        objective=None,
        hardening=True,
        deletion_weight=0.0,
        fill_noise=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if detector is None:
            raise ValueError(
                "`detector` is required: pass a classifier trained on full "
                "images (e.g. one built with "
                "`keras_compattr.models.build_classifier` and fitted)."
            )
        objective = resolve_objective(
            objective,
            detector_weight=detector_weight,
            margin=margin,
            area_budget=area_budget,
            area_weight=area_weight,
            detector_term=detector_term,
            hinge_reduction=hinge_reduction,
            smoothness_weight=smoothness_weight,
            deletion_weight=deletion_weight,
        )
        checks.check_output_kind("detector_output", detector_output)
        checks.check_output_kind("predictor_output", predictor_output)
        # Backbones, wrapped classifiers and recipe names become models
        # on [0, 1] images (`keras_compattr.models.adapters`).
        selector, predictor, detector = adapters.resolve_networks(
            selector, predictor, detector, input_shape, num_classes
        )
        image_shape = checks.infer_image_shape(
            input_shape,
            {
                "selector": selector,
                "predictor": predictor,
                "detector": detector,
            },
        )
        num_classes = checks.infer_num_classes(
            num_classes,
            {"predictor": predictor, "detector": detector},
            image_shape,
        )

        # === Networks ===
        if selector is None:
            selector = networks.build_selector(image_shape)
        if predictor is None:
            predictor = networks.build_predictor(image_shape, num_classes)
        detector.trainable = False
        self.selector = selector
        self.predictor = predictor
        self.detector = detector
        self.mask_head = MaskHead(
            image_shape[0], image_shape[1], name="mask_head"
        )
        self.mask_head.build(output_shape(selector, image_shape))

        # === Fill value (`keras_compattr.models.fill`) ===
        self.build_fill(image_shape[-1], fill_value, fill_noise)

        # === Judge of the masked-out image ===
        self.hardening = hardening_lib.resolve_hardening(hardening)
        if self.hardening is not None:
            self.hardened_detector = hardening_lib.copy_network(
                detector, name=f"{detector.name}_hardened"
            )
            self.detector_hardened = self.add_weight(  # old files lack it
                shape=(),
                initializer="zeros",
                trainable=False,
                name="detector_hardened",
            )

        # === Objective ===
        objective.build(num_classes)
        self.objective = objective
        # Tracked, so that the area control's state is the model's: saved
        # (under `area_control`), and threaded through the JAX step.
        self._area_control_state = objective.area_control

        # === Trackers ===
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.term_trackers = {
            name: keras.metrics.Mean(name=name)
            for name in (
                "predictor_loss",
                "detector_loss",
                "area_penalty",
                "mask_area",
                *(("deletion_term",) if objective.deletion_weight else ()),
            )
        }
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(
            name="accuracy"
        )
        self.masked_out_accuracy_tracker = (
            keras.metrics.SparseCategoricalAccuracy(name="masked_out_accuracy")
        )

        # === Config ===
        self.image_shape = tuple(image_shape)
        self.num_classes = int(num_classes)
        self.detector_output = detector_output
        self.predictor_output = predictor_output
        self._detector_output_kind = checks.output_kind(
            detector, detector_output
        )
        self._predictor_output_kind = checks.output_kind(
            predictor, predictor_output, default="logits"
        )
        # `explain`'s model, sharing the selector's and mask head's weights.
        self._mask_model = MaskModel(
            selector, self.mask_head, name="mask_model"
        )
        self._mask_model.build((None, *self.image_shape))
        self.build((None, *self.image_shape))  # every variable exists now

    detector_weight = _objective_setting("detector_weight")
    margin = _objective_setting("margin")
    area_budget = _objective_setting("area_budget")
    area_weight = _objective_setting("area_weight")
    detector_term = _objective_setting("detector_term")
    hinge_reduction = _objective_setting("hinge_reduction")
    smoothness_weight = _objective_setting("smoothness_weight")
    deletion_weight = _objective_setting("deletion_weight")
    area_control = _objective_setting("area_control")

    # === Forward pass ===

    @property
    def judge(self):
        """The network that judges the masked-out image: the detector's
        hardened copy (the default), or the detector (`hardening=False`)."""
        if self.hardening is None:
            return self.detector
        return self.hardened_detector

    def compute_mask_logits(self, images, training=False):
        """Pre-sigmoid mask scores `(N, H, W, 1)` for images in `[0, 1]`."""
        features = self.selector(images, training=training)
        return self.mask_head.logits(features)

    def compute_masks(self, images, training=False):
        """Masks `(N, H, W, 1)` in `[0, 1]` for images in `[0, 1]`."""
        return ops.sigmoid(self.compute_mask_logits(images, training))

    def call(self, images, training=None):
        images = to_unit_range(images)
        masks = self.compute_masks(images, training=training)
        masked_in, _ = self.apply_masks(images, masks)
        outputs = self.predictor(masked_in, training=training)
        return ops.exp(log_probabilities(outputs, self._predictor_output_kind))

    def compute_terms(self, images, labels, training=False, sample_weight=None):
        """Runs the three networks once and returns the objective's terms.

        Changes no state but the networks' own in training mode (batch
        norm): the training step moves the area control.

        Args:
            images: a batch of images.
            labels: `(N,)` integer, or `(N, K)` one-hot or soft labels.
            training: whether the selector and predictor run in training
                mode. The detector always runs in inference mode.
            sample_weight: optional `(N,)` weights of the batch means.

        Returns:
            The dict of `keras_compattr.losses.comet_objective`, plus
            `"predictor_log_probs"`, `"detector_log_probs"` and
            `"masks"`.
            Regularisation losses of the selector are added to
            `"selector_loss"` and those of the predictor to
            `"predictor_loss"`.
        """
        images = to_unit_range(images)
        mask_logits = self.compute_mask_logits(images, training=training)
        masks = ops.sigmoid(mask_logits)
        masked_in, _ = self.apply_masks(images, masks, training)
        budget = self.objective.area_budget
        judged = hardening_lib.judged_masks(self.hardening, masks, budget)
        _, masked_out = self.apply_masks(images, judged, training)
        # A frozen predictor (`LearnedMask`'s classifier) runs in inference
        # mode: no dropout, and batch norm on its moving statistics.
        predictor_log_probs = log_probabilities(
            self.predictor(
                masked_in, training=training and self.predictor.trainable
            ),
            self._predictor_output_kind,
        )
        # Its regularisation losses of this pass (the next call clears them).
        predictor_regularization = list(self.predictor.losses)
        detector_log_probs = log_probabilities(
            self.judge(masked_out, training=False),
            self._detector_output_kind,
        )
        deletion_log_probs = None
        if self.objective.deletion_weight:
            # The predictor on the image without the top of each mask.
            top = deletion.top_fraction_masks(
                mask_logits, self.objective.deletion_fractions
            )
            deletion_log_probs = log_probabilities(
                self.predictor(
                    self.apply_masks(images, top, training)[1],
                    training=False,
                ),
                self._predictor_output_kind,
            )
        terms = self.objective(
            labels,
            predictor_log_probs,
            detector_log_probs,
            masks,
            mask_logits=mask_logits,
            sample_weight=sample_weight,
            deletion_log_probs=deletion_log_probs,
        )
        terms["selector_loss"] = _plus_losses(
            terms["selector_loss"], self.selector.losses + self.mask_head.losses
        )
        terms["predictor_objective"] = _plus_losses(
            terms["predictor_loss"], predictor_regularization
        )
        terms["predictor_log_probs"] = predictor_log_probs
        terms["detector_log_probs"] = detector_log_probs
        terms["masks"] = masks
        return terms

    # === Explanations ===

    def explain(self, images, batch_size=32, verbose="auto", output="mask"):
        """Attribution maps for `images`.

        Runs the selector only (one forward pass per batch): neither the
        predictor nor the detector is evaluated.

        Args:
            images: images `(N, H, W, C)` (float in `[0, 1]` or integer in
                `0..255`), one image `(H, W, C)`, or a dataset or generator
                yielding batches of images (alone or as the first element
                of a tuple). Checked as in `fit`.
            batch_size: int, batch size for array inputs.
            verbose: `"auto"`, 0, 1 or 2, as in `keras.Model.predict`.
            output: what to return per pixel:
                - `"mask"` (default): the soft mask `m` in `[0, 1]`, exactly
                  what the predictor's input `m * x + (1 - m) * q` uses.
                - `"logits"`: the selector's pre-sigmoid score, with
                  `mask = sigmoid(logits)`. It orders pixels as the mask
                  does, but keeps apart pixels whose mask has saturated at
                  1.0 (or 0.0) in float32, so ranking metrics (PxAP, the
                  pointing game, deletion curves) see the order the
                  selector learned instead of ties.
                - `"ranked"`: the logits scaled per image into `[0, 1]`
                  with 0.5 at the decision boundary: the order of
                  `"logits"`, the selection of `"mask"`.
                - `"binary"`: the decision mask, 1.0 where `m >= 0.5`
                  (logit >= 0) and 0.0 elsewhere.

        Returns:
            A NumPy float32 array `(N, H, W)`, one map per image in input
            order (`(1, H, W)` for one image).

        Example:

        >>> import numpy as np
        >>> import keras_compattr as kca
        >>> shape = (32, 32, 3)
        >>> model = kca.ComprehensiveAttributionModel(
        ...     selector=kca.models.build_selector(shape, backbone="tiny"),
        ...     predictor=kca.models.build_predictor(shape, 3),
        ...     detector=kca.models.build_classifier(shape, 3),
        ... )
        >>> images = np.random.default_rng(0).random((2, 32, 32, 3))
        >>> masks = model.explain(images, verbose=0)
        >>> logits = model.explain(images, verbose=0, output="logits")
        >>> bool(np.allclose(masks, 1 / (1 + np.exp(-logits)), atol=1e-5))
        True
        >>> binary = model.explain(images, verbose=0, output="binary")
        >>> set(np.unique(binary).tolist()) <= {0.0, 1.0}
        True
        """
        mask_head.check_map_output(output)
        images, _ = self._validate_inputs(
            images, None, with_labels=False, single=True, name="images"
        )
        if not self._mask_model.compiled:
            self._mask_model.compile(
                jit_compile=self.jit_compile if self.compiled else "auto"
            )
        logits = self._mask_model.predict(
            images, batch_size=batch_size, verbose=verbose
        )
        maps = mask_head.maps_from_logits(logits, output)
        return np.asarray(keras.ops.convert_to_numpy(maps), "float32")

    # === Config ===

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "selector": keras.saving.serialize_keras_object(self.selector),
                "predictor": keras.saving.serialize_keras_object(
                    self.predictor
                ),
                "detector": hardening_lib.frozen_config(self.detector),
                "num_classes": self.num_classes,
                "input_shape": self.image_shape,
                "fill_value": self.fill_value,
                "fill_noise": self.fill_noise,
                "detector_output": self.detector_output,
                "predictor_output": self.predictor_output,
                "objective": keras.saving.serialize_keras_object(
                    self.objective
                ),
                "hardening": None
                if self.hardening is None
                else keras.saving.serialize_keras_object(self.hardening),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = loading.upgraded_config(config)
        names = ("selector", "predictor", "detector", "objective")
        return cls(**loading.deserialized_config(config, names))
