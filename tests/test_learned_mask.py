"""`keras_compattr.explainers.LearnedMask`: a learned mask of a frozen
classifier.

On TensorFlow in this process; on JAX and torch in fresh processes
(`tests/scripts/learned_mask_contract.py`, whose first import is the new
module and which also loads a file saved here).
"""

import os

import keras
import numpy as np
import pytest

import keras_compattr as kca
from keras_compattr.explainers import LearnedMask
from tests.helpers import run_model_saving_test
from tests.helpers import run_script_in_fresh_process
from tests.helpers import run_serialization_test

SHAPE = (16, 16, 3)
K = 3


def _numpy(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def _data(num_images=32, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.random((num_images, *SHAPE)).astype("float32")
    return images, rng.integers(0, K, num_images)


def _classifier(seed=0):
    """A classifier with batch norm and dropout, trained for one epoch."""
    keras.utils.set_random_seed(seed)
    images, labels = _data()
    classifier = kca.models.build_classifier(
        SHAPE, K, widths=(4, 8), blocks_per_stage=1, dropout=0.5
    )
    classifier.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    classifier.fit(images, labels, epochs=1, batch_size=16, verbose=0)
    return classifier


def _explainer(classifier, **kwargs):
    kwargs.setdefault(
        "hardening", kca.models.DetectorHardening(epochs=1, batch_size=16)
    )
    return LearnedMask(classifier, **kwargs)


@pytest.fixture(scope="module")
def fitted():
    """A fitted explainer, its classifier and the weights before `fit`."""
    classifier = _classifier()
    before = _numpy(classifier.weights)
    explainer = _explainer(classifier)
    selector_before = _numpy(explainer.selector.weights)
    judge_before = _numpy(explainer.judge.weights)
    images, _ = _data()
    history = explainer.fit(
        images,
        epochs=1,
        batch_size=16,
        verbose=0,
        validation_data=images[:8],
    )
    return dict(
        explainer=explainer,
        classifier=classifier,
        before=before,
        selector_before=selector_before,
        judge_before=judge_before,
        history=history,
        images=images,
    )


def _changed(before, variables):
    return any(
        not np.array_equal(a, b) for a, b in zip(before, _numpy(variables))
    )


def test_fit_leaves_every_classifier_weight_bit_for_bit(fitted):
    classifier = fitted["classifier"]
    # Batch-norm moving statistics are among them.
    assert any("moving_mean" in w.path for w in classifier.weights)
    for before, after in zip(fitted["before"], _numpy(classifier.weights)):
        np.testing.assert_array_equal(before, after)
    # `fit` did train: the selector moved and the judge was hardened.
    explainer = fitted["explainer"]
    assert _changed(fitted["selector_before"], explainer.selector.weights)
    assert _changed(fitted["judge_before"], explainer.judge.weights)
    assert explainer.judge_is_hardened
    assert explainer.classifier is classifier
    assert not classifier.trainable


def test_fit_is_keras_fit_with_validation(fitted):
    history = fitted["history"].history
    for key in (
        "loss",
        "accuracy",
        "masked_out_accuracy",
        "val_loss",
        "deletion_term",  # on by default here
    ):
        assert key in history, key
    assert "area_multiplier" in history  # area_budget="auto", the default
    # `fit` compiled: AdamW at 2e-3 (the selector started from the
    # classifier's copy), decayed to zero over its 2 steps.
    optimizer = fitted["explainer"].optimizer.get_config()
    assert isinstance(fitted["explainer"].optimizer, keras.optimizers.AdamW)
    schedule = optimizer["learning_rate"]["config"]
    assert schedule["initial_learning_rate"] == pytest.approx(2e-3)
    assert schedule["decay_steps"] == 2


def _tiny():
    return kca.models.build_selector(SHAPE, backbone="tiny", width=4)


def test_the_deletion_term_is_on_unless_the_user_sets_the_objective():
    classifier = _classifier()
    explainer = _explainer(classifier, selector=_tiny())
    assert explainer.deletion_weight == 2.0
    assert "deletion_term" in [m.name for m in explainer.metrics]
    off = _explainer(classifier, selector=_tiny(), deletion_weight=0.0)
    assert off.deletion_weight == 0.0
    assert "deletion_term" not in [m.name for m in off.metrics]
    # A given objective is taken as it is (its default is off).
    given = _explainer(
        classifier,
        selector=_tiny(),
        objective=kca.losses.CometObjective(area_budget=0.3),
    )
    assert given.deletion_weight == 0.0
    # The weight survives the config.
    config = explainer.get_config()
    restored = LearnedMask.from_config(config)
    assert restored.deletion_weight == 2.0


def test_the_default_judge_is_hardened_longer():
    classifier = _classifier()
    explainer = LearnedMask(classifier, selector=_tiny())
    hardening = explainer.hardening
    assert (hardening.epochs, hardening.learning_rate) == (12, 1e-3)
    assert hardening.mask_settings["blob_fraction"] == 0.5
    # `True` means the same; a given hardening or `False` is taken as it is.
    assert (
        LearnedMask(
            classifier, selector=_tiny(), hardening=True
        ).hardening.get_config()
        == hardening.get_config()
    )
    off = LearnedMask(classifier, selector=_tiny(), hardening=False)
    assert off.hardening is None and off.judge is off.detector
    given = kca.models.DetectorHardening(epochs=2)
    chosen = LearnedMask(classifier, selector=_tiny(), hardening=given)
    assert chosen.hardening is given
    restored = LearnedMask.from_config(explainer.get_config())
    assert restored.hardening.get_config() == hardening.get_config()


def test_the_default_fill_carries_the_images_noise():
    classifier = _classifier()
    explainer = LearnedMask(classifier, selector=_tiny())
    assert explainer.fill_noise == "auto"
    assert LearnedMask.from_config(explainer.get_config()).fill_noise == "auto"
    flat = LearnedMask(classifier, selector=_tiny(), fill_noise=0.0)
    assert flat.fill_noise_level is None
    # Files saved before `fill_noise` hold a flat fill.
    config = explainer.get_config()
    del config["fill_noise"]
    assert LearnedMask.from_config(config).fill_noise_level is None


def test_labels_default_to_the_classifier_predictions():
    classifier = _classifier()
    images, labels = _data()
    predicted = np.argmax(classifier.predict(images, verbose=0), axis=-1)
    assert not np.array_equal(predicted, labels)  # so the test can fail

    def selector_after(y):
        keras.utils.set_random_seed(1)
        explainer = LearnedMask(classifier, hardening=False)
        explainer.fit(images, y, epochs=1, batch_size=16, verbose=0)
        return _numpy(explainer.selector.weights)

    default = selector_after(None)
    same = selector_after(predicted)
    other = selector_after(labels)
    for a, b in zip(default, same):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(default, other))


def test_a_dataset_of_images_is_labelled_with_the_predictions(fitted):
    import tensorflow as tf

    explainer, images = fitted["explainer"], fitted["images"]
    predicted = np.argmax(
        fitted["classifier"].predict(images, verbose=0), axis=-1
    )
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(8)
    labelled, y = explainer._labelled(dataset, None, 8)
    assert y is None
    found = np.concatenate([b[1] for b in labelled.as_numpy_iterator()])
    np.testing.assert_array_equal(found, predicted)
    # Labels a dataset yields are explained as given.
    pairs = tf.data.Dataset.from_tensor_slices((images, predicted)).batch(8)
    assert explainer._labelled(pairs, None, 8)[0] is pairs
    history = explainer.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])


