"""Localisation metrics: how well an attribution map matches ground truth.

These functions work on NumPy arrays from any attribution method.
"""

import numpy as np

from keras_compattr.metrics.maps import as_ground_truth
from keras_compattr.metrics.maps import as_maps
from keras_compattr.metrics.maps import check_same_shape
from keras_compattr.utils.argument_checks import check_number


def normalize_maps(attributions):
    """Rescales each map to `[0, 1]` by its min and max (constant maps -> 0).

    Args:
        attributions: `(N, H, W)` array.

    Returns:
        `(N, H, W)` float32 array.
    """
    maps = as_maps(attributions, "attributions")
    low = maps.min(axis=(1, 2), keepdims=True)
    high = maps.max(axis=(1, 2), keepdims=True)
    span = np.where(high > low, high - low, 1.0)
    return (maps - low) / span


def threshold_bins(scores, num_thresholds):
    """Bin of each score on the grid `tau_j = j / (num_thresholds - 1)`.

    Bin `j` holds the float32 scores in `[tau_j, tau_{j+1})` and the last
    bin holds 1.0, with each `tau_j` the float32 nearest `j / (T - 1)`. A
    score equal to a threshold (0.53 is `tau_53` with 101 thresholds) so
    falls in that threshold's bin: the first guess `floor(score * (T - 1))`
    can be one off in float32, and is corrected by comparing the score
    with the thresholds themselves. `PxAP` bins the same way in
    `keras.ops`.

    Args:
        scores: float32 NumPy scores in `[0, 1]`.
        num_thresholds: int >= 2, `T`.

    Returns:
        An int NumPy array of the shape of `scores`, in `[0, T - 1]`.
    """
    last = num_thresholds - 1
    thresholds = np.arange(num_thresholds, dtype="float32") / np.float32(last)
    scores = np.asarray(scores, "float32")
    bins = np.clip(np.floor(scores * np.float32(last)).astype(int), 0, last)
    upper = thresholds[np.minimum(bins + 1, last)]
    bins += (bins < last) & (scores >= upper)
    bins -= scores < thresholds[bins]
    return np.clip(bins, 0, last)


def pxap(scores, gt_masks, num_thresholds=101):
    """Pixel average precision (PxAP) of attribution scores, in `[0, 100]`.

    Pools every pixel of every image, then for thresholds
    `tau_j = j / (num_thresholds - 1)` counts pixels with score `>= tau_j`
    as positive and computes precision and recall of the ground-truth
    foreground; `PxAP = 100 * sum_j precision_j * (recall_j - recall_{j+1})`
    (Choe et al., 2020). Unlike the reference implementation, no pixel is
    dropped below the first threshold, so recall reaches 1 exactly.

    Maps already in `[0, 1]` (such as COMET masks) are used as they are;
    each map with a value outside `[0, 1]` is min-max normalised on its own
    first (per image: the other maps are left as they are). A score equal
    to a threshold counts as `>=` it: scores are compared with the float32
    thresholds themselves.

    Args:
        scores: `(N, H, W)` attribution maps.
        gt_masks: `(N, H, W)` ground truth in `{0, 1}` (other values
            raise a `ValueError`: the arguments swapped).
        num_thresholds: int >= 2, size of the threshold grid (101 gives
            steps of 0.01).

    Returns:
        A Python float. A perfect map gives 100; a random map gives about
        the foreground fraction times 100, and so does a constant map.

    Raises:
        ValueError: shapes differ, an input is empty or not finite, the
            ground truth has no foreground pixel at all (PxAP undefined),
            or `num_thresholds` is not an int >= 2.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.metrics import pxap
    >>> gt = np.zeros((1, 4, 4)); gt[0, :2] = 1
    >>> pxap(gt, gt)
    100.0

    Reference:
        [Choe et al., 2020](https://arxiv.org/abs/2001.07437)
    """
    num_thresholds = check_number(
        num_thresholds, "num_thresholds", low=2, integer=True
    )
    scores = as_maps(scores, "scores")
    foreground = as_ground_truth(gt_masks, first="scores")
    check_same_shape(scores, foreground, ("scores", "gt_masks"))
    # Only the maps with a value outside [0, 1] are rescaled, each alone.
    low = scores.min(axis=(1, 2), keepdims=True)
    outside = (low < 0.0) | (scores.max(axis=(1, 2), keepdims=True) > 1.0)
    if outside.any():
        scores = np.where(outside, normalize_maps(scores), scores)
    num_foreground = foreground.sum()
    if num_foreground == 0:
        raise ValueError(
            "`gt_masks` has no foreground pixel: PxAP is undefined."
        )
    bins = threshold_bins(scores, num_thresholds)
    fg_hist = np.bincount(bins[foreground], minlength=num_thresholds)
    bg_hist = np.bincount(bins[~foreground], minlength=num_thresholds)
    # Pixels with score >= tau_j.
    true_pos = np.cumsum(fg_hist[::-1])[::-1].astype("float64")
    false_pos = np.cumsum(bg_hist[::-1])[::-1].astype("float64")
    predicted = true_pos + false_pos
    precision = np.divide(
        true_pos, predicted, out=np.ones_like(true_pos), where=predicted > 0
    )
    recall = true_pos / num_foreground
    next_recall = np.append(recall[1:], 0.0)
    return float(100.0 * np.sum(precision * (recall - next_recall)))


