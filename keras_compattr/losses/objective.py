"""The COMET objective as one pure function of the three networks' outputs."""

import math
from typing import Any
from typing import NamedTuple

from keras import ops

HINGE_REDUCTIONS = ("batch", "sample")


def log_probabilities(outputs, output_kind="logits"):
    """Turns classifier outputs into float32 log-probabilities.

    Args:
        outputs: `(N, K)` classifier outputs.
        output_kind: `"logits"`, `"probabilities"` (rows of a softmax) or
            `"auto"`, which treats a row as probabilities when all its
            entries lie in `[0, 1]` and sum to one, and as logits otherwise.

    Returns:
        `(N, K)` float32 log-probabilities.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.losses import log_probabilities
    >>> p = np.array([[0.25, 0.75]], "float32")
    >>> np.allclose(np.exp(log_probabilities(p, "probabilities")), p)
    True
    """
    outputs = ops.cast(outputs, "float32")
    if output_kind == "logits":
        return ops.log_softmax(outputs, axis=-1)
    as_probabilities = ops.log(ops.clip(outputs, 1e-12, 1.0))
    if output_kind == "probabilities":
        # Renormalise so that rounding in the softmax cannot bias the loss.
        return ops.log_softmax(as_probabilities, axis=-1)
    if output_kind != "auto":
        raise ValueError(
            "`output_kind` must be 'logits', 'probabilities' or 'auto'. "
            f"Received: output_kind={output_kind!r}"
        )
    in_range = ops.all((outputs >= 0.0) & (outputs <= 1.0), axis=-1)
    sums_to_one = ops.abs(ops.sum(outputs, axis=-1) - 1.0) < 1e-3
    is_probability = ops.expand_dims(in_range & sums_to_one, -1)
    return ops.log_softmax(
        ops.where(is_probability, as_probabilities, outputs), axis=-1
    )


def per_sample_cross_entropy(labels, log_probs):
    """Cross-entropy of each row, for integer or one-hot labels.

    Args:
        labels: `(N,)` or `(N, 1)` integer class indices, or `(N, K)`
            one-hot (or soft) targets.
        log_probs: `(N, K)` log-probabilities.

    Returns:
        `(N,)` float32 losses.
    """
    return -ops.sum(
        label_targets(labels, log_probs.shape[-1]) * log_probs, axis=-1
    )


def label_targets(labels, num_classes):
    """`(N, K)` float32 targets from integer or one-hot (soft) labels."""
    if (
        len(labels.shape) == 2
        and labels.shape[-1] == num_classes
        and (num_classes != 1)
    ):
        return ops.cast(labels, "float32")
    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    return ops.one_hot(labels, num_classes, dtype="float32")


def chance_hinge(labels, log_probs):
    """Per-image excess of the true-class probability over chance.

    `max(log(1 - 1/K) - log(1 - p_y), 0)`: zero once the classifier gives
    the true class at most chance probability `1/K`. Unlike the
    cross-entropy, `-log(1 - p_y)` does not saturate when the classifier is
    confidently right (its gradient in the logits tends to 1, not 0), so a
    confident detector that still sees the class keeps pushing.

    With soft labels (label smoothing), `p_y` is the targets' expected
    probability `sum_k t_k p_k`, which is `1/K` for a classifier at chance
    whatever the targets.

    Args:
        labels: `(N,)` or `(N, 1)` integer class indices, or `(N, K)`
            one-hot (or soft) targets.
        log_probs: `(N, K)` log-probabilities.

    Returns:
        `(N,)` float32 values.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.losses import chance_hinge
    >>> logp = np.log(np.array([[0.25, 0.75], [0.9, 0.1]], "float32"))
    >>> [round(float(v), 4) for v in chance_hinge(np.array([1, 1]), logp)]
    [0.6931, 0.0]
    """
    num_classes = log_probs.shape[-1]
    log_rest = _log_rest(labels, log_probs)
    return ops.relu(math.log(1.0 - 1.0 / num_classes) - log_rest)


