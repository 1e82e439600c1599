"""MaskHead and ImagePreprocessing: what they compute.

Shapes, weights and round trips are in `tests/test_round_trips.py`.
"""

import keras
import numpy as np
import pytest

import keras_compattr as kca


def test_mask_head_is_the_sigmoid_of_its_logits_in_unit_range():
    head = kca.layers.MaskHead(16, 16)
    features = np.random.default_rng(0).normal(size=(2, 4, 4, 8))
    features = features.astype("float32") * 10.0
    masks = keras.ops.convert_to_numpy(head(features))
    logits = keras.ops.convert_to_numpy(head.logits(features))
    assert masks.shape == logits.shape == (2, 16, 16, 1)
    np.testing.assert_allclose(masks, 1 / (1 + np.exp(-logits)), atol=1e-6)
    assert masks.min() >= 0.0 and masks.max() <= 1.0


def test_mask_head_resizes_one_channel_logits_without_a_projection():
    head = kca.layers.MaskHead(8, 8)
    constant = np.full((1, 2, 2, 1), 3.0, "float32")
    logits = keras.ops.convert_to_numpy(head.logits(constant))
    assert head.projection is None
    np.testing.assert_allclose(logits, 3.0, atol=1e-6)


def test_mask_head_keeps_float32_masks_under_mixed_precision():
    head = kca.layers.MaskHead(8, 8, dtype="mixed_float16")
    masks = head(np.zeros((1, 4, 4, 4), "float32"))
    assert keras.backend.standardize_dtype(masks.dtype) == "float32"


def test_mask_head_refuses_a_feature_vector():
    with pytest.raises(ValueError, match="rank 4"):
        kca.layers.MaskHead(8, 8)(np.zeros((2, 16), "float32"))


@pytest.mark.parametrize(
    "mode, low, high",
    [("0_255", 0.0, 255.0), ("-1_1", -1.0, 1.0)],
)
def test_image_preprocessing_maps_the_unit_range(mode, low, high):
    images = np.stack([np.zeros((4, 4, 3)), np.ones((4, 4, 3))])
    out = keras.ops.convert_to_numpy(
        kca.layers.ImagePreprocessing(mode)(images.astype("float32"))
    )
    np.testing.assert_allclose(out[0], low)
    np.testing.assert_allclose(out[1], high)


def test_ranked_maps_keep_the_order_and_the_decision_boundary():
    from keras_compattr.layers.mask_head import ranked_maps

    rng = np.random.default_rng(0)
    # Scores far into the sigmoid's saturation, where the mask ties.
    logits = rng.normal(0.0, 30.0, (3, 8, 8, 1)).astype("float32")
    masks = 1 / (1 + np.exp(-logits.astype("float64")))
    ranked = np.asarray(ranked_maps(logits))
    assert ranked.shape == logits.shape
    # Within an image no two scores tie in the map; in the mask many do.
    for z, r in zip(logits, ranked):
        assert len(np.unique(r)) == len(np.unique(z))
    assert len(np.unique(masks.astype("float32"))) < len(np.unique(logits))
    np.testing.assert_array_equal(ranked >= 0.5, logits >= 0)
    for z, r in zip(logits, ranked):
        assert r.max() == pytest.approx(1.0) and r.min() == pytest.approx(0)
        order = np.argsort(z.ravel())
        assert np.all(np.diff(r.ravel()[order]) > 0)
    # All-negative scores stay below 0.5 (nothing selected).
    negative = np.asarray(ranked_maps(-np.abs(logits) - 1.0))
    assert negative.max() < 0.5
