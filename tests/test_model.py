import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_compattr as kca
from tests.conftest import NUM_CLASSES
from tests.conftest import SHAPE
from tests.conftest import tiny_classifier
from tests.conftest import tiny_model
from tests.helpers import LOG_NAMES
from tests.helpers import run_model_saving_test
from tests.helpers import run_serialization_test


def _weights(model):
    return [keras.ops.convert_to_numpy(v).copy() for v in model.weights]


def test_infers_shape_and_classes_and_builds_defaults():
    model = kca.ComprehensiveAttributionModel(
        num_classes=NUM_CLASSES, input_shape=SHAPE, detector=tiny_classifier()
    )
    assert model.image_shape == SHAPE
    assert model.num_classes == NUM_CLASSES
    # Default selector (LR-ASPP on MobileNetV3Small) and ResNet-18 predictor.
    assert model.selector.output_shape[-1] == 1
    assert model.predictor.output_shape == (None, NUM_CLASSES)
    assert model.detector.trainable is False
    masks = model.explain(np.zeros((2, *SHAPE), "float32"), verbose=0)
    assert masks.shape == (2, 32, 32)


def test_constructor_errors_name_the_problem():
    with pytest.raises(ValueError, match="detector"):
        kca.ComprehensiveAttributionModel(num_classes=3, input_shape=SHAPE)
    with pytest.raises(ValueError, match="number of classes differs"):
        kca.ComprehensiveAttributionModel(
            predictor=kca.models.build_classifier(SHAPE, 5, widths=(4,)),
            detector=tiny_classifier(),
        )
    with pytest.raises(ValueError, match="disagree on the image shape"):
        kca.ComprehensiveAttributionModel(
            input_shape=(16, 16, 3), detector=tiny_classifier()
        )
    with pytest.raises(ValueError, match="detector_term"):
        tiny_model(detector_term="hinged")
    with pytest.raises(ValueError, match="area_budget"):
        tiny_model(area_budget=1.5)
    with pytest.raises(ValueError, match="fill_value"):
        tiny_model(fill_value=[0.1, 0.2])
    model = tiny_model()
    with pytest.raises(ValueError, match="loss"):
        model.compile(loss="mse")


def test_fit_predict_explain_evaluate_on_arrays(data):
    model = tiny_model()
    model.compile()
    history = model.fit(
        data["images"], data["labels"], batch_size=8, epochs=2, verbose=0
    )
    assert LOG_NAMES <= set(history.history)
    assert all(np.isfinite(v).all() for v in history.history.values())
    probabilities = model.predict(data["images"][:5], verbose=0)
    assert probabilities.shape == (5, NUM_CLASSES)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    masks = model.explain(data["images"][:5], batch_size=2, verbose=0)
    assert masks.shape == (5, 32, 32) and masks.dtype == np.float32
    assert masks.min() >= 0.0 and masks.max() <= 1.0
    logs = model.evaluate(
        data["images"], data["labels"], verbose=0, return_dict=True
    )
    assert LOG_NAMES == set(logs)


def test_fit_on_dataset_with_validation_and_one_hot_labels(data):
    model = tiny_model()
    model.compile()
    one_hot = np.eye(NUM_CLASSES, dtype="float32")[data["labels"]]
    ds = tf.data.Dataset.from_tensor_slices((data["images"], one_hot))
    ds = ds.batch(8)
    history = model.fit(ds, validation_data=ds, epochs=1, verbose=0)
    assert {"val_loss", "val_accuracy", "val_mask_area"} <= set(history.history)
    masks = model.explain(ds, verbose=0)
    assert masks.shape == (24, 32, 32)