def _log_rest(labels, log_probs):
    """`log(1 - p_y)` per image, `(N,)`, computed without cancellation.

    `1 - p_y = sum_k (1 - t_k) p_k` for targets `t` that sum to one, so
    the log is a log-sum-exp of `log p_k + log(1 - t_k)`: exact for
    confident rows, where `1 - exp(log p_y)` rounds to 0 in float32 and
    its gradient vanishes, and defined for soft targets too.
    """
    targets = label_targets(labels, log_probs.shape[-1])
    log_other = ops.log(ops.maximum(1.0 - targets, 1e-30))
    return ops.logsumexp(ops.add(log_probs, log_other), axis=-1)


def batch_chance_hinge(labels, log_probs, sample_weight=None):
    """Excess of the batch-mean true-class probability over chance.

    `max(log(1 - 1/K) - log(1 - mean_i p_i), 0)` with `p_i` the probability
    of image `i`'s true class: zero while the classifier is, on average
    over the batch, no better than chance. One image whose left-out
    clutter happens to look like its class is not punished as long as the
    batch as a whole carries no class information, so the selector is not
    pushed to cover look-alike distractors.

    Args:
        labels: `(N,)` or `(N, 1)` integer class indices, or `(N, K)`
            one-hot (or soft) targets.
        log_probs: `(N, K)` log-probabilities.
        sample_weight: optional `(N,)` weights of the batch mean.

    Returns:
        A float32 scalar.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.losses import batch_chance_hinge
    >>> logp = np.log(np.array([[0.25, 0.75], [0.9, 0.1]], "float32"))
    >>> round(float(batch_chance_hinge(np.array([1, 1]), logp)), 4)
    0.0
    >>> round(float(batch_chance_hinge(np.array([1, 0]), logp)), 4)
    1.0498
    """
    num_classes = log_probs.shape[-1]
    # log(1 - mean_i p_i) = log(mean_i (1 - p_i)), in log space: a
    # confident detector (true class ahead by 17 logits or more) would
    # round 1 - p to 0 in float32 and lose the gradient. With weights,
    # the mean is sum_i w_i (1 - p_i) / sum_i w_i.
    log_rest = _log_rest(labels, log_probs)
    if sample_weight is None:
        weights = ops.ones_like(log_rest)
    else:
        weights = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
    log_weights = ops.log(ops.maximum(weights, 1e-30))
    log_mean_rest = ops.logsumexp(ops.add(log_rest, log_weights)) - ops.log(
        ops.sum(weights)
    )
    return ops.relu(math.log(1.0 - 1.0 / num_classes) - log_mean_rest)


def weighted_mean(values, sample_weight=None):
    """The mean of `(N,)` values, weighted by `sample_weight` if given.

    `sum_i w_i v_i / sum_i w_i`: the weights set each image's share of the
    batch mean, whatever their scale, so that a hinge on batch means keeps
    its margin (Keras' losses divide by `N` instead).
    """
    if sample_weight is None:
        return ops.mean(values)
    weights = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
    return ops.divide_no_nan(ops.sum(weights * values), ops.sum(weights))


def total_variation(masks):
    """Mean absolute difference between neighbouring mask pixels, per image.

    Args:
        masks: `(N, H, W, 1)` masks.

    Returns:
        `(N,)` float32 values.
    """
    masks = ops.cast(masks, "float32")
    dy = ops.abs(masks[:, 1:, :, :] - masks[:, :-1, :, :])
    dx = ops.abs(masks[:, :, 1:, :] - masks[:, :, :-1, :])
    return ops.mean(dy, axis=(1, 2, 3)) + ops.mean(dx, axis=(1, 2, 3))


