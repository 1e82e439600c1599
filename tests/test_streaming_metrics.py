import keras
import numpy as np
import pytest

from keras_compattr.metrics import Coverage
from keras_compattr.metrics import PxAP
from keras_compattr.metrics import coverage
from keras_compattr.metrics import pxap


def _data(n=12, size=16, seed=0):
    rng = np.random.default_rng(seed)
    gt = np.zeros((n, size, size), "float32")
    for i in range(n):
        r, c = rng.integers(0, size - 6, 2)
        gt[i, r : r + 6, c : c + 6] = 1
    # Noisy maps that partly follow the ground truth, in [0, 1].
    scores = np.clip(0.6 * gt + rng.uniform(0, 0.7, gt.shape), 0, 1)
    return gt, scores.astype("float32")


def _streamed(metric, gt, scores, batch_sizes):
    start = 0
    for size in batch_sizes:
        metric.update_state(
            gt[start : start + size], scores[start : start + size]
        )
        start += size
    assert start == len(gt)
    return float(metric.result())


def test_pxap_matches_the_array_function_across_batches():
    gt, scores = _data()
    expected = pxap(scores, gt)
    assert 20.0 < expected < 99.0
    metric = PxAP()
    assert _streamed(metric, gt, scores, [5, 1, 6]) == pytest.approx(
        expected, abs=1e-3
    )
    # Values on bin edges (multiples of 0.01) fall in the same bins.
    edges = np.round(scores, 2)
    metric.reset_state()
    assert float(metric.result()) == 0.0
    assert _streamed(metric, gt, edges, [4, 4, 4]) == pytest.approx(
        pxap(edges, gt), abs=1e-3
    )
    # Channel axis of size 1 and a perfect map.
    metric.reset_state()
    metric.update_state(gt[..., None], gt[..., None])
    assert float(metric.result()) == pytest.approx(100.0)


def test_pxap_normalises_out_of_range_batches_like_pxap():
    gt, scores = _data()
    logits = scores * 8.0 - 3.0
    metric = PxAP()
    metric.update_state(gt, logits)
    assert float(metric.result()) == pytest.approx(pxap(logits, gt), abs=1e-3)


def test_pxap_counts_stay_exact_past_the_carry():
    # 5 * 512 * 512 pixels: more than the 2**20 kept in the low counter.
    gt = np.zeros((5, 512, 512), "float32")
    gt[:, 100:300, 50:250] = 1
    rng = np.random.default_rng(0)
    scores = np.clip(0.3 * gt + rng.uniform(0, 0.8, gt.shape), 0, 1)
    scores = scores.astype("float32")
    metric = PxAP()
    metric.update_state(gt[:3], scores[:3])
    metric.update_state(gt[3:], scores[3:])
    counts = keras.ops.convert_to_numpy(
        metric.high_counts
    ) * 2**20 + keras.ops.convert_to_numpy(metric.low_counts)
    assert counts.sum() == gt.size
    assert counts[1].sum() == gt.sum()
    assert float(metric.result()) == pytest.approx(pxap(scores, gt), abs=1e-3)


def test_pxap_config_round_trip():
    gt, scores = _data()
    metric = PxAP(num_thresholds=51, name="mask_pxap")
    config = metric.get_config()
    assert config["num_thresholds"] == 51
    clone = PxAP.from_config(config)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(metric)
    )
    assert isinstance(restored, PxAP)
    for m in (metric, clone, restored):
        assert m.name == "mask_pxap"
        m.update_state(gt, scores)
    results = [float(m.result()) for m in (metric, clone, restored)]
    assert results[0] == results[1] == results[2]
    assert results[0] == pytest.approx(
        pxap(scores, gt, num_thresholds=51), abs=1e-3
    )


def test_pxap_validates_inputs():
    gt, scores = _data()
    with pytest.raises(ValueError, match="matching shapes"):
        PxAP().update_state(gt, scores[:, :8])
    with pytest.raises(ValueError, match="shape"):
        PxAP().update_state(gt[None, None], scores[None, None])
    with pytest.raises(ValueError, match="sample_weight"):
        PxAP().update_state(gt, scores, sample_weight=np.ones(len(gt)))
    with pytest.raises(ValueError, match="num_thresholds"):
        PxAP(num_thresholds=1)


def test_pxap_update_traces_under_jit():
    gt, scores = _data()
    metric = PxAP()
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        update = tf.function(metric.update_state)
        update(gt[:6], scores[:6])
        update(gt[6:], scores[6:])
    elif backend == "jax":
        import jax

        update = jax.jit(metric.stateless_update_state)
        variables = [v.value for v in metric.variables]
        variables = update(variables, gt[:6], scores[:6])
        variables = update(variables, gt[6:], scores[6:])
        for variable, value in zip(metric.variables, variables):
            variable.assign(value)
    else:
        pytest.skip(f"no jit check for {backend}")
    assert float(metric.result()) == pytest.approx(pxap(scores, gt), abs=1e-3)


def _parts(n=10, size=16, seed=0):
    rng = np.random.default_rng(seed)
    parts = np.zeros((n, 2, size, size), "float32")
    parts[:, 0, 1:5, 1:5] = 1
    parts[:, 1, 10:14, 9:15] = 1
    masks = rng.uniform(0, 1, (n, size, size)).astype("float32")
    masks[: n // 2] = np.maximum(masks[: n // 2], parts[: n // 2].max(1))
    return parts, masks


@pytest.mark.parametrize("statistic", ["part_coverage", "all_parts_covered"])
def test_coverage_matches_the_array_function(statistic):
    parts, masks = _parts()
    expected = coverage(masks, parts)[statistic]
    metric = Coverage(statistic=statistic)
    metric.update_state(parts[:3], masks[:3])
    metric.update_state(parts[3:], masks[3:, ..., None])
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_coverage_config_and_validation():
    parts, masks = _parts()
    metric = Coverage(threshold=0.7, statistic="all_parts_covered")
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(metric)
    )
    assert isinstance(restored, Coverage)
    assert restored.get_config() == metric.get_config()
    restored.update_state(parts, masks)
    assert float(restored.result()) == pytest.approx(
        coverage(masks, parts, threshold=0.7)["all_parts_covered"]
    )
    with pytest.raises(ValueError, match="statistic"):
        Coverage(statistic="mean")
    with pytest.raises(ValueError, match=r"\(N, P, H, W\)"):
        Coverage().update_state(parts[:, 0], masks)
    with pytest.raises(ValueError, match=r"\(N, P, H, W\)"):
        Coverage().update_state(parts[:4], masks)