def test_jit_compile_true_matches_eager(data):
    # Train, test, predict and explain steps, each compiled with XLA, give
    # what the same steps give without it.
    images, labels = data["images"][:8], data["labels"][:8]
    results = []
    for jit in (False, True):
        model = tiny_model(fill_value=0.5)
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=jit)
        assert model.jit_compile is jit
        train_logs = model.train_on_batch(images, labels, return_dict=True)
        test_logs = model.test_on_batch(images, labels, return_dict=True)
        results.append(
            (
                train_logs,
                test_logs,
                model.predict(images, verbose=0),
                model.explain(images, verbose=0),
                # The default `area_budget="auto"`: its state steps in
                # `train_step`, under XLA too.
                [
                    keras.ops.convert_to_numpy(v)
                    for v in model.area_control.weights
                ],
            )
        )
        assert model._mask_model.jit_compile is jit
    eager, compiled = results
    for name in LOG_NAMES:
        for step in (0, 1):
            np.testing.assert_allclose(
                eager[step][name], compiled[step][name], rtol=1e-4, atol=1e-5
            )
    np.testing.assert_allclose(eager[2], compiled[2], atol=1e-4)
    np.testing.assert_allclose(eager[3], compiled[3], atol=1e-4)
    assert len(eager[4]) > 0
    for state, compiled_state in zip(eager[4], compiled[4]):
        np.testing.assert_allclose(state, compiled_state, rtol=1e-4, atol=1e-5)


def test_uint8_images_are_scaled(data):
    model = tiny_model(fill_value=0.5)
    as_uint8 = np.round(data["images"][:4] * 255).astype("uint8")
    as_float = as_uint8.astype("float32") / 255.0
    np.testing.assert_allclose(
        model.explain(as_uint8, verbose=0),
        model.explain(as_float, verbose=0),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        model.predict(as_uint8, verbose=0),
        model.predict(as_float, verbose=0),
        atol=1e-6,
    )


def test_fill_value_is_the_training_mean_and_is_saved(data, tmp_path):
    model = tiny_model()
    assert not model.fill_is_set
    model.compile()
    model.fit(data["images"], data["labels"], epochs=1, verbose=0)
    expected = data["images"].astype("float64").mean(axis=(0, 1, 2))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.fill), expected, rtol=1e-5
    )
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.fill_is_set
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded.fill), expected, rtol=1e-5
    )


def test_constant_fill_value_and_masked_images():
    model = tiny_model(fill_value=[0.1, 0.2, 0.3])
    assert model.fill_is_set
    images = np.random.default_rng(0).uniform(0, 1, (2, *SHAPE))
    images = images.astype("float32")
    masks = np.random.default_rng(1).uniform(0, 1, (2, 32, 32, 1))
    masks = masks.astype("float32")
    masked_in, masked_out = model.apply_masks(images, masks)
    q = np.array([0.1, 0.2, 0.3], "float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(masked_in),
        masks * images + (1 - masks) * q,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(masked_out),
        (1 - masks) * images + masks * q,
        atol=1e-6,
    )


def test_adapt_reads_datasets_and_rejects_generators(data):
    model = tiny_model()
    ds = tf.data.Dataset.from_tensor_slices(
        (data["images"], data["labels"])
    ).batch(5)
    mean = model.adapt(ds)
    np.testing.assert_allclose(
        mean, data["images"].astype("float64").mean(axis=(0, 1, 2)), rtol=1e-5
    )

    def generator():
        yield data["images"][:4], data["labels"][:4]

    with pytest.raises(ValueError, match="fill_value"):
        tiny_model().adapt(generator())


def test_probability_and_logit_detectors_give_the_same_objective(data):
    logits_detector = tiny_classifier("detector")
    probability_detector = keras.Model(
        logits_detector.input,
        keras.layers.Softmax()(logits_detector.output),
    )
    terms = []
    for detector in (logits_detector, probability_detector):
        model = tiny_model(detector=detector, fill_value=0.5)
        terms.append(
            model.compute_terms(data["images"][:6], data["labels"][:6])
        )
    for name in ("detector_loss", "selector_loss", "predictor_loss"):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(terms[0][name]),
            keras.ops.convert_to_numpy(terms[1][name]),
            rtol=1e-5,
        )


