"""Streaming localisation metrics as `keras.metrics.Metric` subclasses.

They accumulate over batches (`update_state`), so PxAP and coverage can be
computed over a test set too large to hold in memory, inside a custom
evaluation loop or under `jit`. All math is in `keras.ops`.
"""

import keras
from keras import ops

from keras_compattr.api_export import keras_compattr_export
from keras_compattr.utils.argument_checks import check_number

# Histogram counts are kept exactly as `high * _CARRY + low` in two int32
# variables, so that no bin overflows before 2**51 pixels.
_CARRY = 2**20
STATISTICS = ("part_coverage", "all_parts_covered")


def _as_map_tensor(array, name):
    array = ops.convert_to_tensor(array)
    if len(array.shape) == 4 and array.shape[-1] == 1:
        array = ops.squeeze(array, axis=-1)
    if len(array.shape) == 2:
        array = ops.expand_dims(array, 0)
    if len(array.shape) != 3:
        raise ValueError(
            f"`{name}` must have shape (N, H, W) or (N, H, W, 1). "
            f"Received shape {array.shape}."
        )
    return ops.cast(array, "float32")


def _check_compatible(a, b, names):
    if len(a.shape) != len(b.shape):
        raise ValueError(
            f"`{names[0]}` and `{names[1]}` must have matching shapes. "
            f"Received {tuple(a.shape)} and {tuple(b.shape)}."
        )
    for dim_a, dim_b in zip(a.shape, b.shape):
        if dim_a is not None and dim_b is not None and dim_a != dim_b:
            raise ValueError(
                f"`{names[0]}` and `{names[1]}` must have matching shapes. "
                f"Received {tuple(a.shape)} and {tuple(b.shape)}."
            )


def _no_sample_weight(sample_weight, name):
    if sample_weight is not None:
        raise ValueError(f"`{name}` does not support `sample_weight`.")


