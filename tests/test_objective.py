import math

import numpy as np
import pytest
from keras import ops

from keras_compattr.losses import comet_objective
from keras_compattr.losses import log_probabilities
from keras_compattr.losses import per_sample_cross_entropy


def _numpy(x):
    return ops.convert_to_numpy(x)


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _inputs(seed=0, n=6, k=4):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    predictor = _log_softmax(rng.normal(0, 2, (n, k))).astype("float32")
    detector = _log_softmax(rng.normal(0, 2, (n, k))).astype("float32")
    masks = rng.uniform(0, 1, (n, 8, 8, 1)).astype("float32")
    return labels, predictor, detector, masks


def test_log_probabilities_of_logits_and_probabilities_agree():
    logits = np.random.default_rng(0).normal(0, 3, (5, 4)).astype("float32")
    probabilities = np.exp(_log_softmax(logits))
    expected = _log_softmax(logits)
    for outputs, kind in [
        (logits, "logits"),
        (probabilities, "probabilities"),
        (logits, "auto"),
        (probabilities, "auto"),
    ]:
        np.testing.assert_allclose(
            _numpy(log_probabilities(outputs, kind)), expected, atol=1e-5
        )


def test_log_probabilities_rejects_unknown_kind():
    with pytest.raises(ValueError, match="output_kind"):
        log_probabilities(np.zeros((1, 2)), "scores")


def test_cross_entropy_takes_integer_and_one_hot_labels():
    _, log_probs, _, _ = _inputs()
    labels = np.array([0, 1, 2, 3, 0, 1])
    expected = -log_probs[np.arange(6), labels]
    one_hot = np.eye(4, dtype="float32")[labels]
    for given in (labels, labels[:, None], one_hot):
        np.testing.assert_allclose(
            _numpy(per_sample_cross_entropy(given, log_probs)),
            expected,
            rtol=1e-6,
        )


@pytest.mark.parametrize("reduction", ["batch", "sample"])
def test_hinge_objective_matches_numpy(reduction):
    labels, predictor, detector, masks = _inputs()
    a, g, t, b = 4.0, 2.0, 0.3, 100.0
    terms = comet_objective(
        labels, predictor, detector, masks, a, g, t, b, "hinge", reduction
    )
    lp = -predictor[np.arange(6), labels]
    ld = -detector[np.arange(6), labels]
    if reduction == "batch":
        hinge = max(lp.mean() - ld.mean() + g, 0.0)
    else:
        hinge = np.maximum(lp - ld + g, 0.0).mean()
    areas = masks.mean(axis=(1, 2, 3))
    penalty = np.maximum(areas - t, 0.0).mean()
    np.testing.assert_allclose(_numpy(terms["predictor_loss"]), lp.mean(), 1e-6)
    np.testing.assert_allclose(_numpy(terms["detector_loss"]), ld.mean(), 1e-6)
    np.testing.assert_allclose(_numpy(terms["area_penalty"]), penalty, 1e-5)
    np.testing.assert_allclose(
        _numpy(terms["selector_loss"]),
        lp.mean() + a * hinge + b * penalty,
        rtol=1e-5,
    )


def test_batch_and_sample_hinge_differ_when_one_detector_output_is_wrong():
    # One confidently wrong detector output lifts the batch-mean L_D past
    # L_P + margin, switching the batch hinge off while other images still
    # leak evidence; the per-sample hinge keeps pushing on those.
    labels = np.array([0, 0, 0, 0])
    predictor = np.log(np.full((4, 2), 0.5, "float32"))
    detector = np.log(
        np.array([[0.99, 0.01]] * 3 + [[1e-9, 1 - 1e-9]], "float32")
    )
    masks = np.zeros((4, 4, 4, 1), "float32")
    batch = comet_objective(labels, predictor, detector, masks, margin=2.0)
    sample = comet_objective(
        labels, predictor, detector, masks, margin=2.0, hinge_reduction="sample"
    )
    assert float(_numpy(batch["detector_term"])) == 0.0
    assert float(_numpy(sample["detector_term"])) > 1.0


@pytest.mark.parametrize("term", ["negative_ce", "entropy", "kl_uniform"])
def test_other_detector_terms(term):
    labels, predictor, detector, masks = _inputs()
    terms = comet_objective(
        labels, predictor, detector, masks, area_weight=0.0, detector_term=term
    )
    p = np.exp(detector)
    k = detector.shape[-1]
    if term == "negative_ce":
        expected = detector[np.arange(6), labels].mean()
    elif term == "entropy":
        expected = (math.log(k) + (p * detector).sum(-1)).mean()
    else:
        expected = (-math.log(k) - detector.mean(-1)).mean()
    np.testing.assert_allclose(
        _numpy(terms["detector_term"]), expected, rtol=1e-5
    )
    if term != "negative_ce":
        assert float(_numpy(terms["detector_term"])) >= 0.0


def test_uniform_detector_zeroes_entropy_and_kl_terms():
    labels, predictor, _, masks = _inputs()
    uniform = np.log(np.full((6, 4), 0.25, "float32"))
    for term in ("entropy", "kl_uniform"):
        terms = comet_objective(
            labels, predictor, uniform, masks, detector_term=term
        )
        assert abs(float(_numpy(terms["detector_term"]))) < 1e-5


def test_smoothness_penalises_checkerboards():
    labels, predictor, detector, _ = _inputs()
    smooth = np.zeros((6, 8, 8, 1), "float32")
    checker = (np.indices((8, 8)).sum(0) % 2).astype("float32")
    rough = np.broadcast_to(checker[None, :, :, None], (6, 8, 8, 1))
    kwargs = dict(area_weight=0.0, smoothness_weight=1.0)
    low = comet_objective(labels, predictor, detector, smooth, **kwargs)
    high = comet_objective(labels, predictor, detector, rough, **kwargs)
    assert float(_numpy(low["smoothness"])) == 0.0
    np.testing.assert_allclose(_numpy(high["smoothness"]), 2.0, rtol=1e-6)


def test_objective_rejects_unknown_options():
    labels, predictor, detector, masks = _inputs()
    with pytest.raises(ValueError, match="detector_term"):
        comet_objective(
            labels, predictor, detector, masks, detector_term="hinged"
        )
    with pytest.raises(ValueError, match="hinge_reduction"):
        comet_objective(
            labels, predictor, detector, masks, hinge_reduction="mean"
        )
