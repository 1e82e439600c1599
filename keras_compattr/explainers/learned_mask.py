"""`LearnedMask`: a comprehensive mask of a classifier the user already has."""

import math

import keras
import numpy as np

from keras_compattr.api_export import keras_compattr_export
from keras_compattr.explainers import own_labels
from keras_compattr.models.adapters import as_detector
from keras_compattr.models.adapters import selector_from_classifier
from keras_compattr.models.checks import keras_arguments
from keras_compattr.models.comprehensive_attribution_model import (
    ComprehensiveAttributionModel,
)
from keras_compattr.models.hardening import DetectorHardening
from keras_compattr.models.hardening import copy_network
from keras_compattr.models.hardening import frozen_config
from keras_compattr.models.loading import deserialized_config
from keras_compattr.models.networks import build_selector
from keras_compattr.utils import data_checks
from keras_compattr.utils.images import to_unit_range_numpy

# Below this image side the default selector is the "tiny" conv net (mask
# logits at stride 2), above it LR-ASPP on MobileNetV3-Small (stride 8),
# as the quick start and `keras-compattr train` choose for small images.
TINY_SELECTOR_BELOW = 128
# AdamW's learning rate when `fit` compiles, decayed to zero by a cosine
# (as `keras_compattr.training.train_comet` does), for a selector trained
# from scratch: the best of 5e-4, 2e-3, 5e-3, 1e-2 and 2e-2 on the
# embedded benchmark (docs/benchmark.md).
LEARNING_RATE = 1e-2
# The same for the default selector started from a copy of the classifier:
# a smaller rate keeps more of the features it starts from (the best of
# 1e-3, 2e-3 and 1e-2 on the embedded benchmark's 3 seeds).
CLASSIFIER_SELECTOR_LEARNING_RATE = 2e-3
# Weight of the deletion term (`keras_compattr.losses.deletion`), on by
# default here: without it the mask is a plateau over all the evidence,
# and ranking metrics see ties (docs/learned-mask.md gives the figures).
DELETION_WEIGHT = 2.0
# The judge's hardening with `hardening=True` (the default here): longer
# and at a larger rate than the model's `DetectorHardening()` (4 epochs at
# 5e-4), with curved holes among the random ones. The judge is a copy of
# a classifier that may be weak on partial evidence; on the silhouettes
# benchmark the model's settings left it below the classifier itself
# (whole images 72% against 85%, one of the two silhouettes erased 60%
# against 66%), and these took it to 91% and 72%, and from 53% to 69% on
# images with random holes (docs/learned-mask.md gives the figures).
HARDENING = {"epochs": 12, "learning_rate": 1e-3, "blob_fraction": 0.5}
# The fill of removed pixels carries the training images' own pixel noise
# (`fill_noise="auto"`; about 0 on clean photographs). On the silhouettes
# benchmark, whose backgrounds are noisy, the classifier gave its class on
# 19-36% of images that kept all of the evidence on the flat mean colour,
# and the selector kept half-faded background in its masks to give the
# texture back. With the noisy fill PxAP went from 55.5 to 77.6 there and
# from 68.3 to 73.4 on the two-part benchmark (3 seeds each; Grad-CAM 58.7
# and 65.5; docs/benchmark.md gives what it costs).
FILL_NOISE = "auto"
# Arguments that `LearnedMask` sets itself.
_OWN_ARGUMENTS = (
    "predictor",
    "detector",
    "num_classes",
    "predictor_output",
    "detector_output",
)


def default_selector(input_shape, classifier=None):
    """The selector `LearnedMask` builds when none is given.

    Args:
        input_shape: `(H, W, C)` of the classifier's images.
        classifier: the explained classifier (a `keras.Model` on `[0, 1]`
            images), or `None`.

    Returns:
        When `classifier` has convolutional feature maps at two strides
        among its own layers (a functional or `Sequential` conv net), or
        among those of one backbone nested in it behind preprocessing
        layers: `keras_compattr.models.adapters.selector_from_classifier`,
        the LR-ASPP head over a trainable **copy** of those features. The
        explainer then starts from the features of the model it explains,
        as Dabkowski & Gal's saliency model starts from its classifier's
        encoder: it tells the evidence *this* model uses from look-alikes
        from the first step. Otherwise (no such maps, or no classifier):
        `build_selector(input_shape, backbone="tiny", width=8)` for images
        under 128 pixels a side (a mask at half resolution, fast on a
        CPU), else `build_selector(input_shape)` (LR-ASPP on a randomly
        initialised MobileNetV3-Small, the model's own default).
    """
    return _default_selector(input_shape, classifier)[0]