def test_explain_returns_one_map_in_the_unit_range_per_image(fitted):
    explainer, images = fitted["explainer"], fitted["images"]
    maps = explainer.explain(images[:5])
    assert maps.shape == (5, *SHAPE[:2]) and maps.dtype == np.float32
    assert 0.0 <= maps.min() and maps.max() <= 1.0
    assert explainer.explain(images[0]).shape == (1, *SHAPE[:2])
    # The default map ranks by score and selects what the mask selects.
    masks = explainer.explain(images[:5], output="mask")
    logits = explainer.explain(images[:5], output="logits")
    np.testing.assert_array_equal(maps >= 0.5, logits >= 0.0)
    np.testing.assert_array_equal(maps >= 0.5, masks >= 0.5)
    for z, r in zip(logits, maps):
        order = np.argsort(z.ravel(), kind="stable")
        assert np.all(np.diff(r.ravel()[order]) >= 0)
    # Labels are checked, but the mask does not depend on them.
    np.testing.assert_array_equal(
        explainer.explain(images[:5], labels=[0, 1, 2, 0, 1]), maps
    )
    with pytest.raises(ValueError, match="one class per image"):
        explainer.explain(images[:5], labels=[0, 1])
    with pytest.raises(ValueError, match=r"lie in \[0, 3\)"):
        explainer.explain(images[:2], labels=[0, 3])


def test_round_trips_through_its_config_and_a_keras_file(fitted, tmp_path):
    explainer, images = fitted["explainer"], fitted["images"]
    revived = run_serialization_test(explainer)
    assert isinstance(revived, LearnedMask)
    loaded = run_model_saving_test(
        explainer,
        images[:4],
        tmp_path,
        outputs=lambda model, x: model.explain(x),
    )
    assert loaded.judge_is_hardened  # so a new `fit` does not harden again
    assert not loaded.classifier.trainable