class DetectorInputs(NamedTuple):
    """What a detector term is computed from, for a batch of `N` images.

    Attributes:
        labels: `(N,)` integer labels or `(N, K)` one-hot labels.
        predictor_losses: `(N,)` cross-entropies of `P(x_s)`.
        detector_losses: `(N,)` cross-entropies of `D(x_c)`.
        predictor_loss: `L_P`, the mean of `predictor_losses`.
        detector_loss: `L_D`, the mean of `detector_losses`.
        detector_log_probs: `(N, K)` log-probabilities of `D(x_c)`.
        margin: the hinge margin `g`.
        hinge_reduction: `"batch"` or `"sample"`.
        sample_weight: `None` or `(N,)` weights of the batch means.
    """

    labels: Any
    predictor_losses: Any
    detector_losses: Any
    predictor_loss: Any
    detector_loss: Any
    detector_log_probs: Any
    margin: Any
    hinge_reduction: str
    sample_weight: Any = None


class DetectorTerm(NamedTuple):
    """A detector term `T` and what its gradient routing needs to know.

    Attributes:
        function: `DetectorInputs -> scalar`, the term.
        uses_predictor: whether the term depends on the predictor's output
            (then the selector loss's gradient on the predictor is not
            `L_P`'s, and the training step must route it).
        predictor_factor: `None`, or a function `(term value, detector
            weight, hinge reduction) -> factor or None`: the factor by which
            the selector loss's gradient on the predictor exceeds `L_P`'s,
            where one exists (`None`: the step pulls the forward pass back
            once per loss).
    """

    function: Any
    uses_predictor: bool
    predictor_factor: Any = None


_DETECTOR_TERMS = {}


def _detector_term(name, uses_predictor=False, predictor_factor=None):
    """Registers a function `DetectorInputs -> scalar` as a term `T`.

    Each term declares whether it depends on the predictor's output, which
    decides how the training step routes gradients (see `DetectorTerm`).
    """

    def register(function):
        _DETECTOR_TERMS[name] = DetectorTerm(
            function, uses_predictor, predictor_factor
        )
        return function

    return register


def detector_term(name):
    """The `DetectorTerm` registered under `name`."""
    return _DETECTOR_TERMS[name]


def _hinge_factor(term, detector_weight, hinge_reduction):
    # Batch means: S = L_P + a * relu(L_P - L_D + g) + ..., so its gradient
    # on the predictor is (1 + a * [hinge active]) times L_P's. Per image,
    # each image has its own factor: none for the batch.
    if hinge_reduction == "sample":
        return None
    return 1.0 + detector_weight * ops.cast(term > 0.0, "float32")


@_detector_term("hinge", uses_predictor=True, predictor_factor=_hinge_factor)
def _hinge(inputs):
    if inputs.hinge_reduction == "batch":
        return ops.relu(
            inputs.predictor_loss - inputs.detector_loss + inputs.margin
        )
    return weighted_mean(
        ops.relu(
            inputs.predictor_losses - inputs.detector_losses + inputs.margin
        ),
        inputs.sample_weight,
    )


@_detector_term("chance_hinge")
def _chance_hinge(inputs):
    if inputs.hinge_reduction == "batch":
        return batch_chance_hinge(
            inputs.labels, inputs.detector_log_probs, inputs.sample_weight
        )
    return weighted_mean(
        chance_hinge(inputs.labels, inputs.detector_log_probs),
        inputs.sample_weight,
    )


@_detector_term("negative_ce")
def _negative_ce(inputs):
    return -inputs.detector_loss


@_detector_term("entropy")
def _entropy(inputs):
    log_probs = inputs.detector_log_probs
    entropy = -ops.sum(ops.exp(log_probs) * log_probs, axis=-1)
    return weighted_mean(
        math.log(log_probs.shape[-1]) - entropy, inputs.sample_weight
    )


@_detector_term("kl_uniform")
def _kl_uniform(inputs):
    log_probs = inputs.detector_log_probs
    log_k = math.log(log_probs.shape[-1])
    return weighted_mean(
        -log_k - ops.mean(log_probs, axis=-1), inputs.sample_weight
    )


# The names `detector_term` takes, in the order the docs list them.
DETECTOR_TERMS = tuple(_DETECTOR_TERMS)


