"""Explainers and metrics refuse bad input; PxAP bins and tie-breaks are exact.

The cases are those a new user hit (issue 12, items 3 to 6): out-of-range
or negative labels, NaN pixels, float images in 0..255, NaN or
out-of-range `fill`, `baseline`, `radius` and `num_thresholds`, PxAP scores
on bin edges, per-image rescaling in PxAP, and tie-breaks that depended on
`batch_size`.
"""

import keras
import numpy as np
import pytest

from keras_compattr.explainers import RISE
from keras_compattr.explainers import GradCAM
from keras_compattr.explainers import IntegratedGradients
from keras_compattr.explainers import Saliency
from keras_compattr.metrics import PxAP
from keras_compattr.metrics import coverage
from keras_compattr.metrics import deletion_accuracy
from keras_compattr.metrics import deletion_auc
from keras_compattr.metrics import insertion_auc
from keras_compattr.metrics import keep_accuracy
from keras_compattr.metrics import normalize_maps
from keras_compattr.metrics import pxap
from keras_compattr.metrics import robustness
from keras_compattr.metrics import sensitivity
from tests.region_model import build_region_model
from tests.region_model import region_images

EXPLAINERS = {
    "saliency": lambda m, **kw: Saliency(m, **kw),
    "grad_cam": lambda m, **kw: GradCAM(m, **kw),
    "integrated_gradients": lambda m, **kw: IntegratedGradients(
        m, steps=2, **kw
    ),
    "rise": lambda m, **kw: RISE(m, num_masks=4, cell_size=8, **kw),
}
FIDELITY = {
    "deletion_auc": lambda *a, **kw: deletion_auc(*a, steps=2, **kw),
    "insertion_auc": lambda *a, **kw: insertion_auc(*a, steps=2, **kw),
    "deletion_accuracy": deletion_accuracy,
    "keep_accuracy": keep_accuracy,
}


@pytest.fixture(scope="module")
def region():
    images, labels, gt = region_images(num_images=3)
    return build_region_model(), images, labels, gt


def _bad_inputs(images, labels):
    """(images, labels, error, message) a classifier of 2 classes refuses."""
    nan_pixel = images.copy()
    nan_pixel[1, 3, 4, 0] = np.nan
    return {
        "label_too_large": (images, labels + 2, ValueError, r"\[0, 2\)"),
        "label_negative": (images, labels - 1, ValueError, r"\[0, 2\)"),
        "nan_pixel": (nan_pixel, labels, ValueError, "NaN"),
        "float_0_255": (images * 255, labels, ValueError, "divide them by"),
        "bool_images": (images > 0.5, labels, TypeError, "astype"),
        "one_hot_width": (images, np.eye(3)[labels], ValueError, "one-hot"),
    }


CASES = list(_bad_inputs(*region_images(num_images=2)[:2]))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", list(EXPLAINERS))
def test_explainers_refuse_bad_images_and_labels(region, name, case):
    model, images, labels, _ = region
    bad_images, bad_labels, error, message = _bad_inputs(images, labels)[case]
    explainer = EXPLAINERS[name](model)
    with pytest.raises(error, match=message):
        explainer.explain(bad_images, bad_labels)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", list(FIDELITY))
def test_fidelity_metrics_refuse_bad_images_and_labels(region, name, case):
    model, images, labels, gt = region
    bad_images, bad_labels, error, message = _bad_inputs(images, labels)[case]
    with pytest.raises(error, match=message):
        FIDELITY[name](model, bad_images, bad_labels, gt)


def test_good_inputs_still_work_as_tensors_and_one_hot(region):
    model, images, labels, gt = region
    tensor = keras.ops.convert_to_tensor(images)
    maps = Saliency(model).explain(tensor, np.eye(2)[labels])
    assert maps.shape == images.shape[:3]
    assert 0.0 <= deletion_auc(model, tensor, labels[:, None], gt) <= 1.0


@pytest.mark.parametrize(
    "value, message",
    [(np.nan, "finite"), (2.0, r"\[0, 1\]"), ("0.5", "number"), ((0, 1), "")],
)
def test_fill_and_baseline_are_checked(region, value, message):
    model, images, labels, gt = region
    error = TypeError if isinstance(value, str) else ValueError
    match = f"`baseline`.*{message}"
    with pytest.raises(error, match=match):
        IntegratedGradients(model, baseline=value).explain(images, labels)
    match = f"`fill`.*{message}"
    with pytest.raises(error, match=match):
        RISE(model, fill=value).explain(images, labels)
    for metric in FIDELITY.values():
        with pytest.raises(error, match=match):
            metric(model, images, labels, gt, fill=value)
    with pytest.raises(error, match=match):
        robustness(lambda x: gt, images, fill=value)


