"""Pointing game: does the strongest point of a map hit the object?"""

import numpy as np

from keras_compattr.metrics.maps import as_ground_truth
from keras_compattr.metrics.maps import as_maps
from keras_compattr.metrics.maps import check_same_shape


def pointing_game(attributions, gt_masks):
    """Fraction of images whose attribution maximum falls in the ground truth.

    For each image the maximum of the map is located; it is a hit when that
    pixel is ground-truth foreground. When several pixels share the maximum
    (e.g. a mask saturated at 1), the image scores the fraction of them that
    lie in the ground truth, i.e. the expected hit when ties are broken at
    random.

    Args:
        attributions: `(N, H, W)` (or `(N, H, W, 1)`) maps.
        gt_masks: `(N, H, W)` ground truth in `{0, 1}` (boolean, or
            0 and 255); every image needs at least one foreground pixel.
            Other values raise a `ValueError` (a map passed as the ground
            truth: the arguments swapped).

    Returns:
        A Python float in `[0, 1]`.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.metrics import pointing_game
    >>> gt = np.zeros((2, 4, 4)); gt[:, :2] = 1
    >>> maps = np.zeros((2, 4, 4)); maps[0, 0, 0] = 1; maps[1, 3, 3] = 1
    >>> pointing_game(maps, gt)
    0.5

    Reference:
        [Zhang et al., 2016](https://arxiv.org/abs/1608.00507), as in
        Quantus `PointingGame` (no tolerance margin). Deviation: Quantus
        counts a hit when *any* tied maximum is inside the ground truth;
        here tied maxima count fractionally, so a constant map scores the
        foreground fraction rather than 1.
    """
    maps = as_maps(attributions, "attributions")
    gt = as_ground_truth(gt_masks)
    check_same_shape(maps, gt, ("attributions", "gt_masks"))
    if not np.all(np.isfinite(maps)):
        raise ValueError("`attributions` must be finite.")
    empty = ~gt.any(axis=(1, 2))
    if np.any(empty):
        raise ValueError(
            "Every image of `gt_masks` needs a foreground pixel; images "
            f"{np.flatnonzero(empty).tolist()} have none."
        )
    peaks = maps == maps.max(axis=(1, 2), keepdims=True)
    hits = (peaks & gt).sum(axis=(1, 2)) / peaks.sum(axis=(1, 2))
    return float(hits.mean())