def comet_objective(
    labels,
    predictor_log_probs,
    detector_log_probs,
    masks,
    detector_weight=4.0,
    margin=2.0,
    area_budget=0.6,
    area_weight=100.0,
    detector_term="hinge",
    hinge_reduction="batch",
    smoothness_weight=0.0,
    mask_logits=None,
    sample_weight=None,
):
    """The COMET selector and predictor losses (SPEC section 2).

    With `L_P = CE(P(x_s), y)`, `L_D = CE(D(x_c), y)` and
    `R = mean_i max(area(m_i) - t, 0)`:

        selector loss  = L_P + a * T + b * R (+ smoothness * TV(m))
        predictor loss = L_P

    where the detector term `T` is, by `detector_term`:

    - `"hinge"`: `max(L_P - L_D + g, 0)`, on batch means
      (`hinge_reduction="batch"`, as the reference code) or per image and
      then averaged (`"sample"`);
    - `"chance_hinge"`: `max(log(1 - 1/K) - log(1 - p), 0)` with `p` the
      detector's probability of the true class on `x_c`, zero once it is
      at most chance, and not saturating when the detector is confidently
      right: on the batch-mean probability (`hinge_reduction="batch"`, see
      `batch_chance_hinge`) or per image and then averaged (`"sample"`,
      see `chance_hinge`);
    - `"negative_ce"`: `-L_D` (the paper's `L_P - a * L_D`);
    - `"entropy"`: `log K - H(D(x_c))`, low when the detector is unsure;
    - `"kl_uniform"`: `KL(uniform || D(x_c))`.

    The function only computes values; which parameters receive the
    gradient of which loss is decided by the caller.

    Args:
        labels: `(N,)` integer labels or `(N, K)` one-hot labels.
        predictor_log_probs: `(N, K)` log-probabilities of `P(x_s)`.
        detector_log_probs: `(N, K)` log-probabilities of `D(x_c)`.
        masks: `(N, H, W, 1)` masks in `[0, 1]`.
        detector_weight: `a`.
        margin: `g`.
        area_budget: `t`, or `None` for an area pressure with no free
            share, `R = mean(-log(1 - m))` over all pixels (the adaptive
            mode, where `area_weight` is the current multiplier; see
            `area_pressure`).
        area_weight: `b`, a float or a scalar tensor.
        detector_term: one of `"hinge"`, `"negative_ce"`, `"entropy"`,
            `"kl_uniform"`.
        hinge_reduction: `"batch"` or `"sample"`.
        smoothness_weight: weight of the total variation of the mask.
        mask_logits: optional `(N, H, W, 1)` pre-sigmoid scores of
            `masks`; the area pressure is then computed from them exactly,
            also where the sigmoid saturates.
        sample_weight: optional `(N,)` weights: every batch mean (`L_P`,
            `L_D`, the detector term, the area and smoothness penalties)
            is then `sum_i w_i v_i / sum_i w_i`. `class_weight` and
            `sample_weight` of `fit` arrive here.

    Returns:
        A dict of float32 tensors: scalars `"selector_loss"`,
        `"predictor_loss"`, `"detector_loss"`, `"detector_term"`,
        `"area_penalty"`, `"mask_area"`, `"smoothness"`, and `(N,)`
        per-image `"mask_areas"`.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.losses import comet_objective
    >>> logp = np.log(np.full((2, 4), 0.25, "float32"))
    >>> terms = comet_objective(
    ...     np.array([0, 1]), logp, logp, np.full((2, 8, 8, 1), 0.5, "float32")
    ... )
    >>> round(float(terms["selector_loss"]), 4)  # log 4 + 4 * 2
    9.3863

    Reference:
        [Zhang et al., 2024](https://arxiv.org/abs/2407.19308)
    """
    check_detector_term(detector_term, hinge_reduction)
    settings = (detector_weight, margin, area_budget, area_weight)
    return comet_terms(
        labels,
        predictor_log_probs,
        detector_log_probs,
        masks,
        *settings,
        detector_term,
        hinge_reduction,
        smoothness_weight,
        mask_logits,
        sample_weight,
    )


