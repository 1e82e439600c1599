"""The deletion term (`keras_compattr.losses.deletion`): the top of each
mask, and the class probability left once it is removed."""

import keras
import numpy as np
import pytest

from keras_compattr.losses import CometObjective
from keras_compattr.losses import deletion
from tests.conftest import NUM_CLASSES


def _scores(num_images=4, side=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(num_images, side, side, 1)).astype("float32")


def test_top_fraction_masks_keep_each_images_share_of_its_top_scores():
    scores = _scores()
    top = np.asarray(deletion.top_fraction_masks(scores, (0.1, 0.4)))
    assert top.shape == scores.shape
    pixels = 100
    for i in range(4):
        share = 0.1 + 0.3 * (i + 0.5) / 4  # spread over the batch
        kept = int(round(share * pixels))
        selected = top[i] > 0.5
        assert selected.sum() == kept
        # Exactly the highest scores of that image.
        cut = np.sort(scores[i].ravel())[::-1][kept - 1]
        np.testing.assert_array_equal(selected, scores[i] >= cut)
    # Soft: the threshold's neighbours are near 0.5, far pixels near 0/1.
    assert 0.0 < top.min() < 0.01 and 0.95 < top.max() < 1.0


def test_top_fraction_masks_keep_one_pixel_at_least():
    top = np.asarray(deletion.top_fraction_masks(_scores(1), (1e-4, 1e-4)))
    assert (top > 0.5).sum() == 1


def test_deletion_term_is_the_mean_class_probability():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, NUM_CLASSES)).astype("float32")
    log_probs = keras.ops.log_softmax(logits, axis=-1)
    labels = rng.integers(0, NUM_CLASSES, 6)
    weights = rng.uniform(0.5, 2.0, 6).astype("float32")
    probabilities = np.exp(np.asarray(log_probs))[np.arange(6), labels]
    term = deletion.deletion_term(labels, log_probs)
    np.testing.assert_allclose(float(term), probabilities.mean(), rtol=1e-5)
    weighted = deletion.deletion_term(labels, log_probs, weights)
    expected = np.sum(weights * probabilities) / np.sum(weights)
    np.testing.assert_allclose(float(weighted), expected, rtol=1e-5)
    # One-hot labels give the same.
    one_hot = np.eye(NUM_CLASSES, dtype="float32")[labels]
    np.testing.assert_allclose(
        float(deletion.deletion_term(one_hot, log_probs)),
        probabilities.mean(),
        rtol=1e-5,
    )


def test_objective_adds_the_weighted_term_to_the_selector_loss():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, NUM_CLASSES, 4)
    log_probs = [
        keras.ops.log_softmax(
            rng.normal(size=(4, NUM_CLASSES)).astype("float32"), axis=-1
        )
        for _ in range(3)
    ]
    masks = rng.uniform(size=(4, 8, 8, 1)).astype("float32")
    plain = CometObjective(area_budget=0.5)
    ranked = CometObjective(area_budget=0.5, deletion_weight=3.0)
    base = plain(labels, log_probs[0], log_probs[1], masks)
    assert "deletion_term" not in base
    terms = ranked(
        labels,
        log_probs[0],
        log_probs[1],
        masks,
        deletion_log_probs=log_probs[2],
    )
    term = float(deletion.deletion_term(labels, log_probs[2]))
    assert float(terms["deletion_term"]) == pytest.approx(term)
    assert float(terms["selector_loss"]) == pytest.approx(
        float(base["selector_loss"]) + 3.0 * term, rel=1e-5
    )
    # The predictor's own loss does not change.
    assert float(terms["predictor_loss"]) == float(base["predictor_loss"])
    with pytest.raises(ValueError, match="deletion_log_probs"):
        ranked(labels, log_probs[0], log_probs[1], masks)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"deletion_weight": -1.0}, ValueError, "deletion_weight.*>= 0"),
        ({"deletion_weight": "2"}, TypeError, "real number"),
        ({"deletion_fractions": (0.3, 0.1)}, ValueError, "lo <= hi"),
        ({"deletion_fractions": (0.0, 0.1)}, ValueError, "0 < lo"),
        ({"deletion_fractions": 0.1}, ValueError, "two shares"),
    ],
)
def test_objective_checks_the_deletion_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        CometObjective(**kwargs)


def test_deletion_settings_round_trip():
    objective = CometObjective(
        deletion_weight=1.5, deletion_fractions=(0.1, 0.3)
    )
    config = keras.saving.serialize_keras_object(objective)
    restored = keras.saving.deserialize_keras_object(config)
    assert restored.deletion_weight == 1.5
    assert restored.deletion_fractions == (0.1, 0.3)
    assert restored.get_config() == objective.get_config()
