import numpy as np
import pytest

from keras_compattr.metrics import attribution_mass
from keras_compattr.metrics import coverage
from keras_compattr.metrics import pxap


def _ground_truth(n=20, size=16, seed=0):
    rng = np.random.default_rng(seed)
    gt = np.zeros((n, size, size), "float32")
    for i in range(n):
        r, c = rng.integers(0, size - 6, 2)
        gt[i, r : r + 6, c : c + 6] = 1
    return gt


def test_pxap_of_perfect_random_and_inverted_maps():
    gt = _ground_truth()
    assert pxap(gt, gt) == pytest.approx(100.0)
    random = np.random.default_rng(1).uniform(0, 1, gt.shape)
    assert pxap(random, gt) == pytest.approx(100 * gt.mean(), abs=2.0)
    assert pxap(1.0 - gt, gt) == pytest.approx(100 * gt.mean(), abs=1e-6)


def test_pxap_uses_every_pixel_and_normalises_other_ranges():
    gt = _ground_truth()
    # Scores below the first step count too: recall reaches 1.
    scores = gt * 0.004 + 0.001
    assert pxap(scores * 100 - 50, gt) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="same shape"):
        pxap(gt[:, :8], gt)
    with pytest.raises(ValueError, match="no foreground"):
        pxap(gt, np.zeros_like(gt))


def test_coverage_counts_parts():
    parts = np.zeros((2, 2, 8, 8), "float32")
    parts[:, 0, :2, :2] = 1
    parts[:, 1, 6:, 6:] = 1
    masks = np.zeros((2, 8, 8), "float32")
    masks[0] = parts[0].max(0)
    masks[1, :2, :2] = 0.9
    result = coverage(masks, parts)
    np.testing.assert_allclose(result["per_part"], [[1, 1], [1, 0]])
    assert result["all_parts_covered"] == 0.5
    assert result["part_coverage"] == 0.75
    with pytest.raises(ValueError, match="part_masks"):
        coverage(masks, parts[:, 0])


def test_attribution_mass():
    gt = _ground_truth()
    assert attribution_mass(gt * 3.0, gt) == pytest.approx(1.0)
    assert attribution_mass(np.ones_like(gt), gt) == pytest.approx(gt.mean())
    assert attribution_mass(-np.ones_like(gt), gt) == 0.0
