"""`CometObjective`: the COMET objective's settings and state as one object."""

import inspect

import keras
import numpy as np
from keras import ops

from keras_compattr.api_export import keras_compattr_export
from keras_compattr.losses import deletion
from keras_compattr.losses.area_control import AreaMultiplier
from keras_compattr.losses.objective import check_detector_term
from keras_compattr.losses.objective import comet_terms
from keras_compattr.utils.labels import is_one_hot


@keras_compattr_export("keras_compattr.losses.CometObjective")
class CometObjective:
    """The COMET selector and predictor losses, with their settings.

    Holds what `keras_compattr.losses.comet_objective` takes besides the
    networks' outputs, checks it once, and owns the adaptive area control
    (`area_budget="auto"`). `ComprehensiveAttributionModel(objective=...)`
    takes one; its keyword arguments `detector_weight`, `margin`, ... are
    the short form and build one.

    Args:
        detector_weight: float >= 0, weight `a` of the detector term.
            `0.0` gives the no-detector ablation (a plain cooperative
            selector and predictor).
        margin: float, margin `g` of the hinge.
        area_budget: `"auto"` (the default; evidence-adaptive, beyond
            the paper) or a float in `(0, 1]`, the share `t` of the image
            the mask may cover for free (the paper's recipe: `0.6`). A
            fixed budget pushes masks down towards `t` only, so the mask
            grows to `t` on whatever is cheap to select. `"auto"` replaces
            it by a pressure with no free share, `lambda * mean(-log(1 - m))`
            over all pixels (see `keras_compattr.losses.objective.
            area_pressure`), whose multiplier rises
            while the frozen detector is near chance on the masked-out
            image and falls when evidence leaks there (see
            `keras_compattr.losses.AreaMultiplier`; pass one to change
            its settings). `lambda` is logged as `area_multiplier`.
        area_weight: float >= 0, weight `b` of the area penalty (fixed
            budget only).
        detector_term: `"hinge"` (`max(L_P - L_D + g, 0)`, the default with
            a fixed budget), `"chance_hinge"` (the default with
            `area_budget="auto"`: pushes the detector's probability of the
            true class down to chance, without saturating for a confident
            detector), `"negative_ce"` (`-L_D`, the paper's form),
            `"entropy"` or `"kl_uniform"`.
        hinge_reduction: `"batch"` applies the hinge (or the chance
            hinge) to batch means, as the reference code does; `"sample"`
            applies it per image and then averages, so one confidently
            wrong detector output cannot switch the term off for the whole
            batch.
        smoothness_weight: float >= 0, weight of a total-variation penalty
            on the mask (off in the reference method).
        deletion_weight: float >= 0, weight of the deletion term (off in
            the reference method; `LearnedMask` turns it on): the
            predictor's probability of the class once the top `q` of each
            mask's pixels are removed, so that the mask ranks its pixels
            by how much the class depends on them (see
            `keras_compattr.losses.deletion`). It costs one more pass of
            the predictor per training step.
        deletion_fractions: `(lo, hi)`, the shares `q` of each mask the
            deletion term removes, spread over the batch. Not in the
            model's short form: set it with `objective=`.

    Raises:
        ValueError: an unknown `detector_term`, `hinge_reduction` or
            `area_budget`, or weights that are not finite (or negative).
        TypeError: weights that are not real numbers.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.losses import CometObjective
    >>> objective = CometObjective(area_budget=0.2, hinge_reduction="sample")
    >>> objective.detector_term
    'hinge'
    >>> logp = np.log(np.full((2, 4), 0.25, "float32"))
    >>> masks = np.full((2, 8, 8, 1), 0.5, "float32")
    >>> terms = objective(np.array([0, 1]), logp, logp, masks)
    >>> round(float(terms["selector_loss"]), 4)  # log 4 + 4 * 2 + 100 * 0.3
    39.3863
    >>> CometObjective.from_config(objective.get_config()).area_budget
    0.2

    Reference:
        [Zhang et al., 2024](https://arxiv.org/abs/2407.19308)
    """

    def __init__(
        self,
        detector_weight=4.0,
        margin=2.0,
        area_budget="auto",
        area_weight=100.0,
        detector_term=None,
        hinge_reduction="batch",
        smoothness_weight=0.0,
        deletion_weight=0.0,
        deletion_fractions=deletion.DELETION_FRACTIONS,
    ):
        adaptive = is_adaptive_budget(area_budget)
        if detector_term is None:
            detector_term = "chance_hinge" if adaptive else "hinge"
        check_detector_term(detector_term, hinge_reduction)
        if not adaptive and not (
            isinstance(area_budget, (int, float))
            and not isinstance(area_budget, bool)
            and 0.0 < float(area_budget) <= 1.0
        ):
            raise ValueError(
                "`area_budget` must be 'auto' (the smallest complete mask), "
                "a share of the image in (0, 1] (a fixed free budget, as in "
                "the paper: 0.6), or a `keras_compattr.losses."
                f"AreaMultiplier`. Received: area_budget={area_budget!r}"
            )
        check_weights(
            detector_weight=detector_weight,
            margin=margin,
            area_weight=area_weight,
            smoothness_weight=smoothness_weight,
            deletion_weight=deletion_weight,
        )
        self.detector_weight = float(detector_weight)
        self.margin = float(margin)
        self.area_budget = "auto" if adaptive else float(area_budget)
        self.area_weight = float(area_weight)
        self.detector_term = detector_term
        self.hinge_reduction = hinge_reduction
        self.smoothness_weight = float(smoothness_weight)
        self.deletion_weight = float(deletion_weight)
        self.deletion_fractions = deletion.check_fractions(deletion_fractions)
        # The adaptive area control, made by `build` for `"auto"`.
        self.area_control = (
            area_budget if isinstance(area_budget, AreaMultiplier) else None
        )
        # Whether the control was passed in (saved with its settings) or
        # is made by `build` with the defaults; not decided by its name.
        self._given_control = self.area_control is not None

    def build(self, num_classes):
        """Makes (or checks) the area control for `num_classes` classes.

        `ComprehensiveAttributionModel` calls this once it knows the
        number of classes; a fixed budget needs nothing.

        Raises:
            ValueError: a given `AreaMultiplier` made for another number
                of classes.
        """
        if self.area_budget != "auto":
            return
        if self.area_control is None:
            self.area_control = AreaMultiplier(
                int(num_classes), name="area_control"
            )
        elif self.area_control.num_classes != int(num_classes):
            raise ValueError(
                "The `AreaMultiplier` was made for "
                f"{self.area_control.num_classes} classes; the networks "
                f"score {num_classes}."
            )

    def __call__(
        self,
        labels,
        predictor_log_probs,
        detector_log_probs,
        masks,
        mask_logits=None,
        sample_weight=None,
        deletion_log_probs=None,
    ):
        """The objective's terms for one batch; changes no state.

        Args:
            labels: `(N,)` integer labels, or `(N, K)` one-hot or soft
                labels (label smoothing).
            predictor_log_probs: `(N, K)` log-probabilities of `P(x_s)`.
            detector_log_probs: `(N, K)` log-probabilities of `D(x_c)`.
            masks: `(N, H, W, 1)` masks in `[0, 1]`.
            mask_logits: optional pre-sigmoid scores of `masks`, for an
                exact area pressure with `area_budget="auto"`.
            sample_weight: optional `(N,)` weights of the batch means (see
                `keras_compattr.losses.comet_objective`).
            deletion_log_probs: `(N, K)` log-probabilities of the
                predictor on the images without the top of their masks
                (`keras_compattr.losses.deletion.top_fraction_masks`);
                needed when `deletion_weight > 0`.

        Returns:
            The dict of `keras_compattr.losses.comet_objective`, plus
            `"deletion_term"` when `deletion_weight > 0`. With
            `area_budget="auto"`, the area pressure is weighted by the
            area control's current multiplier; the training step moves
            the multiplier (`update_area_control`), not this call.
        """
        if self.area_budget == "auto":
            area_budget = None
            area_weight = ops.stop_gradient(self._built_control().multiplier)
        else:
            area_budget, area_weight = self.area_budget, self.area_weight
        terms = comet_terms(
            labels,
            predictor_log_probs,
            detector_log_probs,
            masks,
            detector_weight=self.detector_weight,
            margin=self.margin,
            area_budget=area_budget,
            area_weight=area_weight,
            detector_term=self.detector_term,
            hinge_reduction=self.hinge_reduction,
            smoothness_weight=self.smoothness_weight,
            mask_logits=mask_logits,
            sample_weight=sample_weight,
        )
        if self.deletion_weight:
            if deletion_log_probs is None:
                raise ValueError(
                    "`deletion_weight > 0` needs `deletion_log_probs`: the "
                    "predictor's log-probabilities on the images without "
                    "the top of their masks."
                )
            term = deletion.deletion_term(
                labels, deletion_log_probs, sample_weight
            )
            terms["selector_loss"] += self.deletion_weight * term
            terms["deletion_term"] = term
        return terms

    def _built_control(self):
        if self.area_control is None:
            raise ValueError(
                "`area_budget='auto'` needs the number of classes: call "
                "`objective.build(num_classes)` first."
            )
        return self.area_control

    def update_area_control(
        self, labels, detector_log_probs, predictor_log_probs=None
    ):
        """One step of the adaptive area control after a training batch.

        Called by the training step, once per batch; does nothing with a
        fixed budget.

        Args:
            labels: the batch's labels, as for `__call__`.
            detector_log_probs: `(N, K)` log-probabilities of the detector
                on the masked-out images.
            predictor_log_probs: optional `(N, K)` log-probabilities of
                the predictor on the masked-in images, for an area control
                with `min_masked_in_accuracy`.

        Returns:
            The new multiplier, or `None` with a fixed budget.
        """
        if self.area_budget != "auto":
            return None
        control = self._built_control()
        num_classes = detector_log_probs.shape[-1]
        labels = class_indices(labels, num_classes)
        masked_in = None
        if (
            predictor_log_probs is not None
            and control.min_masked_in_accuracy is not None
        ):
            masked_in = _accuracy(labels, predictor_log_probs)
        return control.update(
            _accuracy(labels, detector_log_probs),
            labels=labels,
            masked_in_accuracy=masked_in,
        )

    def get_config(self):
        # The area control made for `"auto"` is rebuilt by `build`; one
        # passed in is saved with its settings.
        custom_control = self._given_control
        return {
            "detector_weight": self.detector_weight,
            "margin": self.margin,
            "area_budget": keras.saving.serialize_keras_object(
                self.area_control
            )
            if custom_control
            else self.area_budget,
            "area_weight": self.area_weight,
            "detector_term": self.detector_term,
            "hinge_reduction": self.hinge_reduction,
            "smoothness_weight": self.smoothness_weight,
            "deletion_weight": self.deletion_weight,
            "deletion_fractions": list(self.deletion_fractions),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("area_budget"), dict):
            config["area_budget"] = keras.saving.deserialize_keras_object(
                config["area_budget"]
            )
        return cls(**config)