def test_numeric_arguments_are_checked(region):
    model, images, labels, gt = region
    for radius in (np.nan, 0.0, -0.1, 2.0):
        with pytest.raises(ValueError, match="radius"):
            sensitivity(lambda x: gt, images, radius=radius)
    for num_thresholds in (1, 0, np.nan, 2.5):
        with pytest.raises(ValueError, match="num_thresholds"):
            pxap(gt, gt, num_thresholds=num_thresholds)
        with pytest.raises(ValueError, match="num_thresholds"):
            PxAP(num_thresholds=num_thresholds)
    with pytest.raises(ValueError, match="steps"):
        deletion_auc(model, images, labels, gt, steps=np.nan)
    with pytest.raises(ValueError, match="seed"):
        insertion_auc(model, images, labels, gt, seed=-1)
    with pytest.raises(ValueError, match="fraction"):
        keep_accuracy(model, images, labels, gt, fraction=np.nan)
    with pytest.raises(ValueError, match="samples"):
        sensitivity(lambda x: gt, images, samples=np.nan)
    with pytest.raises(ValueError, match="drop_fraction"):
        robustness(lambda x: gt, images, drop_fraction=np.nan)
    with pytest.raises(ValueError, match="threshold"):
        coverage(gt, gt[:, None], threshold=np.nan)
    with pytest.raises(ValueError, match="batch_size"):
        Saliency(model).explain(images, labels, batch_size=np.nan)
    for metric in (robustness, sensitivity):
        with pytest.raises(ValueError, match="divide them by"):
            metric(lambda x: gt, images * 255)


# === PxAP ===


def _exact_ap(scores, gt):
    """Average precision over every distinct score, in [0, 100] (NumPy)."""
    scores = np.asarray(scores, "float64").reshape(-1)
    positive = np.asarray(gt).reshape(-1) > 0.5
    values, inverse = np.unique(-scores, return_inverse=True)
    true_pos = np.cumsum(np.bincount(inverse, positive, len(values)))
    predicted = np.cumsum(np.bincount(inverse, minlength=len(values)))
    recall = true_pos / positive.sum()
    precision = true_pos / predicted
    return 100.0 * np.sum(precision * np.diff(recall, prepend=0.0))


def _streamed_pxap(gt, scores, **kwargs):
    metric = PxAP(**kwargs)
    metric.update_state(gt, scores)
    return float(metric.result())


@pytest.mark.parametrize("high", [0.53, 0.59, 0.29, 0.58])
def test_pxap_scores_on_bin_edges_fall_in_their_own_bin(high):
    gt = np.zeros((1, 32, 32), "float32")
    gt[0, :8, :8] = 1
    scores = np.where(gt > 0, high, high - 0.01).astype("float32")
    assert _exact_ap(scores, gt) == 100.0
    assert pxap(scores, gt) == pytest.approx(100.0)
    assert _streamed_pxap(gt, scores) == pytest.approx(100.0)


def test_pxap_on_the_threshold_grid_is_the_exact_average_precision():
    rng = np.random.default_rng(0)
    gt = (rng.random((4, 16, 16)) < 0.3).astype("float32")
    # Scores on the grid j / 100 follow the ground truth loosely.
    grid = np.clip(rng.integers(0, 70, gt.shape) + 31 * gt, 0, 100)
    scores = (grid / 100.0).astype("float32")
    expected = _exact_ap(scores, gt)
    assert pxap(scores, gt) == pytest.approx(expected, abs=1e-9)
    assert _streamed_pxap(gt, scores) == pytest.approx(expected, abs=1e-3)
    # A coarser grid: scores j / 10 with 11 thresholds.
    coarse = (np.round(scores * 10) / 10).astype("float32")
    expected = _exact_ap(coarse, gt)
    assert pxap(coarse, gt, num_thresholds=11) == pytest.approx(expected)
    assert _streamed_pxap(gt, coarse, num_thresholds=11) == pytest.approx(
        expected, abs=1e-3
    )


def test_pxap_rescales_only_the_maps_outside_the_unit_range():
    rng = np.random.default_rng(0)
    gt = np.zeros((2, 16, 16), "float32")
    gt[:, 4:10, 4:10] = 1
    in_range = 0.1 + 0.5 * gt  # 0.1 and 0.6: left as they are.
    logits = 8.0 * gt + rng.normal(0.0, 3.0, gt.shape) - 3.0
    scores = np.stack([in_range[0], logits[1]]).astype("float32")
    expected = np.stack([in_range[0], normalize_maps(logits[1:])[0]])
    assert pxap(scores, gt) == pytest.approx(pxap(expected, gt))
    # Rescaling every map together would stretch the first one to 0 and 1.
    assert pxap(scores, gt) != pytest.approx(pxap(normalize_maps(scores), gt))
    assert _streamed_pxap(gt, scores) == pytest.approx(
        pxap(expected, gt), abs=1e-3
    )


# === Tie-breaking ===


@pytest.mark.parametrize(
    "metric",
    [
        lambda *a, **kw: insertion_auc(*a, steps=5, **kw),
        lambda *a, **kw: deletion_auc(*a, steps=5, **kw),
        lambda *a, **kw: keep_accuracy(*a, fraction=0.1, **kw),
    ],
    ids=["insertion_auc", "deletion_auc", "keep_accuracy"],
)
def test_tie_breaks_do_not_depend_on_batch_size(region, metric):
    model, _, _, _ = region
    images, labels, _ = region_images(num_images=6)
    # A binary map: ties at both levels cross every step's pixel count.
    binary = np.random.default_rng(0).random(images.shape[:3]) < 0.5
    values = [
        metric(model, images, labels, binary, batch_size=batch_size)
        for batch_size in (1, 4, 32)
    ]
    # Equal up to the float rounding of differently sized forward passes.
    assert values[1] == pytest.approx(values[0], abs=1e-6)
    assert values[2] == pytest.approx(values[0], abs=1e-6)
