"""Property-based tests (hypothesis) for the metrics and input checks."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_compattr import metrics
from keras_compattr.utils import image_checks
from keras_compattr.utils.labels import validate_labels

FAST = settings(max_examples=25, deadline=None)
IMAGE_SHAPE = (4, 5, 3)
NUM_CLASSES = 4


@st.composite
def maps_and_ground_truth(draw, shape=None):
    """`(maps, gt)`: maps in [0, 1] and binary gt with some foreground.

    A fixed `shape` keeps the streaming metrics fast on JAX, which compiles
    every new shape.
    """
    if shape is None:
        shape = (
            draw(st.integers(1, 4)),
            draw(st.integers(1, 6)),
            draw(st.integers(2, 6)),
        )
    n, h, w = shape
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    maps = rng.uniform(0, 1, (n, h, w)).astype("float32")
    if draw(st.booleans()):
        maps = np.round(maps * 4) / 4  # Ties.
    gt = rng.uniform(0, 1, (n, h, w)) < draw(st.floats(0.1, 0.9))
    flat = gt.reshape(n, -1)
    flat[:, 0] = True  # Every image has foreground.
    return maps, gt.astype("float32")


@FAST
@given(maps_and_ground_truth())
def test_pxap_bounds_and_reference_values(sample):
    maps, gt = sample
    value = metrics.pxap(maps, gt)
    assert 0.0 <= value <= 100.0 + 1e-9
    assert metrics.pxap(gt, gt) == pytest.approx(100.0)
    # Pooled over images: the order of the images does not matter.
    order = np.arange(len(maps))[::-1]
    assert metrics.pxap(maps[order], gt[order]) == pytest.approx(value)
    # A constant map scores the foreground fraction.
    constant = np.full_like(maps, 0.3)
    assert metrics.pxap(constant, gt) == pytest.approx(100.0 * gt.mean())


@FAST
@given(maps_and_ground_truth(shape=(4, 4, 5)), st.integers(1, 3))
def test_streaming_pxap_matches_the_array_metric(sample, pieces):
    maps, gt = sample
    metric = metrics.PxAP()
    for part_maps, part_gt in zip(
        np.array_split(maps, pieces), np.array_split(gt, pieces)
    ):
        if len(part_maps):
            metric.update_state(part_gt, part_maps)
    assert float(metric.result()) == pytest.approx(
        metrics.pxap(maps, gt), abs=1e-3
    )


@FAST
@given(maps_and_ground_truth())
def test_map_metrics_stay_in_their_ranges(sample):
    maps, gt = sample
    mass = metrics.attribution_mass(maps, gt)
    assert 0.0 <= mass <= 1.0 + 1e-6
    # All of the attribution inside the ground truth: mass 1.
    assert metrics.attribution_mass(maps * gt + gt, gt) == pytest.approx(1.0)
    gini = metrics.sparseness(maps)
    assert 0.0 <= gini < 1.0
    assert metrics.sparseness(maps * 7.0) == pytest.approx(gini, abs=1e-5)
    assert metrics.sparseness(np.ones_like(maps)) == pytest.approx(0.0)
    hit = metrics.pointing_game(maps, gt)
    assert 0.0 <= hit <= 1.0
    assert metrics.pointing_game(gt, gt) == pytest.approx(1.0)


BAD_VALUES = st.sampled_from([np.nan, np.inf, -np.inf])


@FAST
@given(maps_and_ground_truth(), BAD_VALUES, st.integers(0, 10**6))
def test_metrics_refuse_non_finite_maps(sample, bad, where):
    maps, gt = sample
    maps = maps.copy()
    maps.reshape(-1)[where % maps.size] = bad
    for metric in (
        metrics.pxap,
        metrics.attribution_mass,
        metrics.pointing_game,
    ):
        with pytest.raises(ValueError, match="NaN or infinite|finite"):
            metric(maps, gt)
    with pytest.raises(ValueError, match="NaN or infinite|finite"):
        metrics.sparseness(maps)
    with pytest.raises(ValueError, match="NaN or infinite|finite"):
        metrics.coverage(maps, gt[:, None])


@settings(max_examples=10, deadline=None)
@given(maps_and_ground_truth(shape=(2, 4, 5)), BAD_VALUES)
def test_streaming_metrics_give_nan_for_non_finite_maps(sample, bad):
    # Streaming metrics cannot raise under `jit`: they return NaN.
    maps, gt = sample
    streaming = metrics.PxAP()
    streaming.update_state(gt, maps)
    assert not np.isnan(float(streaming.result()))
    maps = maps.copy()
    maps[1, 2, 3] = bad
    streaming.update_state(gt, maps)
    assert np.isnan(float(streaming.result()))
    streaming.reset_state()
    assert float(streaming.result()) == 0.0
    coverage = metrics.Coverage()
    coverage.update_state(gt[:, None], maps)
    assert np.isnan(float(coverage.result()))


@FAST
@given(maps_and_ground_truth(), st.integers(0, 2), st.integers(1, 3))
def test_metrics_refuse_mismatched_shapes(sample, axis, extra):
    maps, gt = sample
    shape = list(gt.shape)
    shape[axis] += extra
    other = np.ones(shape, "float32")
    for metric in (
        metrics.pxap,
        metrics.attribution_mass,
        metrics.pointing_game,
    ):
        with pytest.raises(ValueError, match="shape"):
            metric(maps, other)
    with pytest.raises(ValueError, match="shape"):
        metrics.PxAP().update_state(other, maps)


def test_metrics_on_empty_and_degenerate_input():
    gt = np.zeros((2, 4, 4), "float32")
    maps = np.random.default_rng(0).uniform(0, 1, (2, 4, 4))
    with pytest.raises(ValueError, match="no foreground"):
        metrics.pxap(maps, gt)
    with pytest.raises(ValueError, match="foreground"):
        metrics.pointing_game(maps, gt)
    # Documented: empty ground truth holds no attribution mass.
    assert metrics.attribution_mass(maps, gt) == 0.0
    with pytest.raises(ValueError, match="empty"):
        metrics.pxap(np.zeros((0, 4, 4)), np.zeros((0, 4, 4)))
    with pytest.raises(ValueError, match="empty"):
        metrics.sparseness(np.zeros((3, 0, 4)))
    with pytest.raises(TypeError, match="real numbers"):
        metrics.sparseness(np.full((1, 2, 2), "a"))
    # Documented: the streaming PxAP is 0 before any foreground is seen.
    metric = metrics.PxAP()
    metric.update_state(gt, maps)
    assert float(metric.result()) == 0.0


# === Input checks ===

DTYPES = st.sampled_from(
    [
        "float32",
        "float64",
        "float16",
        "uint8",
        "int32",
        "int64",
        "bool",
        "complex64",
        "U1",
    ]
)


@st.composite
def image_arrays(draw):
    """Arrays of any small shape and dtype, often of the right shape."""
    if draw(st.booleans()):
        shape = (draw(st.integers(0, 3)), *IMAGE_SHAPE)
    else:
        shape = tuple(draw(st.lists(st.integers(0, 6), min_size=1, max_size=5)))
    dtype = draw(DTYPES)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    scale = draw(st.sampled_from([1.0, 255.0, 300.0]))
    values = rng.uniform(-0.2, 1.0, shape) * scale
    if dtype == "U1":
        array = np.full(shape, "a")
    else:
        array = values.astype(dtype)
    if array.size and "float" in dtype and draw(st.booleans()):
        array.reshape(-1)[0] = draw(BAD_VALUES)
    return array


def _expected_outcome(array):
    """What the checks must do with `array`: an exception type or None."""
    kind = array.dtype.kind
    if kind not in "fiu":
        return TypeError
    if array.ndim != 4 or array.shape[1:] != IMAGE_SHAPE:
        return ValueError
    if array.shape[0] == 0:
        return ValueError
    if kind == "f" and not np.all(np.isfinite(array)):
        return ValueError
    if kind in "iu" and (array.min() < 0 or array.max() > 255):
        return ValueError
    return None


@FAST
@given(image_arrays())
def test_image_checks_accept_exactly_the_valid_images(array):
    expected = _expected_outcome(array)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        if expected is None:
            out, single = image_checks.validate_images(array, IMAGE_SHAPE)
            assert out is array and not single
        else:
            with pytest.raises(expected):
                image_checks.validate_images(array, IMAGE_SHAPE)
    if expected is None and array.dtype.kind == "f":
        # Floats in [0, 1] or in 0..255 (slack 0.5 each way) are read.
        low, high = array.min(), array.max()
        far = (low < -0.5 or high > 1.5) and not (low >= -0.5 and high <= 255.5)
        warned = any("far outside" in str(w.message) for w in record)
        assert warned == far


@FAST
@given(
    st.integers(1, 6),
    st.lists(st.integers(-3, NUM_CLASSES + 3), min_size=1, max_size=8),
    st.sampled_from(["int32", "int64", "float32", "uint8"]),
    st.sampled_from(["flat", "column", "one_hot"]),
)
def test_label_checks_accept_exactly_the_valid_labels(
    num_images, values, dtype, layout
):
    values = np.array(values)
    in_range = values.min() >= 0 and values.max() < NUM_CLASSES
    if dtype == "uint8":
        values = np.abs(values)
        in_range = values.max() < NUM_CLASSES
    labels = values.astype(dtype)
    if layout == "column":
        labels = labels[:, None]
    elif layout == "one_hot":
        if not in_range:
            return
        labels = np.eye(NUM_CLASSES, dtype=dtype)[values]
    valid = in_range and len(values) == num_images
    if valid:
        validate_labels(labels, NUM_CLASSES, num_images)
    else:
        with pytest.raises(ValueError):
            validate_labels(labels, NUM_CLASSES, num_images)