def is_adaptive_budget(area_budget):
    """Whether `area_budget` asks for the adaptive area control."""
    return isinstance(area_budget, AreaMultiplier) or (
        isinstance(area_budget, str) and area_budget == "auto"
    )


def class_indices(labels, num_classes):
    """`(N,)` class indices from `(N,)`/`(N, 1)` indices or one-hot rows.

    The `keras.ops` counterpart of `keras_compattr.utils.labels.
    integer_labels`, for use inside a training step.
    """
    if is_one_hot(labels.shape, num_classes):
        return ops.argmax(labels, axis=-1)
    return ops.reshape(labels, (-1,))


def check_weights(**weights):
    """Refuses non-finite weights of the objective, and negative ones.

    A negative `detector_weight` rewards the selector for leaving evidence
    to the detector, and at `-1` makes the predictor's gradient factor
    `1 + a` zero (a division by zero in the training step). `margin` may
    be negative.
    """
    for name, value in weights.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if number is None or isinstance(value, (bool, str, bytes)):
            raise TypeError(
                f"`{name}` must be a real number. Received: {name}={value!r}"
            )
        if not np.isfinite(number):
            raise ValueError(
                f"`{name}` must be a finite number. Received: {name}={value!r}"
            )
        if name != "margin" and number < 0.0:
            raise ValueError(
                f"`{name}` must be zero or positive: it weighs a penalty, "
                f"and a negative weight rewards what the penalty punishes. "
                f"Received: {name}={value!r}. Pass a value >= 0 (0 turns "
                "the term off)."
            )


def resolve_objective(objective, **short_form):
    """`objective`, or the `CometObjective` its short form describes.

    For `ComprehensiveAttributionModel`, which takes either `objective=`
    or the objective's settings as keyword arguments, not both.
    """
    if objective is None:
        return CometObjective(**short_form)
    if not isinstance(objective, CometObjective):
        raise TypeError(
            "`objective` must be a `keras_compattr.losses.CometObjective`. "
            f"Received an object of type {type(objective).__name__}."
        )
    defaults = inspect.signature(CometObjective).parameters
    given = [
        name
        for name, value in short_form.items()
        if value is not defaults[name].default
        and value != defaults[name].default
    ]
    if given:
        raise ValueError(
            "Pass the objective's settings either as `objective=` or as "
            f"keyword arguments, not both. Received `objective` and {given}."
        )
    return objective


def _accuracy(labels, log_probs):
    """The share of `(N,)` class indices that are `log_probs`' arg max."""
    correct = ops.equal(
        ops.cast(ops.argmax(log_probs, axis=-1), "int32"),
        ops.cast(labels, "int32"),
    )
    return ops.mean(ops.cast(correct, "float32"))