def coverage(masks, part_masks, threshold=0.5):
    """How completely binarised masks cover each discriminative part.

    Args:
        masks: `(N, H, W)` masks or attribution maps.
        part_masks: `(N, P, H, W)` ground truth, one map per part. An
            empty map marks an absent part (images with fewer parts); it
            is left out of every figure.
        threshold: float, a pixel is selected when its mask value is
            `> threshold`.

    Returns:
        A dict: `"part_coverage"` (float, mean over parts and images of the
        fraction of each part's pixels that are selected),
        `"all_parts_covered"` (float, fraction of images where every part
        has at least half its pixels selected), `"per_part"` (`(N, P)`
        array of fractions, NaN for absent parts) and
        `"per_image_all_covered"` (`(N,)` bool).

    Example:

    >>> import numpy as np
    >>> from keras_compattr.metrics import coverage
    >>> parts = np.zeros((1, 2, 4, 4)); parts[0, 0, 0] = 1; parts[0, 1, 3] = 1
    >>> coverage(parts[:, 0], parts)["all_parts_covered"]
    0.0
    """
    threshold = check_number(threshold, "threshold")
    masks = as_maps(masks, "masks")
    part_masks = np.asarray(part_masks, "float32")
    if (
        part_masks.ndim != 4
        or part_masks.shape[0] != masks.shape[0]
        or (part_masks.shape[2:] != masks.shape[1:])
    ):
        raise ValueError(
            "`part_masks` must have shape (N, P, H, W) matching `masks` "
            f"{masks.shape}. Received shape {part_masks.shape}."
        )
    parts = part_masks > 0.5
    part_sizes = parts.sum(axis=(2, 3))
    present = part_sizes > 0
    if not np.all(present.any(axis=1)):
        raise ValueError(
            "Every image needs at least one part with a pixel in "
            "`part_masks`; empty part maps mark absent parts."
        )
    selected = (masks > threshold)[:, None]
    per_part = (selected & parts).sum(axis=(2, 3))
    per_part = per_part / np.maximum(part_sizes, 1)
    per_part = np.where(present, per_part, np.nan)
    all_covered = np.all((per_part >= 0.5) | ~present, axis=1)
    return {
        "part_coverage": float(np.nanmean(per_part)),
        "all_parts_covered": float(all_covered.mean()),
        "per_part": per_part,
        "per_image_all_covered": all_covered,
    }


def attribution_mass(attributions, gt_masks):
    """Mean share of (non-negative) attribution inside the ground truth.

    For each image, `sum(a * gt) / sum(a)` with `a = max(attribution, 0)`
    (the "relevance mass accuracy" of Arras et al., 2022, as in Quantus).
    Images whose attribution sums to zero count as 0, and so do images
    whose ground truth is empty (no attribution can lie inside it).

    Args:
        attributions: `(N, H, W)` maps.
        gt_masks: `(N, H, W)` in `{0, 1}` (other values raise a
            `ValueError`: the arguments swapped).

    Returns:
        A Python float in `[0, 1]`.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.metrics import attribution_mass
    >>> gt = np.zeros((1, 4, 4)); gt[0, :2] = 1
    >>> attribution_mass(np.ones((1, 4, 4)), gt)
    0.5

    Reference:
        [Arras et al., 2022](https://arxiv.org/abs/2003.07258)
    """
    maps = np.maximum(as_maps(attributions, "attributions"), 0.0)
    gt = as_ground_truth(gt_masks)
    check_same_shape(maps, gt, ("attributions", "gt_masks"))
    total = maps.sum(axis=(1, 2))
    inside = (maps * gt).sum(axis=(1, 2))
    share = np.divide(inside, total, out=np.zeros_like(total), where=total > 0)
    return float(share.mean())