def test_evaluate_explanations_scores_it():
    test = kca.datasets.synthetic(num_images=8, image_size=24, seed=1)
    classifier = kca.models.build_classifier(
        (24, 24, 3), 4, widths=(4, 8), blocks_per_stage=1
    )
    explainer = LearnedMask(classifier, hardening=False)
    results = kca.evaluation.evaluate_explanations(
        explainer,  # an explainer object: its `explain` is called
        test["images"],
        test["labels"],
        classifier,
        masks=test["masks"],
        part_masks=test["part_masks"],
        deletion_steps=2,
    )
    assert 0.0 <= results["pxap"] <= 100.0
    assert results["all_parts_covered"] is not None
    assert results["images_per_second"] > 0


def test_refuses_what_it_sets_itself_and_a_trainable_classifier():
    classifier = kca.models.build_classifier(SHAPE, K, widths=(4,))
    with pytest.raises(TypeError, match="sets predictor"):
        LearnedMask(classifier, predictor=classifier)
    with pytest.raises(TypeError, match="Keras classifier"):
        LearnedMask("resnet18")
    explainer = LearnedMask(classifier, hardening=False)
    classifier.trainable = True
    images, _ = _data(8)
    with pytest.raises(ValueError, match="never changes it"):
        explainer.fit(images, epochs=1, verbose=0)


def test_default_selector_follows_the_image_size():
    from keras_compattr.explainers.learned_mask import default_selector

    small = default_selector((32, 32, 3))
    assert small.output_shape == (None, 16, 16, 1)  # "tiny": stride 2
    large = default_selector((128, 128, 3))
    assert large.output_shape[1] == 16  # MobileNetV3-Small: stride 8


def _starts_from(selector, classifier):
    """The selector holds copies of the classifier's convolution kernels
    (equal values, other variables: training it leaves the classifier
    alone)."""
    kernels = {
        v.path.split("/")[-2]: keras.ops.convert_to_numpy(v)
        for v in classifier.weights
        if v.path.endswith("kernel")
    }
    copied = [
        v
        for v in selector.weights
        if v.path.endswith("kernel") and v.path.split("/")[-2] in kernels
    ]
    ids = {id(v) for v in classifier.weights}
    return bool(copied) and all(
        id(v) not in ids
        and np.array_equal(
            keras.ops.convert_to_numpy(v), kernels[v.path.split("/")[-2]]
        )
        for v in copied
    )


def _rescaling_scales(model):
    scales = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Rescaling):
            scales.append(layer.scale)
        elif isinstance(layer, keras.Model):
            scales += _rescaling_scales(layer)
    return scales


def test_default_selector_starts_from_the_classifiers_own_features():
    from keras_compattr.explainers.learned_mask import default_selector

    classifier = _classifier()
    classifier.trainable = False
    selector = default_selector(SHAPE, classifier)
    assert selector.output_shape[-1] == 1
    assert selector.trainable_weights
    assert _starts_from(selector, classifier)
    # A backbone nested behind preprocessing layers (a keras.applications
    # model after `Rescaling(255)`): a copy of it, the preprocessing first.
    nested = keras.Sequential(
        [keras.Input(SHAPE), keras.layers.Rescaling(2.0), classifier]
    )
    started = default_selector(SHAPE, nested)
    assert started.output_shape[-1] == 1
    assert _starts_from(started, classifier)
    assert 2.0 in _rescaling_scales(started)  # runs before the copy
    # No feature maps at all: the small selector from scratch.
    dense = keras.Sequential(
        [keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(K)]
    )
    fallback = default_selector(SHAPE, dense)
    assert fallback.output_shape == (None, 8, 8, 1)  # "tiny": stride 2
    # `fit` compiles a started selector with the smaller rate.
    from keras_compattr.explainers import learned_mask

    assert LearnedMask(classifier).default_learning_rate == (
        learned_mask.CLASSIFIER_SELECTOR_LEARNING_RATE
    )
    assert LearnedMask(dense).default_learning_rate == (
        learned_mask.LEARNING_RATE
    )


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the TensorFlow run starts the other backends",
)
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_contract_on_other_backends(backend, fitted, tmp_path):
    explainer, images = fitted["explainer"], fitted["images"][:4]
    saved = os.path.join(tmp_path, "learned_mask.keras")
    explainer.save(saved)
    maps_file = os.path.join(tmp_path, "maps.npz")
    np.savez(maps_file, images=images, maps=explainer.explain(images))
    found = run_script_in_fresh_process(
        "learned_mask_contract.py", backend, saved, maps_file
    )
    assert found["backend"] == backend
    assert found["reloaded_difference"] < 1e-5
    assert found["num_weights"] > 10
    assert found["unchanged"]
    assert found["selector_moved"] and found["judge_moved"]
    assert found["labels_are_predictions"]
    assert found["shape"] == [3, *SHAPE[:2]]
    assert 0.0 <= found["low"] and found["high"] <= 1.0