def area_pressure(masks, mask_logits=None):
    """Per-image area pressure `mean(-log(1 - m))`, without a free share.

    Its gradient with respect to a pixel's mask logit `z` is `m` itself
    (`-log(1 - sigmoid(z))` is `softplus(z)`), so a pixel the selector has
    fully selected keeps being pushed back. The plain mean area has the
    gradient `m (1 - m)`, which vanishes once the sigmoid saturates: the
    pressure then only erodes the edges of every selected region alike,
    and never asks whether a whole region is needed.

    Args:
        masks: `(N, H, W, 1)` masks in `[0, 1]`.
        mask_logits: optional `(N, H, W, 1)` pre-sigmoid scores of
            `masks`, used when given (exact for any logit).

    Returns:
        `(N,)` float32 pressures, each `>= 0` and zero for an empty mask.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.losses.objective import area_pressure
    >>> masks = np.full((1, 2, 2, 1), 0.5, "float32")
    >>> round(float(area_pressure(masks)[0]), 4)  # log 2
    0.6931
    """
    if mask_logits is not None:
        values = ops.softplus(ops.cast(mask_logits, "float32"))
    else:
        unselected = ops.clip(1.0 - ops.cast(masks, "float32"), 1e-7, 1.0)
        values = -ops.log(unselected)
    return ops.mean(values, axis=(1, 2, 3))


def check_detector_term(detector_term, hinge_reduction):
    """Refuses an unknown detector term or hinge reduction.

    Raises:
        ValueError: naming the choices.
    """
    if detector_term not in DETECTOR_TERMS:
        raise ValueError(
            f"`detector_term` must be one of {DETECTOR_TERMS}. "
            f"Received: detector_term={detector_term!r}"
        )
    if hinge_reduction not in HINGE_REDUCTIONS:
        raise ValueError(
            f"`hinge_reduction` must be one of {HINGE_REDUCTIONS}. "
            f"Received: hinge_reduction={hinge_reduction!r}"
        )


def comet_terms(
    labels,
    predictor_log_probs,
    detector_log_probs,
    masks,
    detector_weight,
    margin,
    area_budget,
    area_weight,
    detector_term,
    hinge_reduction,
    smoothness_weight,
    mask_logits=None,
    sample_weight=None,
):
    """`comet_objective` without the checks of its string arguments.

    For callers that checked them once already (`CometObjective`).
    """
    predictor_losses = per_sample_cross_entropy(labels, predictor_log_probs)
    detector_losses = per_sample_cross_entropy(labels, detector_log_probs)
    predictor_loss = weighted_mean(predictor_losses, sample_weight)
    detector_loss = weighted_mean(detector_losses, sample_weight)

    term = _DETECTOR_TERMS[detector_term].function(
        DetectorInputs(
            labels,
            predictor_losses,
            detector_losses,
            predictor_loss,
            detector_loss,
            detector_log_probs,
            margin,
            hinge_reduction,
            sample_weight,
        )
    )

    masks = ops.cast(masks, "float32")
    mask_areas = ops.mean(masks, axis=(1, 2, 3))
    if area_budget is None:
        area_penalty = area_pressure(masks, mask_logits)
    else:
        area_penalty = ops.relu(mask_areas - area_budget)
    area_penalty = weighted_mean(area_penalty, sample_weight)
    selector_loss = (
        predictor_loss + detector_weight * term + area_weight * area_penalty
    )
    if smoothness_weight:
        smoothness = weighted_mean(total_variation(masks), sample_weight)
        selector_loss = selector_loss + smoothness_weight * smoothness
    else:
        smoothness = ops.zeros((), "float32")
    return {
        "selector_loss": selector_loss,
        "predictor_loss": predictor_loss,
        "detector_loss": detector_loss,
        "detector_term": term,
        "area_penalty": area_penalty,
        "mask_area": ops.mean(mask_areas),
        "smoothness": smoothness,
        "mask_areas": mask_areas,
    }
