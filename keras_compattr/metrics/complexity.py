"""Complexity metrics: how concentrated is an attribution map?"""

import numpy as np

from keras_compattr.metrics.maps import as_maps


def sparseness(attributions):
    """Mean Gini index of the absolute attributions (sparseness).

    For each map, the absolute values `a` are sorted in increasing order
    (`a_1 <= ... <= a_n`, `n = H * W`) and
    `G = sum_i (2 i - n - 1) a_i / (n * sum_i a_i)`. A map with all its
    mass on one pixel gives `(n - 1) / n` (close to 1); a constant map
    gives 0. All-zero maps count as 0.

    Args:
        attributions: `(N, H, W)` (or `(N, H, W, 1)`) maps.

    Returns:
        A Python float in `[0, 1)`, the mean over images; higher is sparser.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.metrics import sparseness
    >>> one_hot = np.zeros((1, 4, 4)); one_hot[0, 1, 2] = 1
    >>> round(sparseness(one_hot), 4)
    0.9375
    >>> sparseness(np.ones((1, 4, 4)))
    0.0

    Reference:
        [Chalasani et al., 2020](https://arxiv.org/abs/1810.06583), as in
        Quantus `Sparseness` (absolute values). Deviation: Quantus adds
        `1e-7` to every value to avoid dividing by zero; here zero maps
        score 0 and no offset is added.
    """
    maps = np.abs(as_maps(attributions, "attributions")).astype("float64")
    if not np.all(np.isfinite(maps)):
        raise ValueError("`attributions` must be finite.")
    values = np.sort(maps.reshape(len(maps), -1), axis=1)
    n = values.shape[1]
    weights = 2 * np.arange(1, n + 1) - n - 1
    totals = values.sum(axis=1)
    gini = np.divide(
        (values * weights).sum(axis=1),
        n * totals,
        out=np.zeros_like(totals),
        where=totals > 0,
    )
    return float(gini.mean())