def _default_selector(input_shape, classifier):
    """`(default_selector, the learning rate `fit` compiles it with)`."""
    if classifier is not None:
        selector = selector_from_classifier(classifier, tuple(input_shape))
        if selector is not None:
            return selector, CLASSIFIER_SELECTOR_LEARNING_RATE
    if min(input_shape[:2]) < TINY_SELECTOR_BELOW:
        selector = build_selector(input_shape, backbone="tiny", width=8)
    else:
        selector = build_selector(input_shape)
    return selector, LEARNING_RATE


@keras_compattr_export("keras_compattr.explainers.LearnedMask")
class LearnedMask(ComprehensiveAttributionModel):
    """A learned, comprehensive mask of a classifier you already have.

    Trains only a **selector** so that your frozen classifier still
    predicts its class from the masked-in image `m * x + (1 - m) * q`
    and can no longer find it in the masked-out image
    `(1 - m) * x + m * q`. Once fitted, `explain` costs one forward pass
    of the selector per batch, as Grad-CAM costs one of the classifier,
    and the mask is *comprehensive* in COMET's sense: it covers all the
    evidence the classifier could use, not only its strongest part.
    Dabkowski & Gal's real-time saliency and CASME train such amortised
    explainers too; this one uses COMET's objective.

    It is `ComprehensiveAttributionModel` with the roles filled from one
    classifier, so the objective, the area control (`area_budget="auto"`),
    the hardened judge and the gradient routing are the model's own:

    - **selector** = by default a trainable copy of your classifier's
      convolutional layers under an LR-ASPP head (`default_selector`), so
      the explainer starts from the features your model uses (or of the
      backbone nested in it behind preprocessing layers); a small
      selector from scratch when neither holds feature maps at two
      strides.
    - **predictor** = your classifier, frozen (`trainable = False`) and
      always run in inference mode. Its weights, batch-norm statistics
      included, are never changed: it has no trainable variable to route
      a gradient to, and the batch-norm refresh at the end of `fit` skips
      frozen layers. The selector's gradient flows *through* it.
    - **detector** = a frozen copy of your classifier (one network cannot
      hold two roles: a shared layer is refused). With `hardening=True`
      (the default) the masked-out image is judged by a second copy,
      fine-tuned by `fit` on images with random parts removed
      (`DetectorHardening(epochs=12, learning_rate=1e-3,
      blob_fraction=0.5)`: three times the model's default epochs, since
      your classifier may not recognise partial evidence at all), so that
      a mask must cover *all* of the evidence; pass a `DetectorHardening`
      to change it, `hardening=False` to judge with the copy as it is.
      Both copies hold your classifier's weights: memory and the saved
      file hold it three times (four with the default selector).
    - **labels** default to your classifier's own predictions (arg max):
      the mask explains the model, not the data set.
    - **fill**: a removed pixel takes the mean colour of the training
      images plus Gaussian noise of their own pixel-noise level
      (`fill_noise="auto"`, measured by the first `fit`; near 0 on clean
      photographs), in the images your classifier sees and in the
      judge's hardening: on images with noisy backgrounds a flat fill is
      something your classifier never saw, and the selector would keep
      background in the mask to make up for it.
    - **ranking**: the deletion term (`deletion_weight`, default 2.0 here,
      off in the model) removes the top 5-20% of each mask's pixels and
      punishes the selector while your classifier still gives the class
      in what is left. The top of the mask is then the evidence your
      classifier depends on most, so the map ranks its pixels as deletion
      curves measure them, not only covers them. One more pass of the
      classifier per training step; `explain` costs the same.

    `fit` is Keras' (callbacks, progress bar, `validation_data`,
    `batch_size`, `tf.data` datasets). When `compile` was not called it
    compiles with AdamW (weight decay 0.03), decayed to zero over the run
    by a cosine, at 2e-3 for the default selector started from the
    classifier's copy (on the embedded benchmark's 3 seeds, PxAP 67.8
    against 61.6 at 1e-2), and at 1e-2 for a selector trained from
    scratch (8 epochs gave PxAP 46 at the model's default 5e-4, 51 at
    2e-3, 57 at 5e-3, 64 at 1e-2 and 54 at 2e-2; one seed). For a
    selector of your own, pretrained, compile with a smaller rate.

    The mask does not depend on a label: the selector sees only the
    image, and its mask is the evidence of the class the classifier
    predicts.

    Args:
        classifier: a trained Keras classifier mapping channels-last images
            in `[0, 1]` to `(N, K)` logits or probabilities, or a KerasHub
            or KerasCV `ImageClassifier` (wrapped with its preprocessing,
            as `keras_compattr.models.as_detector` does). Put any other
            preprocessing inside the model, e.g. `Rescaling(255)` before
            a `keras.applications` network.
        selector: a `keras.Model`, backbone or recipe name, as the
            model's `selector`; `None` builds `default_selector`: a
            trainable copy of the classifier's own convolutional layers
            under an LR-ASPP head when it has them at two strides, else a
            small selector trained from scratch.
        input_shape: `(H, W, C)`, needed only when the classifier has no
            fixed input shape.
        classifier_output: `"auto"`, `"logits"` or `"probabilities"`: what
            the classifier returns (`"auto"` reads its last activation).
        **objective: the objective's settings and the other arguments of
            `keras_compattr.ComprehensiveAttributionModel`:
            `area_budget` (default `"auto"`), `detector_weight`,
            `detector_term`, `hinge_reduction`, `margin`, `area_weight`,
            `smoothness_weight`, `deletion_weight` (default 2.0 here),
            `objective`, `hardening` (default `True`: `HARDENING`),
            `fill_value` (default: the mean colour of the first `fit`'s
            images), `fill_noise` (default `"auto"` here, `0.0` in the
            model: the fill carries the training images' own pixel noise,
            see `keras_compattr.models.fill`), and base model arguments
            such as `name`.

    Example:

    ```python
    import keras
    import numpy as np

    import keras_compattr as kca

    # Your classifier: here a small one, trained for a few steps.
    data = kca.datasets.synthetic(num_images=64, image_size=32, seed=0)
    classifier = kca.models.build_classifier((32, 32, 3), 4, widths=(4, 8))
    classifier.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    classifier.fit(data["images"], data["labels"], epochs=1, verbose=0)
    weights = [w.copy() for w in classifier.get_weights()]

    explainer = kca.explainers.LearnedMask(
        classifier, hardening=kca.models.DetectorHardening(epochs=1)
    )
    explainer.fit(data["images"], epochs=1, batch_size=32, verbose=0)
    maps = explainer.explain(data["images"][:8])  # (8, 32, 32), in [0, 1]
    assert all(
        np.array_equal(a, b)
        for a, b in zip(weights, classifier.get_weights())
    )
    explainer.save("learned_mask.keras")
    ```

    Reference:
        [Zhang et al., 2024](https://arxiv.org/abs/2407.19308)
    """

    def __init__(
        self,
        classifier,
        selector=None,
        input_shape=None,
        classifier_output="auto",
        **objective,
    ):
        taken = sorted(set(_OWN_ARGUMENTS) & set(objective))
        if taken:
            raise TypeError(
                f"LearnedMask sets {', '.join(taken)} itself from "
                "`classifier`; pass the classifier only."
            )
        if not isinstance(classifier, keras.layers.Layer):
            raise TypeError(
                "`classifier` must be a trained Keras classifier. Received "
                f"{type(classifier).__name__}."
            )
        classifier = as_detector(classifier, input_shape)
        shape = input_shape
        if shape is None:
            try:
                shape = tuple(classifier.input_shape[1:])
            except (AttributeError, ValueError):  # not built
                shape = None
        if shape is None or None in shape:
            raise ValueError(
                "The classifier has no fixed input shape: pass "
                "`input_shape=(H, W, C)`."
            )
        learning_rate = LEARNING_RATE
        if selector is None:
            selector, learning_rate = _default_selector(
                tuple(shape), classifier
            )
        if objective.get("objective") is None:
            objective.setdefault("deletion_weight", DELETION_WEIGHT)
        if objective.get("hardening", True) is True:
            objective["hardening"] = DetectorHardening(**HARDENING)
        objective.setdefault("fill_noise", FILL_NOISE)
        classifier.trainable = False
        detector = copy_network(classifier, name=f"{classifier.name}_copy")
        # The classifier is the predictor, its copy the detector.
        super().__init__(
            selector,
            classifier,
            detector,
            input_shape=input_shape,
            predictor_output=classifier_output,
            detector_output=classifier_output,
            **objective,
        )
        self.classifier_output = classifier_output
        # The rate `fit` compiles with when `compile` was not called.
        self.default_learning_rate = learning_rate

    @property
    def classifier(self):
        """The explained classifier (the model's frozen `predictor`)."""
        return self.predictor

    # === Training ===

    def train_step(self, *args):
        if self.predictor.trainable_variables:
            raise ValueError(
                "The classifier has trainable variables. LearnedMask "
                "explains it as it is and never changes it: set "
                "`explainer.classifier.trainable = False` (the constructor "
                "does this; something set it back to True)."
            )
        return super().train_step(*args)

    def fit(self, x=None, y=None, *args, **kwargs):
        """Trains the selector against the frozen classifier.

        Keras' `fit` (see `ComprehensiveAttributionModel.fit`, whose steps
        it runs: the fill value, the hardening of the judge, the
        batch-norm refresh of the selector), with labels made optional:

        - `x` an array and `y=None`: the labels are the classifier's
          predictions on `x`;
        - `x` a dataset, `PyDataset` or generator yielding images alone:
          each batch is labelled with the classifier's predictions;
          yielding `(images, labels)`: those labels are explained;
        - `validation_data` likewise: images alone are labelled with the
          classifier's predictions.

        When not compiled yet, compiles with AdamW (weight decay 0.03) at
        `default_learning_rate`, decayed to zero over the `epochs` by a
        cosine when the number of steps is known (arrays, datasets of
        known length): 2e-3 when the selector started from a copy of the
        classifier (`default_selector`), else 1e-2.

        Returns:
            The Keras `History`.
        """
        kwargs = keras_arguments(keras.Model.fit, x, y, args, kwargs)
        batch_size = kwargs.get("batch_size") or 32
        if not self.compiled:
            self.compile(
                keras.optimizers.AdamW(
                    self._learning_rate(x, kwargs), weight_decay=0.03
                )
            )
        x, y = self._labelled(x, y, batch_size)
        if kwargs.get("validation_data") is not None:
            kwargs["validation_data"] = self._labelled_validation(
                kwargs["validation_data"], batch_size
            )
        return super().fit(x, y, **kwargs)

    def _learning_rate(self, x, kwargs):
        """`default_learning_rate`, decayed to zero over `fit` by a cosine
        when the number of steps is known."""
        steps = kwargs.get("steps_per_epoch")
        if steps is None and data_checks.is_dataset(x):
            steps = int(x.cardinality())
        elif steps is None and isinstance(x, keras.utils.PyDataset):
            steps = x.num_batches
        elif steps is None and hasattr(x, "shape"):
            kept = len(x) * (1.0 - float(kwargs.get("validation_split") or 0))
            steps = math.ceil(kept / (kwargs.get("batch_size") or 32))
        rate = self.default_learning_rate
        if steps is None or steps < 1:
            return rate
        total = int(steps) * int(kwargs.get("epochs", 1))
        return keras.optimizers.schedules.CosineDecay(rate, total)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """The objective's terms on data; labels default as in `fit`.

        Logs `accuracy` (the classifier on the masked-in images, against
        the labels: its own predictions by default), `masked_out_accuracy`
        (the judge on the masked-out images), `mask_area` and the loss
        terms. See `ComprehensiveAttributionModel.evaluate`.
        """
        kwargs = keras_arguments(keras.Model.evaluate, x, y, args, kwargs)
        x, y = self._labelled(x, y, kwargs.get("batch_size") or 32)
        if not self.compiled:
            self.compile()
        return super().evaluate(x, y, **kwargs)

    def predicted_labels(self, images, batch_size=32):
        """The classifier's arg-max class of each image, `(N,)` int32.

        Args:
            images: `(N, H, W, C)` images, float in `[0, 1]` or `0..255`.
            batch_size: int.
        """
        images = to_unit_range_numpy(images)
        outputs = self.predictor.predict(
            images, batch_size=batch_size, verbose=0
        )
        return np.asarray(outputs).argmax(axis=-1).astype("int32")

    def _labelled(self, x, y, batch_size):
        """`(x, y)` with the classifier's predictions where no labels are."""
        return own_labels.labelled(self, x, y, batch_size)

    def _labelled_validation(self, data, batch_size):
        """`validation_data`, labelled where it holds images alone."""
        return own_labels.labelled_validation(self, data, batch_size)

    # === Explanations ===

    def explain(
        self, images, labels=None, batch_size=32, verbose=0, output="ranked"
    ):
        """Maps of `images`, one forward pass of the selector per batch.

        The interface of the other explainers (`keras_compattr.explainers`)
        and of `ComprehensiveAttributionModel.explain`.

        Args:
            images: `(N, H, W, C)` images (float in `[0, 1]` or `0..255`),
                one image `(H, W, C)`, or a dataset of images.
            labels: accepted for the explainers' common interface and
                checked (one class in `[0, K)` per image), but the mask
                does not depend on it: the selector sees only the image,
                and its mask is the evidence of the class the classifier
                predicts (the class it was trained to explain).
            batch_size: int, images per forward pass.
            verbose: Keras verbosity of the prediction loop.
            output: `"ranked"` (the default): the selector's scores
                scaled per image into `[0, 1]` with the decision boundary
                at 0.5, so the map is above 0.5 exactly where the mask
                selects and orders pixels by score; `"mask"`, the soft
                mask `sigmoid(score)` the classifier sees, whose values
                saturate at 0 and 1 (in float32, or within a 0.01 grid
                for most pixels) and so tie where the scores do not;
                `"logits"` or `"binary"`. See
                `ComprehensiveAttributionModel.explain`. An explainer's
                map is read by ranking metrics (PxAP, deletion), hence
                the default: on the silhouettes benchmark the mask's ties
                cost it 9 points of PxAP (docs/benchmark.md).

        Returns:
            A float32 NumPy array `(N, H, W)` in `[0, 1]` (logits: real).
        """
        if labels is not None:
            self._check_labels(images, labels)
        return super().explain(
            images, batch_size=batch_size, verbose=verbose, output=output
        )

    def _check_labels(self, images, labels):
        labels = np.asarray(labels)
        if labels.ndim == 2:
            labels = labels.argmax(axis=-1)
        if labels.ndim != 1 or (
            np.ndim(images) == 4 and len(labels) != len(images)
        ):
            raise ValueError(
                "`labels` must hold one class per image. Received labels "
                f"of shape {labels.shape}."
            )
        if labels.size and (
            labels.min() < 0 or labels.max() >= self.num_classes
        ):
            raise ValueError(
                f"`labels` must lie in [0, {self.num_classes}). Received "
                f"values from {labels.min()} to {labels.max()}."
            )

    # === Config ===

    def get_config(self):
        config = super().get_config()
        for name in _OWN_ARGUMENTS:
            config.pop(name, None)
        # Without its compile state: the classifier is frozen here.
        config["classifier"] = frozen_config(self.predictor)
        config["classifier_output"] = self.classifier_output
        return config

    @classmethod
    def from_config(cls, config):
        names = ("classifier", "selector", "objective")
        # Files saved before `fill_noise` hold a flat fill (and no weight
        # for the noise).
        config = {"fill_noise": 0.0, **config}
        return cls(**deserialized_config(config, names))


__all__ = ["LearnedMask", "default_selector"]