@keras_compattr_export("keras_compattr.metrics.PxAP")
class PxAP(keras.metrics.Metric):
    """Streaming pixel average precision, in `[0, 100]`.

    Keeps, in metric variables, a histogram of mask scores over
    `num_thresholds` bins separately for ground-truth foreground and
    background pixels; `result()` turns it into
    `PxAP = 100 * sum_j precision_j * (recall_j - recall_{j+1})` with the
    same threshold grid and binning as `keras_compattr.metrics.pxap`, so
    both give the same value on the same data (to float32 rounding).

    As in `pxap`, scores in `[0, 1]` are used as they are, and each map
    with a value outside `[0, 1]` is min-max normalised on its own (per
    image, so batching does not change the result). `result()` is 0 while no
    foreground pixel has been seen, and NaN once any non-finite score has
    been seen (until `reset_state`), where `pxap` raises.

    Args:
        num_thresholds: int >= 2, size of the threshold grid (101 gives
            steps of 0.01).
        name: string, name of the metric.
        dtype: dtype of the result.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.metrics import PxAP
    >>> gt = np.zeros((2, 4, 4), "float32"); gt[:, :2] = 1
    >>> metric = PxAP()
    >>> metric.update_state(gt[:1], gt[:1])
    >>> metric.update_state(gt[1:], gt[1:])
    >>> round(float(metric.result()), 4)
    100.0

    Reference:
        [Choe et al., 2020](https://arxiv.org/abs/2001.07437), with every
        pixel counted (no pixel dropped below the first threshold).
    """

    def __init__(self, num_thresholds=101, name="pxap", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_thresholds = check_number(
            num_thresholds, "num_thresholds", low=2, integer=True
        )
        # Row 0 counts background pixels, row 1 foreground pixels.
        self.low_counts = self.add_variable(
            shape=(2, self.num_thresholds),
            initializer="zeros",
            dtype="int32",
            name="low_counts",
        )
        self.high_counts = self.add_variable(
            shape=(2, self.num_thresholds),
            initializer="zeros",
            dtype="int32",
            name="high_counts",
        )
        self.invalid_count = self.add_variable(
            shape=(), initializer="zeros", dtype="int32", name="invalid_count"
        )

    def update_state(self, y_true_masks, y_pred_masks, sample_weight=None):
        """Adds a batch of ground truth and mask scores.

        Args:
            y_true_masks: `(N, H, W)` ground truth in `{0, 1}`.
            y_pred_masks: `(N, H, W)` mask scores or attribution maps.
            sample_weight: must be `None`.
        """
        _no_sample_weight(sample_weight, "PxAP")
        gt = _as_map_tensor(y_true_masks, "y_true_masks")
        scores = _as_map_tensor(y_pred_masks, "y_pred_masks")
        _check_compatible(gt, scores, ("y_true_masks", "y_pred_masks"))
        self.invalid_count.assign_add(
            ops.sum(ops.cast(ops.logical_not(ops.isfinite(scores)), "int32"))
        )
        # Only the maps with a value outside [0, 1] are rescaled, each alone.
        low = ops.min(scores, axis=(1, 2), keepdims=True)
        high = ops.max(scores, axis=(1, 2), keepdims=True)
        out_of_range = ops.logical_or(low < 0.0, high > 1.0)
        span = ops.where(high > low, high - low, ops.ones_like(high))
        scores = ops.where(out_of_range, (scores - low) / span, scores)
        bins = self._bins(scores)
        foreground = ops.cast(gt > 0.5, "int32")
        index = ops.reshape(bins + self.num_thresholds * foreground, (-1,))
        counts = ops.segment_sum(
            ops.ones_like(index),
            index,
            num_segments=2 * self.num_thresholds,
        )
        counts = ops.reshape(counts, (2, self.num_thresholds))
        total_low = self.low_counts + counts
        self.high_counts.assign(self.high_counts + total_low // _CARRY)
        self.low_counts.assign(total_low % _CARRY)

    def _bins(self, scores):
        """`metrics.localization.threshold_bins`, in `keras.ops`."""
        last = self.num_thresholds - 1
        thresholds = ops.arange(self.num_thresholds, dtype="float32")
        thresholds = thresholds / float(last)
        bins = ops.clip(
            ops.cast(ops.floor(scores * float(last)), "int32"), 0, last
        )
        upper = ops.take(thresholds, ops.minimum(bins + 1, last))
        bins = bins + ops.cast(
            ops.logical_and(bins < last, scores >= upper), "int32"
        )
        bins = bins - ops.cast(scores < ops.take(thresholds, bins), "int32")
        return ops.clip(bins, 0, last)

    def result(self):
        counts = ops.cast(self.high_counts, "float32") * float(
            _CARRY
        ) + ops.cast(self.low_counts, "float32")
        background, foreground = counts[0], counts[1]
        true_pos = ops.flip(ops.cumsum(ops.flip(foreground, 0)), 0)
        false_pos = ops.flip(ops.cumsum(ops.flip(background, 0)), 0)
        predicted = true_pos + false_pos
        precision = ops.where(
            predicted > 0,
            true_pos / ops.maximum(predicted, 1.0),
            ops.ones_like(predicted),
        )
        num_foreground = ops.sum(foreground)
        recall = true_pos / ops.maximum(num_foreground, 1.0)
        next_recall = ops.concatenate([recall[1:], ops.zeros((1,))], axis=0)
        value = 100.0 * ops.sum(precision * (recall - next_recall))
        value = ops.where(num_foreground > 0, value, ops.zeros_like(value))
        value = ops.where(
            self.invalid_count > 0, float("nan"), ops.cast(value, "float32")
        )
        return ops.cast(value, self.dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"num_thresholds": self.num_thresholds})
        return config


@keras_compattr_export("keras_compattr.metrics.Coverage")
class Coverage(keras.metrics.Metric):
    """Streaming coverage of discriminative parts by binarised masks.

    Each update takes the ground truth of every part, `(N, P, H, W)`, and
    the masks `(N, H, W)`; a pixel is selected when its mask value is
    `> threshold`. The metric accumulates, as `keras_compattr.metrics.
    coverage` computes on whole arrays:

    - `"part_coverage"`: mean over parts and images of the fraction of each
      part's pixels that are selected;
    - `"all_parts_covered"`: fraction of images where every part has at
      least half its pixels selected.

    `result()` returns the one chosen by `statistic` (use two metrics for
    both). Unlike `coverage`, which raises, a part with no pixel is left
    out of `"part_coverage"` and counts as covered, and non-finite mask
    values make `result()` NaN (until `reset_state`).

    Args:
        threshold: float, a pixel is selected when its mask is `> threshold`.
        statistic: `"part_coverage"` or `"all_parts_covered"`.
        name: string, name of the metric.
        dtype: dtype of the result.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.metrics import Coverage
    >>> parts = np.zeros((1, 2, 4, 4), "float32")
    >>> parts[0, 0, 0] = 1; parts[0, 1, 3] = 1
    >>> metric = Coverage(statistic="all_parts_covered")
    >>> metric.update_state(parts, parts[:, 0])
    >>> float(metric.result())
    0.0

    Reference:
        COMET, [Zhang et al., 2024](https://arxiv.org/abs/2407.19308),
        the incompleteness evaluation on two-part images.
    """

    def __init__(
        self,
        threshold=0.5,
        statistic="part_coverage",
        name="coverage",
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        if statistic not in STATISTICS:
            raise ValueError(
                f"`statistic` must be one of {STATISTICS}. "
                f"Received: statistic={statistic!r}"
            )
        self.threshold = check_number(threshold, "threshold")
        self.statistic = statistic
        self.part_fraction_sum = self.add_variable(
            shape=(), initializer="zeros", name="part_fraction_sum"
        )
        self.part_count = self.add_variable(
            shape=(), initializer="zeros", name="part_count"
        )
        self.covered_count = self.add_variable(
            shape=(), initializer="zeros", name="covered_count"
        )
        self.image_count = self.add_variable(
            shape=(), initializer="zeros", name="image_count"
        )
        self.invalid_count = self.add_variable(
            shape=(), initializer="zeros", name="invalid_count"
        )

    def update_state(self, y_true_masks, y_pred_masks, sample_weight=None):
        """Adds a batch of part masks and predicted masks.

        Args:
            y_true_masks: `(N, P, H, W)` ground truth, one map per part.
            y_pred_masks: `(N, H, W)` masks or attribution maps.
            sample_weight: must be `None`.
        """
        _no_sample_weight(sample_weight, "Coverage")
        masks = _as_map_tensor(y_pred_masks, "y_pred_masks")
        parts = ops.convert_to_tensor(y_true_masks)
        if len(parts.shape) != 4:
            raise ValueError(
                "`y_true_masks` must have shape (N, P, H, W). "
                f"Received shape {tuple(parts.shape)}."
            )
        mask_shape = tuple(masks.shape)
        part_shape = tuple(parts.shape)
        for dim_a, dim_b in zip(mask_shape, (part_shape[0],) + part_shape[2:]):
            if dim_a is not None and dim_b is not None and dim_a != dim_b:
                raise ValueError(
                    "`y_true_masks` must have shape (N, P, H, W) matching "
                    f"`y_pred_masks` {mask_shape}. Received {part_shape}."
                )
        self.invalid_count.assign_add(
            ops.sum(
                ops.cast(
                    ops.logical_not(ops.isfinite(masks)),
                    self.invalid_count.dtype,
                )
            )
        )
        parts = ops.cast(ops.cast(parts, "float32") > 0.5, "float32")
        selected = ops.cast(masks > self.threshold, "float32")
        sizes = ops.sum(parts, axis=(2, 3))
        hits = ops.sum(parts * ops.expand_dims(selected, 1), axis=(2, 3))
        has_pixels = sizes > 0
        fractions = hits / ops.maximum(sizes, 1.0)
        covered = ops.all(
            ops.logical_or(ops.logical_not(has_pixels), fractions >= 0.5),
            axis=1,
        )
        self.part_fraction_sum.assign_add(
            ops.sum(ops.where(has_pixels, fractions, 0.0))
        )
        self.part_count.assign_add(
            ops.sum(ops.cast(has_pixels, self.part_count.dtype))
        )
        self.covered_count.assign_add(
            ops.sum(ops.cast(covered, self.covered_count.dtype))
        )
        self.image_count.assign_add(
            ops.cast(ops.shape(masks)[0], self.image_count.dtype)
        )

    def result(self):
        if self.statistic == "part_coverage":
            value = ops.divide_no_nan(self.part_fraction_sum, self.part_count)
        else:
            value = ops.divide_no_nan(self.covered_count, self.image_count)
        value = ops.where(self.invalid_count > 0, float("nan"), value)
        return ops.cast(value, self.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"threshold": self.threshold, "statistic": self.statistic}
        )
        return config