def test_output_kind_is_read_from_the_last_layer():
    model = tiny_model(detector=tiny_classifier(softmax=True))
    assert model._detector_output_kind == "probabilities"
    assert model._predictor_output_kind == "logits"
    assert tiny_model()._detector_output_kind == "logits"


def test_detector_stays_bit_identical_through_fit_and_save(data, tmp_path):
    model = tiny_model()
    before = _weights(model.detector)
    model.compile()
    model.fit(data["images"], data["labels"], epochs=2, batch_size=8, verbose=0)
    for b, a in zip(before, _weights(model.detector)):
        np.testing.assert_array_equal(b, a)
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    for b, a in zip(before, _weights(loaded.detector)):
        np.testing.assert_array_equal(b, a)


def test_detector_made_trainable_again_is_refused(data):
    model = tiny_model()
    model.compile()
    model.detector.trainable = True
    with pytest.raises(ValueError, match="frozen"):
        model.fit(data["images"], data["labels"], epochs=1, verbose=0)


def test_save_load_gives_identical_outputs(data, tmp_path):
    model = tiny_model(hinge_reduction="sample", detector_term="entropy")
    model.compile()
    model.fit(data["images"], data["labels"], epochs=1, batch_size=8, verbose=0)
    loaded = run_model_saving_test(
        model,
        data["images"][:7],
        tmp_path,
        outputs=lambda m, x: [m.explain(x, verbose=0), m.predict(x, verbose=0)],
    )
    # The optimizer comes back too, so training can go on.
    assert loaded.compiled
    loaded.fit(data["images"], data["labels"], epochs=1, verbose=0)


def test_config_round_trip():
    model = tiny_model(margin=1.0, area_budget=0.3, fill_value=0.2)
    clone = run_serialization_test(model)
    assert clone.margin == 1.0 and clone.area_budget == 0.3


def test_explain_keeps_order_and_count_for_any_batch_size(data):
    model = tiny_model(fill_value=0.5)
    full = model.explain(data["images"][:7], batch_size=7, verbose=0)
    for batch_size in (1, 3, 32):
        masks = model.explain(
            data["images"][:7], batch_size=batch_size, verbose=0
        )
        np.testing.assert_allclose(masks, full, atol=1e-6)


def test_explain_outputs_agree_with_the_masks_the_model_applies(data):
    model = tiny_model(fill_value=0.5)
    images = data["images"][:5]
    applied = keras.ops.convert_to_numpy(model.compute_masks(images))[..., 0]
    masks = model.explain(images, verbose=0)
    logits = model.explain(images, verbose=0, output="logits")
    binary = model.explain(images, verbose=0, output="binary")
    np.testing.assert_allclose(masks, applied, atol=1e-5)
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), masks, atol=1e-5)
    np.testing.assert_array_equal(binary, (logits >= 0).astype("float32"))
    # The ranked map orders pixels as the logits do, within each image, and
    # is at least 0.5 exactly where the mask is.
    ranked = model.explain(images, verbose=0, output="ranked")
    assert ranked.min() >= 0.0 and ranked.max() <= 1.0
    np.testing.assert_array_equal(ranked >= 0.5, logits >= 0)
    for z, r in zip(logits, ranked):
        order = np.argsort(z.ravel(), kind="stable")
        assert np.all(np.diff(r.ravel()[order]) >= 0)
        assert r.max() == pytest.approx(1.0) or z.max() <= 0
    with pytest.raises(ValueError, match="output"):
        model.explain(images, verbose=0, output="probabilities")


