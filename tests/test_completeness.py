"""Completeness: the hardened judge and the chance hinges' gradients."""

import warnings

import keras
import numpy as np
import pytest

import keras_compattr as kca
from tests.conftest import NUM_CLASSES
from tests.conftest import SHAPE
from tests.conftest import tiny_classifier
from tests.conftest import tiny_images
from tests.conftest import tiny_selector


def _gradient(loss_fn, value):
    """d loss_fn / d value on the current backend."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(loss_fn)(value))
    if backend == "torch":
        import torch

        tensor = torch.tensor(value, requires_grad=True)
        loss_fn(tensor).backward()
        return tensor.grad.numpy()
    import tensorflow as tf

    variable = tf.Variable(value)
    with tf.GradientTape() as tape:
        loss = loss_fn(variable)
    return tape.gradient(loss, variable).numpy()


@pytest.mark.parametrize("margin", [12.0, 20.0, 40.0])
@pytest.mark.parametrize("reduction", ["batch", "sample"])
def test_chance_hinges_keep_their_gradient_for_a_confident_detector(
    margin, reduction
):
    # The true class ahead by `margin` logits: 1 - p rounds to 0 in
    # float32 from a margin of about 17, which silenced the batch hinge.
    logits = np.array([[margin, 0.0, 0.0, 0.0]] * 2, "float32")
    labels = np.array([0, 0])
    hinge = {
        "batch": kca.losses.batch_chance_hinge,
        "sample": kca.losses.chance_hinge,
    }[reduction]

    def loss(z):
        value = hinge(labels, keras.ops.log_softmax(z, axis=-1))
        return keras.ops.sum(value)

    gradient = _gradient(loss, logits)
    # d/dz_y of -log(1 - p_y) tends to 1 per image (0.5 of the batch mean).
    scale = 0.5 if reduction == "batch" else 1.0
    np.testing.assert_allclose(gradient[:, 0], scale, rtol=1e-3)
    value = keras.ops.convert_to_numpy(
        keras.ops.sum(hinge(labels, keras.ops.log_softmax(logits, axis=-1)))
    )
    expected = np.log(0.75) + margin - np.log(3.0)
    expected *= 1.0 if reduction == "batch" else 2.0
    np.testing.assert_allclose(value, expected, rtol=1e-4)


def test_chance_hinges_take_soft_labels():
    probs = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3]], "float32")
    soft = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05]], "float32")
    p_true = (soft * probs).sum(-1)
    per_image = np.maximum(np.log(2 / 3) - np.log(1 - p_true), 0)
    batch = max(np.log(2 / 3) - np.log(1 - p_true.mean()), 0)
    log_probs = np.log(probs)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(kca.losses.chance_hinge(soft, log_probs)),
        per_image,
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(
            kca.losses.batch_chance_hinge(soft, log_probs)
        ),
        batch,
        rtol=1e-5,
    )


# === RandomCellMask ===


def test_random_cell_mask_removes_every_share_and_keeps_some_whole():
    layer = kca.layers.RandomCellMask(fill_value=0.0, seed=3)
    images = np.ones((2000, 32, 32, 1), "float32")
    removed = 1.0 - keras.ops.convert_to_numpy(layer(images, training=True))
    share = removed.mean(axis=(1, 2, 3))
    whole = share == 0.0
    assert 0.2 < whole.mean() < 0.35  # a quarter whole, plus draws of ~0
    # Every removed share occurs: the kept fraction is not fixed.
    assert np.quantile(share, 0.95) > 0.7
    assert 0.2 < np.quantile(share[~whole], 0.5) < 0.8
    # Removed pixels take the fill value (or fade towards it).
    assert removed.min() >= 0.0 and removed.max() <= 1.0
    # Two calls draw different masks; inference leaves images whole.
    again = 1.0 - keras.ops.convert_to_numpy(layer(images, training=True))
    assert np.abs(again - removed).max() == 1.0
    assert np.array_equal(keras.ops.convert_to_numpy(layer(images)), images)


def test_random_cell_mask_fills_per_channel_and_round_trips():
    layer = kca.layers.RandomCellMask(
        fill_value=[0.1, 0.2, 0.3], whole_fraction=0.0, fade_fraction=0.0
    )
    images = np.ones((64, 16, 16, 3), "float32")
    out = keras.ops.convert_to_numpy(layer(images, training=True))
    removed = out[..., 0] < 1.0
    np.testing.assert_allclose(
        out[removed], [[0.1, 0.2, 0.3]] * removed.sum(), rtol=1e-6
    )
    clone = kca.layers.RandomCellMask.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="min_cells"):
        kca.layers.RandomCellMask(min_cells=5, max_cells=2)
    with pytest.raises(ValueError, match="whole_fraction"):
        kca.layers.RandomCellMask(whole_fraction=1.5)


def test_hardening_passes_its_mask_settings_to_random_cell_mask():
    hardening = kca.models.DetectorHardening(max_cells=8, seed=3)
    layer = hardening.masking([0.2, 0.3, 0.4])
    assert (layer.min_cells, layer.max_cells, layer.seed) == (2, 8, 3)
    assert layer.fill_value == pytest.approx([0.2, 0.3, 0.4])
    assert hardening.get_config()["whole_fraction"] == 0.25
    # `RandomCellMask` checks the settings when the hardening is made.
    with pytest.raises(ValueError, match="min_cells"):
        kca.models.DetectorHardening(min_cells=5, max_cells=2)
    with pytest.raises(TypeError, match="fill value is the model's"):
        kca.models.DetectorHardening(fill_value=0.5)


def _distinct_rows(removal):
    return len({row.tobytes() for row in removal})


def test_random_cell_mask_blobs_have_curved_outlines():
    # A 2-cell grid, shifted, shows at most 3 x 3 cells: every image's
    # removal map has at most 3 distinct rows. Blobs interpolate between
    # the cell centres, so their outlines are curved: many distinct rows.
    images = np.ones((64, 32, 32, 1), "float32")

    def removal(blob_fraction):
        layer = kca.layers.RandomCellMask(
            fill_value=0.0,
            min_cells=2,
            max_cells=2,
            whole_fraction=0.0,
            fade_fraction=0.0,
            blob_fraction=blob_fraction,
            seed=5,
        )
        out = keras.ops.convert_to_numpy(layer(images, training=True))
        return (out[..., 0] < 1.0).astype("uint8")

    cells, blobs = removal(0.0), removal(1.0)
    assert max(_distinct_rows(m) for m in cells) <= 3
    partial = [m for m in blobs if 0 < m.mean() < 1]
    assert len(partial) > 16
    assert np.mean([_distinct_rows(m) > 3 for m in partial]) > 0.8


# === Hardening in the model ===


def _model(hardening=True, detector=None, **kwargs):
    return kca.ComprehensiveAttributionModel(
        selector=tiny_selector(),
        predictor=tiny_classifier("predictor"),
        detector=detector or tiny_classifier("detector"),
        hardening=hardening,
        **kwargs,
    )


def test_hardening_is_the_default_and_can_be_switched_off():
    model = _model()
    assert isinstance(model.hardening, kca.models.DetectorHardening)
    assert model.judge is not model.detector
    assert not model.judge_is_hardened
    plain = _model(hardening=False)
    assert plain.hardening is None and plain.judge is plain.detector
    with pytest.raises(ValueError, match="nothing to harden"):
        plain.harden_detector(tiny_images(4), np.zeros(4, "int32"))
    with pytest.raises(TypeError, match="hardening"):
        _model(hardening="yes")
    with pytest.raises(ValueError, match="epochs"):
        kca.models.DetectorHardening(epochs=0)


def test_fit_hardens_a_copy_once_and_leaves_the_detector_untouched(tmp_path):
    detector = tiny_classifier("detector")
    before = [np.array(w) for w in detector.get_weights()]
    model = _model(kca.models.DetectorHardening(epochs=1), detector)
    judge_before = [np.array(w) for w in model.judge.get_weights()]
    model.compile()
    images = tiny_images(16)
    labels = np.arange(16) % NUM_CLASSES
    model.fit(images, labels, epochs=1, batch_size=8, verbose=0)
    assert model.judge_is_hardened
    after = detector.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    hardened = [np.array(w) for w in model.judge.get_weights()]
    assert any(not np.array_equal(a, b) for a, b in zip(judge_before, hardened))
    assert not model.judge.trainable_variables
    # A second fit keeps the judge: COMET never trains it.
    model.fit(images, labels, epochs=1, batch_size=8, verbose=0)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(hardened, model.judge.get_weights())
    )
    # The hardened judge, its flag and settings survive a save and load.
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.judge_is_hardened
    assert loaded.hardening.get_config() == model.hardening.get_config()
    assert all(
        np.array_equal(a, b)
        for a, b in zip(hardened, loaded.judge.get_weights())
    )
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0),
        model.predict(images, verbose=0),
        atol=1e-6,
    )


def test_the_objective_judges_with_the_hardened_copy():
    model = _model()
    # Make the copy differ from the detector: the terms must follow it.
    for variable in model.judge.get_layer("logits").weights:
        variable.assign(np.zeros(variable.shape, "float32"))
    images = tiny_images(4)
    labels = np.arange(4) % NUM_CLASSES
    terms = model.compute_terms(images, labels)
    uniform = np.full((4, NUM_CLASSES), -np.log(NUM_CLASSES), "float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(terms["detector_log_probs"]),
        uniform,
        atol=1e-5,
    )


def test_the_judge_sees_the_mask_eroded_by_the_erosion():
    square = np.zeros((2, 16, 16, 1), "float32")
    square[:, 4:12, 4:12] = 1.0
    square[1, :, :4] = 1.0  # a band on the image's left border

    def eroded(erosion):
        hardening = kca.models.DetectorHardening(erosion=erosion)
        masks = hardening.judged_masks(keras.ops.convert_to_tensor(square))
        return keras.ops.convert_to_numpy(masks)[..., 0]

    np.testing.assert_array_equal(eroded(0), square[..., 0])
    one, two = eroded(1), eroded(2)
    assert one[0].sum() == 36 and two[0].sum() == 16  # 6 x 6 and 4 x 4
    assert one[0, 5:11, 5:11].all() and not one[0, 4].any()
    # Outside the image nothing counts: the border band keeps its edge.
    assert one[1, 8, 0] == 1.0 and one[1, 0, 0] == 1.0
    # "auto": 1 pixel per 32 of the shorter side, at least 1.
    auto = kca.models.DetectorHardening(erosion="auto")
    sizes = {side: auto.erosion_pixels(side, 300) for side in (16, 48, 64, 224)}
    assert sizes == {16: 1, 48: 2, 64: 2, 224: 7}
    with pytest.raises(ValueError, match="erosion"):
        kca.models.DetectorHardening(erosion=-1)
    with pytest.raises(ValueError, match="erosion"):
        kca.models.DetectorHardening(erosion=1.5)
    # Round trip; a file saved before the erosion judged the mask itself.
    config = kca.models.DetectorHardening(erosion=3).get_config()
    assert kca.models.DetectorHardening.from_config(config).erosion == 3
    del config["erosion"]
    assert kca.models.DetectorHardening.from_config(config).erosion == 0
    # The default is "auto".
    assert kca.models.DetectorHardening().erosion == "auto"


def test_the_erosion_passes_its_gradient_to_the_window_minimum():
    # The pixel just outside a region's edge sets the eroded value of the
    # region's rim, so it is the one the gradient asks to grow.
    hardening = kca.models.DetectorHardening(erosion=1)
    masks = np.zeros((1, 8, 8, 1), "float32")
    masks[0, 2:7, 2:7] = 1.0
    masks[0, 4, 1] = 0.5  # just outside the left edge, the lowest nearby
    masks[0, 3, 1] = masks[0, 5, 1] = 0.7
    weights = np.zeros((1, 8, 8, 1), "float32")
    weights[0, 4, 2] = 1.0  # a rim pixel's eroded value

    gradient = _gradient(
        lambda m: keras.ops.sum(
            hardening.judged_masks(m) * keras.ops.convert_to_tensor(weights)
        ),
        masks,
    )[0, ..., 0]
    expected = np.zeros((8, 8), "float32")
    expected[4, 1] = 1.0
    np.testing.assert_allclose(gradient, expected, atol=1e-6)


def test_auto_erosion_is_off_with_a_fixed_budget():
    # A budget sized to the evidence cannot pay for the band past its
    # edge that the erosion asks for; the adaptive control can.
    auto = kca.models.DetectorHardening()
    assert auto.erosion_pixels(48, 48) == 2
    assert auto.erosion_pixels(48, 48, area_budget=0.2) == 0
    assert (
        kca.models.DetectorHardening(erosion=3).erosion_pixels(
            48, 48, area_budget=0.2
        )
        == 3
    )
    masks = keras.ops.convert_to_tensor(
        np.random.default_rng(0).uniform(size=(1, 8, 8, 1)).astype("float32")
    )
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(auto.judged_masks(masks, 0.2)),
        keras.ops.convert_to_numpy(masks),
    )
    images = tiny_images(2)
    for budget, eroded in (("auto", True), (0.3, False)):
        model = _model(kca.models.DetectorHardening(), area_budget=budget)
        terms = model.compute_terms(images, np.arange(2) % NUM_CLASSES)
        _, masked_out = model.apply_masks(
            kca.utils.images.to_unit_range(images), terms["masks"]
        )
        plain = keras.ops.log_softmax(model.judge(masked_out), axis=-1)
        difference = np.abs(
            keras.ops.convert_to_numpy(terms["detector_log_probs"] - plain)
        ).max()
        assert (difference > 1e-6) == eroded, (budget, difference)


def test_the_objective_judges_what_the_eroded_mask_leaves_out():
    images = tiny_images(4)
    labels = np.arange(4) % NUM_CLASSES
    for erosion in (0, 3):
        model = _model(kca.models.DetectorHardening(erosion=erosion))
        terms = model.compute_terms(images, labels)
        masks = terms["masks"]
        judged = model.hardening.judged_masks(masks)
        if erosion:  # the eroded mask removes less than the mask
            gap = keras.ops.convert_to_numpy(masks - judged)
            assert gap.min() >= -1e-7 and gap.max() > 1e-3
        _, masked_out = model.apply_masks(
            kca.utils.images.to_unit_range(images), judged
        )
        expected = keras.ops.log_softmax(model.judge(masked_out), axis=-1)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(terms["detector_log_probs"]),
            keras.ops.convert_to_numpy(expected),
            atol=1e-5,
        )
    # The paper's recipe judges the mask itself.
    plain = _model(hardening=False)
    terms = plain.compute_terms(images, labels)
    _, masked_out = plain.apply_masks(
        kca.utils.images.to_unit_range(images), terms["masks"]
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(terms["detector_log_probs"]),
        keras.ops.convert_to_numpy(
            keras.ops.log_softmax(plain.detector(masked_out), axis=-1)
        ),
        atol=1e-5,
    )


def test_a_generator_is_judged_unhardened_with_a_warning():
    model = _model(kca.models.DetectorHardening(epochs=1), fill_value=0.5)
    model.compile()
    detector_weights = [np.array(w) for w in model.detector.get_weights()]

    def batches():
        while True:
            yield tiny_images(8), np.arange(8) % NUM_CLASSES

    with pytest.warns(UserWarning, match="judge was not hardened"):
        model.fit(batches(), steps_per_epoch=1, epochs=1, verbose=0)
    assert not model.judge_is_hardened
    assert all(
        np.array_equal(a, b)
        for a, b in zip(detector_weights, model.judge.get_weights())
    )
    # Hardening first on an array of training images, as the warning says.
    model.harden_detector(tiny_images(16), np.arange(16) % NUM_CLASSES)
    assert model.judge_is_hardened
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "The judge was not hardened")
        model.fit(batches(), steps_per_epoch=1, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="generator"):
        model.hardening.harden(model.judge, batches())


def test_masked_out_accuracy_of_an_independent_judge():
    images = np.zeros((6, *SHAPE), "float32")
    images[:3, :8] = 1.0  # class 1: a bright band at the top
    labels = np.array([1, 1, 1, 0, 0, 0])

    class Band(keras.Model):
        def call(self, x):
            bright = keras.ops.mean(x[:, :8], axis=(1, 2, 3))
            return keras.ops.stack([1.0 - bright, bright], axis=-1)

    judge = Band()
    none = np.zeros(images.shape[:3], "float32")
    band = np.zeros_like(none)
    band[:, :8] = 1.0
    score = kca.evaluation.masked_out_accuracy
    assert score(judge, images, labels, none, 0.0) == 1.0
    assert score(judge, images, labels, band, 0.0) == 0.5
