"""The deletion term: the top of a mask is the evidence the model needs most.

COMET's objective asks the mask to hold *all* of the evidence, and the
area pressure keeps it small; neither says which pixels inside the mask
matter most. A learned mask is therefore a plateau, and metrics that rank
pixels (deletion at 10%, PxAP) see ties, or an order the objective never
asked for. The deletion term asks for that order: it removes the top `q`
of each mask's pixels (by the selector's score), shows the predictor what
is left, and punishes the selector while the predictor still gives the
class there. The top of the mask then becomes the pixels whose removal
costs the class most, as the deletion metric measures
(`keras_compattr.metrics.deletion_accuracy`).

The shares `q` are spread over `fractions` across the batch (the `i`-th
of `N` images gets `lo + (hi - lo) * (i + 0.5) / N`); with shuffled data
each image sees a different share every epoch, and no random state is
needed in the training step.
"""

from keras import ops

from keras_compattr.losses.objective import label_targets
from keras_compattr.losses.objective import weighted_mean

# Shares of each mask removed by the deletion term, low and high.
DELETION_FRACTIONS = (0.05, 0.2)
# Width of the soft threshold, in per-image standard deviations of the
# selector's scores: the gradient reaches the pixels near the threshold.
TEMPERATURE = 0.5


def top_fraction_masks(mask_logits, fractions=DELETION_FRACTIONS):
    """Soft masks of the top share of each image's mask scores.

    Args:
        mask_logits: `(N, H, W, 1)` pre-sigmoid mask scores.
        fractions: `(lo, hi)`, shares in `(0, 1)`: image `i` of `N` keeps
            its top `lo + (hi - lo) * (i + 0.5) / N` of pixels.

    Returns:
        `(N, H, W, 1)` float32 masks, near 1 on each image's top share and
        near 0 elsewhere: `sigmoid((z - t) / s)` with `t` halfway between
        the last score kept and the next, and `s` half the standard
        deviation of the image's scores. Neither `t` nor `s` passes a
        gradient, so the gradient moves each pixel's score across its
        image's threshold.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.losses.deletion import top_fraction_masks
    >>> scores = np.arange(100, dtype="float32").reshape(1, 10, 10, 1)
    >>> top = np.asarray(top_fraction_masks(scores, (0.1, 0.1)))
    >>> int((top > 0.5).sum())  # the 10 highest scores
    10
    >>> bool(top[0, 9, 9, 0] > 0.5 and top[0, 0, 0, 0] < 0.01)
    True
    """
    scores = ops.cast(mask_logits, "float32")
    shape = ops.shape(scores)
    pixels = scores.shape[1] * scores.shape[2]
    flat = ops.reshape(scores, (-1, pixels))
    count = ops.shape(flat)[0]
    low, high = (float(f) for f in fractions)
    position = (ops.cast(ops.arange(count), "float32") + 0.5) / ops.cast(
        count, "float32"
    )
    shares = low + (high - low) * position
    kept = ops.clip(ops.cast(ops.round(shares * pixels), "int32"), 1, pixels)
    # Halfway between the `kept`-th and the next largest score of each
    # image (from an ascending sort): the top `kept` are above it.
    ascending = ops.sort(flat, axis=-1)
    last = ops.expand_dims(pixels - kept, -1)
    below = ops.maximum(last - 1, 0)
    threshold = 0.5 * (
        ops.take_along_axis(ascending, last, axis=-1)
        + ops.take_along_axis(ascending, below, axis=-1)
    )
    spread = ops.std(flat, axis=-1, keepdims=True) + 1e-3
    width = ops.stop_gradient(TEMPERATURE * spread)
    top = ops.sigmoid((flat - ops.stop_gradient(threshold)) / width)
    return ops.reshape(top, shape)


def deletion_term(labels, log_probs, sample_weight=None):
    """Mean probability of the class once the top of each mask is removed.

    Args:
        labels: `(N,)` integer labels, or `(N, K)` one-hot or soft labels.
        log_probs: `(N, K)` log-probabilities of the predictor on the
            images without the top of their masks
            (`top_fraction_masks`).
        sample_weight: optional `(N,)` weights of the mean.

    Returns:
        A float32 scalar in `[0, 1]`: 0 when the class is gone from every
        image, 1 when the predictor still gives it for sure. The
        probability, not its logarithm, so that no image that keeps its
        class outweighs the batch (as the accuracy it stands for).

    Example:

    >>> import numpy as np
    >>> from keras_compattr.losses.deletion import deletion_term
    >>> log_probs = np.log(np.array([[0.8, 0.2], [0.5, 0.5]], "float32"))
    >>> round(float(deletion_term(np.array([0, 1]), log_probs)), 4)
    0.65
    """
    targets = label_targets(labels, log_probs.shape[-1])
    log_probs = ops.cast(log_probs, "float32")
    probabilities = ops.sum(targets * ops.exp(log_probs), axis=-1)
    return weighted_mean(probabilities, sample_weight)


def check_fractions(fractions):
    """`fractions` as two floats `0 < lo <= hi < 1`, or a `ValueError`."""
    try:
        low, high = (float(f) for f in fractions)
    except (TypeError, ValueError):
        low = high = None
    if low is None or not 0.0 < low <= high < 1.0:
        raise ValueError(
            "`deletion_fractions` must be two shares `(lo, hi)` with "
            f"0 < lo <= hi < 1. Received: deletion_fractions={fractions!r}"
        )
    return (low, high)