def test_no_detector_ablation_trains(data):
    model = tiny_model(detector_weight=0.0)
    model.compile()
    history = model.fit(data["images"], data["labels"], epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_regularization_losses_reach_their_network(data):
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(
        2, 3, kernel_regularizer=keras.regularizers.L2(10.0)
    )(inputs)
    selector = keras.Model(inputs, x)
    model = kca.ComprehensiveAttributionModel(
        selector=selector,
        predictor=tiny_classifier("predictor"),
        detector=tiny_classifier("detector"),
        fill_value=0.5,
        area_budget=0.6,
    )
    terms = model.compute_terms(data["images"][:4], data["labels"][:4])
    plain = (
        keras.ops.convert_to_numpy(terms["predictor_loss"])
        + 4.0 * keras.ops.convert_to_numpy(terms["detector_term"])
        + 100.0 * keras.ops.convert_to_numpy(terms["area_penalty"])
    )
    penalty = 10.0 * np.sum(
        keras.ops.convert_to_numpy(selector.layers[1].kernel) ** 2
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(terms["selector_loss"]),
        plain + penalty,
        rtol=1e-4,
    )


def test_predictor_regularization_is_that_of_the_masked_in_pass(data):
    # The deletion term runs the predictor a second time, on another
    # image; the predictor's own objective keeps the first pass's losses.
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(2, 3)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(
        NUM_CLASSES, activity_regularizer=keras.regularizers.L1(1.0)
    )(x)
    predictor = keras.Model(inputs, outputs)
    model = kca.ComprehensiveAttributionModel(
        selector=kca.models.build_selector(SHAPE, backbone="tiny", width=4),
        predictor=predictor,
        detector=tiny_classifier("detector"),
        fill_value=0.5,
        deletion_weight=2.0,
    )
    images, labels = data["images"][:4], data["labels"][:4]
    terms = model.compute_terms(images, labels)
    masked_in, _ = model.apply_masks(images, model.compute_masks(images))
    predictor(masked_in, training=False)
    expected = float(keras.ops.sum(predictor.losses))
    regularization = float(terms["predictor_objective"]) - float(
        terms["predictor_loss"]
    )
    assert expected > 1e-4
    assert regularization == pytest.approx(expected, rel=1e-4)
    assert float(terms["deletion_term"]) > 0.0


def test_separate_predictor_optimizer(data, tmp_path):
    # SGD at rate 0 for the predictor: only the selector may move.
    model = tiny_model(fill_value=0.5)
    model.compile(
        optimizer=keras.optimizers.SGD(0.5),
        predictor_optimizer=keras.optimizers.SGD(0.0),
    )
    selector_before = _weights(model.selector)
    predictor_before = [
        keras.ops.convert_to_numpy(v).copy() for v in model.predictor_variables
    ]
    model.fit(data["images"], data["labels"], epochs=1, verbose=0)
    for b, a in zip(predictor_before, model.predictor_variables):
        np.testing.assert_array_equal(b, keras.ops.convert_to_numpy(a))
    assert any(
        not np.array_equal(b, a)
        for b, a in zip(selector_before, _weights(model.selector))
    )
    path = os.path.join(tmp_path, "grouped.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, kca.models.GroupedOptimizer)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded.optimizer.iterations),
        keras.ops.convert_to_numpy(model.optimizer.iterations),
    )
    loaded.fit(data["images"], data["labels"], epochs=1, verbose=0)


def test_logged_terms_are_exact_means_over_uneven_batches(data):
    # 10 images in batches of 8 and 2: the batch means must be weighted by
    # batch size, or the 2-image batch counts as much as the 8-image one.
    model = tiny_model(fill_value=0.5)
    model.compile()
    images, labels = data["images"][:10], data["labels"][:10]
    logs = model.evaluate(
        images, labels, batch_size=8, verbose=0, return_dict=True
    )
    terms = model.compute_terms(images, labels, training=False)
    for name in ("predictor_loss", "detector_loss", "mask_area"):
        np.testing.assert_allclose(
            logs[name], keras.ops.convert_to_numpy(terms[name]), rtol=1e-5
        )
