"""The noisy fill: `fill_noise`, its estimate, the judge's holes and saving."""

import warnings

import keras
import numpy as np
import pytest

import keras_compattr as kca
from keras_compattr.models.data_statistics import pixel_noise
from tests.conftest import SHAPE
from tests.conftest import tiny_model


def _fit(model, data, **kwargs):
    model.compile()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*looks untrained")
        model.fit(
            data["images"][:16],
            data["labels"][:16],
            epochs=1,
            batch_size=8,
            verbose=0,
            **kwargs,
        )
    return model


# === The estimate ===


@pytest.mark.parametrize("level", [0.02, 0.08])
def test_pixel_noise_measures_independent_noise(level):
    rng = np.random.default_rng(0)
    images = rng.uniform(0.3, 0.6, (32, 1, 1, 3)) + rng.normal(
        0, level, (32, 32, 32, 3)
    )
    np.testing.assert_allclose(pixel_noise(images, 3), level, rtol=0.1)


def test_pixel_noise_ignores_the_outlines_of_flat_shapes():
    images = np.zeros((8, 32, 32, 3), "float32")
    images[:, 8:20, 4:28] = 0.9  # a flat rectangle on a flat background
    images[:, 22:30, 10:14, 1] = 0.4
    assert np.all(pixel_noise(images, 3) == 0.0)


def test_pixel_noise_reads_datasets_and_checks_channels():
    import tensorflow as tf

    rng = np.random.default_rng(1)
    images = (0.5 + rng.normal(0, 0.05, (20, 16, 16, 3))).astype("float32")
    labels = np.zeros(20, "int32")
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    np.testing.assert_allclose(
        pixel_noise(dataset, 3), pixel_noise(images, 3), rtol=0.05
    )
    with pytest.raises(ValueError, match=r"\(N, H, W, 1\)"):
        pixel_noise(images, 1)
    with pytest.raises(ValueError, match="generator"):
        pixel_noise((batch for batch in [images]), 3)


# === The judge's holes ===


def test_random_cell_mask_fills_holes_with_noise_around_the_fill():
    layer = kca.layers.RandomCellMask(
        fill_value=0.5,
        fill_noise=0.1,
        whole_fraction=0.0,
        fade_fraction=0.0,
        seed=0,
    )
    images = np.ones((16, 32, 32, 3), "float32")
    masked = keras.ops.convert_to_numpy(layer(images, training=True))
    # Removed pixels spread as the noise does around the fill value.
    removed = masked[masked != 1.0]
    assert removed.size > 1000
    assert 0.09 < removed.std() < 0.11
    assert abs(removed.mean() - 0.5) < 0.01
    assert np.array_equal(
        keras.ops.convert_to_numpy(layer(images, training=False)), images
    )
    config = layer.get_config()
    assert config["fill_noise"] == pytest.approx([0.1])
    restored = kca.layers.RandomCellMask.from_config(config)
    assert restored.fill_noise == pytest.approx([0.1])


def test_the_judge_is_hardened_with_the_models_noisy_fill():
    hardening = kca.models.DetectorHardening(epochs=1)
    assert hardening.masking(0.5, [0.1, 0.2, 0.3]).fill_noise == pytest.approx(
        [0.1, 0.2, 0.3]
    )
    assert hardening.masking(0.5).fill_noise == [0.0]


# === The model ===


def test_a_flat_fill_makes_no_noise_state():
    model = tiny_model()
    assert model.fill_noise == 0.0
    assert model.fill_noise_level is None and model.fill_seed is None
    names = [v.name for v in model.non_trainable_variables]
    assert "fill_noise" not in names


def test_noise_is_drawn_anew_in_training_and_fixed_in_inference():
    model = tiny_model(fill_value=0.5, fill_noise=0.1)
    images = np.full((4, *SHAPE), 0.2, "float32")
    masks = np.zeros((4, SHAPE[0], SHAPE[1], 1), "float32")
    first, _ = model.apply_masks(images, masks, training=True)
    second, _ = model.apply_masks(images, masks, training=True)
    first, second = map(keras.ops.convert_to_numpy, (first, second))
    assert not np.allclose(first, second)
    assert abs(first.mean() - 0.5) < 0.01 and 0.09 < first.std() < 0.11
    # Where the mask keeps the image, the image is untouched.
    kept, removed = model.apply_masks(images, 1.0 - masks, training=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(kept), images)
    assert keras.ops.convert_to_numpy(removed).std() > 0.09
    inference = [
        keras.ops.convert_to_numpy(model.apply_masks(images, masks)[0])
        for _ in range(2)
    ]
    np.testing.assert_array_equal(*inference)


def test_auto_noise_is_measured_by_fit_and_saved(data, tmp_path):
    model = _fit(tiny_model(fill_noise="auto"), data)
    level = keras.ops.convert_to_numpy(model.fill_noise_level)
    np.testing.assert_allclose(level, pixel_noise(data["images"][:16], 3))
    assert level.min() > 0.0
    predictions = model.predict(data["images"], verbose=0)
    np.testing.assert_array_equal(
        predictions, model.predict(data["images"], verbose=0)
    )
    path = str(tmp_path / "noisy.keras")
    model.save(path)
    loaded = kca.models.load_model(path)
    assert loaded.fill_noise == "auto" and loaded.fill_is_set
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded.fill_noise_level), level
    )
    np.testing.assert_allclose(
        loaded.predict(data["images"], verbose=0), predictions, atol=1e-5
    )


def test_auto_noise_keeps_a_given_fill_value(data):
    model = _fit(tiny_model(fill_value=0.25, fill_noise="auto"), data)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.fill), 0.25)
    assert keras.ops.convert_to_numpy(model.fill_noise_level).min() > 0.0


def test_the_training_step_draws_new_noise_every_step(data):
    model = tiny_model(fill_noise=0.1)
    model.compile()
    before = keras.ops.convert_to_numpy(model.fill_seed.state).copy()
    model.train_on_batch(data["images"][:8], data["labels"][:8])
    after = keras.ops.convert_to_numpy(model.fill_seed.state)
    assert not np.array_equal(before, after)


@pytest.mark.parametrize(
    "fill_noise, error",
    [("high", TypeError), (-0.1, ValueError), (1.5, ValueError)],
)
def test_bad_fill_noise_is_refused(fill_noise, error):
    with pytest.raises(error, match="fill_noise"):
        tiny_model(fill_noise=fill_noise)
