"""The training recipes and the reference schedule (SPEC section 3)."""

import keras
import numpy as np
import pytest

from keras_compattr.training import WarmupStepDecay
from keras_compattr.training import small_classifier
from keras_compattr.training import train_classifier


def _rates(schedule, steps):
    return [float(keras.ops.convert_to_numpy(schedule(s))) for s in steps]


def test_warm_up_then_step_decay_at_the_reference_epochs():
    schedule = WarmupStepDecay(0.05, steps_per_epoch=4)
    # Warm-up: 2 epochs of 4 steps, linear up to the full rate.
    np.testing.assert_allclose(
        _rates(schedule, [0, 1, 3, 7]), [0.05 / 8, 0.05 / 4, 0.025, 0.05]
    )
    # Step decay x0.2 at the start of epochs 80, 120 and 160.
    steps = [8, 319, 320, 479, 480, 639, 640, 799]
    expected = [1, 1, 0.2, 0.2, 0.04, 0.04, 0.008, 0.008]
    np.testing.assert_allclose(
        _rates(schedule, steps), [0.05 * e for e in expected], rtol=1e-6
    )


def test_schedule_without_warm_up_and_with_other_epochs():
    schedule = WarmupStepDecay(
        1.0, 2, warmup_epochs=0, decay_epochs=(1,), decay_rate=0.5
    )
    assert _rates(schedule, [0, 1, 2, 100]) == [1.0, 1.0, 0.5, 0.5]
    with pytest.raises(ValueError, match="steps_per_epoch"):
        WarmupStepDecay(1.0, 0)


def test_schedule_config_round_trip():
    schedule = WarmupStepDecay(
        5e-4, 7, warmup_epochs=1.5, decay_epochs=(3, 5), decay_rate=0.1
    )
    config = schedule.get_config()
    restored = WarmupStepDecay.from_config(config)
    assert restored.get_config() == config
    # By its registered name, as an optimizer's config holds it.
    serialized = keras.optimizers.schedules.serialize(schedule)
    assert serialized["registered_name"] == "keras_compattr>WarmupStepDecay"
    restored = keras.optimizers.schedules.deserialize(serialized)
    assert isinstance(restored, WarmupStepDecay)
    assert restored.get_config() == config
    steps = [0, 6, 10, 20, 21, 35, 36]
    assert _rates(restored, steps) == _rates(schedule, steps)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=0.03)
    again = keras.optimizers.AdamW.from_config(optimizer.get_config())
    assert again.get_config() == optimizer.get_config()


def test_train_classifier_uses_a_given_schedule_as_it_is():
    model = small_classifier((16, 16, 3), 2)
    schedule = WarmupStepDecay(1e-3, steps_per_epoch=2)
    train_classifier(
        model,
        np.random.rand(8, 16, 16, 3),
        np.arange(8) % 2,
        epochs=1,
        batch_size=4,
        learning_rate=schedule,
        verbose=0,
    )
    assert model.optimizer.get_config()["learning_rate"]["config"] == (
        schedule.get_config()
    )
    # Two steps taken: the rate is the schedule's at step 2.
    np.testing.assert_allclose(
        float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
        1e-3 * 3 / 4,
        rtol=1e-6,
    )


def _bright_channel_data(count, seed=0):
    """Images of 3 classes told apart by their brightest channel."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 3
    images = rng.uniform(0.0, 0.3, (count, 16, 16, 3)).astype("float32")
    images[np.arange(count), :, :, labels] += 0.6
    return images, labels


def test_train_classifier_refreshes_batch_norm_and_reports_accuracy():
    images, labels = _bright_channel_data(48)
    model = small_classifier((16, 16, 3), 3)
    history = train_classifier(
        model,
        images,
        labels,
        epochs=1,
        batch_size=16,
        validation_data=(images[:24], labels[:24]),
        verbose=0,
    )
    # The refresh reads the 48 training images as one batch: the moving
    # statistics are then that batch's, and inference mode gives what
    # training mode gives on it (a short fit leaves them far apart).
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(images, training=False)),
        keras.ops.convert_to_numpy(model(images, training=True)),
        atol=1e-3,
    )
    predicted = model.predict(images[:24], verbose=0).argmax(axis=-1)
    assert history.inference_split == "validation"
    assert history.inference_images == 24
    assert history.inference_accuracy == pytest.approx(
        float(np.mean(predicted == labels[:24]))
    )


def test_train_classifier_warns_when_near_chance():
    from keras_compattr.training import near_chance

    assert near_chance(0.39, 3) and not near_chance(0.81, 3)
    assert near_chance(0.6, 2) and not near_chance(0.7, 2)
    assert near_chance(float("nan"), 10)
    images, labels = _bright_channel_data(12)
    model = small_classifier((16, 16, 3), 3)
    # A learning rate of 0 keeps the random initialisation; zeroed logits
    # then predict one class for every image: chance.
    model.layers[-1].kernel.assign(0 * model.layers[-1].kernel)
    model.layers[-1].bias.assign([0.0, 0.0, 1.0])
    with pytest.warns(UserWarning, match="near chance.*more epochs"):
        history = train_classifier(
            model, images, labels, epochs=1, learning_rate=0.0, verbose=0
        )
    assert history.inference_split == "training"
    assert history.inference_accuracy == pytest.approx(1 / 3)


def test_train_classifier_feeds_images_as_comet_reads_them():
    import tensorflow as tf

    from keras_compattr.training import _unit_range

    images, labels = _bright_channel_data(6)
    for given in (images * 255.0, np.round(images * 255).astype("uint8")):
        np.testing.assert_allclose(_unit_range(given), images, atol=3e-3)
        ds = tf.data.Dataset.from_tensor_slices((given, labels)).batch(3)
        batches = [np.asarray(x) for x, _ in _unit_range(ds)]
        np.testing.assert_allclose(np.concatenate(batches), images, atol=3e-3)
        pair = _unit_range((given, labels))
        assert pair[1] is labels
        np.testing.assert_allclose(pair[0], images, atol=3e-3)
    np.testing.assert_array_equal(_unit_range(images), images)
