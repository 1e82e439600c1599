"""Bad input gets a clear error before any graph is built (issue 7)."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_compattr as kca
from keras_compattr.utils import data_checks
from keras_compattr.utils import image_checks
from keras_compattr.utils.labels import validate_labels
from tests.resume_worker import NUM_CLASSES
from tests.resume_worker import SHAPE
from tests.resume_worker import build
from tests.resume_worker import network

H, W, C = SHAPE


# Small networks (from the resume worker) on 16x16 images keep the many
# predictions and compilations here fast, on JAX too.


@pytest.fixture(scope="module")
def model():
    return build(0, fill_value=0.5)


def _images(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, *SHAPE)).astype("float32")


def _labels(n=4):
    return np.arange(n) % NUM_CLASSES


def _with_nan():
    images = _images()
    images[2, 5, 5, 1] = np.nan
    return images


def _with_inf():
    images = _images()
    images[1, 0, 0, 0] = np.inf
    return images


BAD_IMAGES = [
    ("no_channel_axis", lambda: _images()[..., 0], ValueError, "channel axis"),
    ("grayscale", lambda: _images()[..., :1], ValueError, "np.repeat"),
    (
        "rgba",
        lambda: np.concatenate([_images()] * 2, -1)[..., :4],
        ValueError,
        "alpha",
    ),
    (
        "channels_first",
        lambda: _images().transpose(0, 3, 1, 2),
        ValueError,
        "channels-first",
    ),
    ("wrong_size", lambda: _images()[:, :8, :8], ValueError, "Resize"),
    ("rank_5", lambda: _images()[None], ValueError, r"\(N, 16, 16, 3\)"),
    ("empty", lambda: _images()[:0], ValueError, "no image"),
    ("strings", lambda: np.full((2, *SHAPE), "a"), TypeError, "real numbers"),
    ("bool", lambda: _images() > 0.5, TypeError, "astype"),
    ("complex", lambda: _images().astype("complex64"), TypeError, "complex"),
    ("nan", _with_nan, ValueError, "NaN or infinite pixel.*image 2"),
    ("inf", _with_inf, ValueError, "NaN or infinite pixel.*image 1"),
    (
        "int_over_255",
        lambda: (_images() * 4095).astype("int32"),
        ValueError,
        "0..255",
    ),
    (
        "negative_int",
        lambda: (_images() * 255 - 10).astype("int16"),
        ValueError,
        "0..255",
    ),
    (
        "ragged_list",
        lambda: [_images()[0], _images()[0, :8]],
        ValueError,
        "np.stack",
    ),
    ("object", lambda: object(), TypeError, "array or tensor"),
    ("dict", lambda: {"image": _images()}, TypeError, "one input"),
]


@pytest.mark.parametrize(
    "make, error, match",
    [case[1:] for case in BAD_IMAGES],
    ids=[case[0] for case in BAD_IMAGES],
)
def test_bad_images_are_refused_by_every_entry_point(model, make, error, match):
    images = make()
    with pytest.raises(error, match=match):
        model.predict(images, verbose=0)
    with pytest.raises(error, match=match):
        model.explain(images, verbose=0)
    labels = _labels(len(images)) if hasattr(images, "__len__") else None
    with pytest.raises(error, match=match):
        model.evaluate(images, labels, verbose=0)


def test_errors_come_before_any_graph_is_built():
    model = build(0, fill_value=0.5)
    with pytest.raises(ValueError, match="Resize"):
        model.fit(_images()[:, :8, :8], _labels(), verbose=0)
    with pytest.raises(ValueError, match="NaN"):
        model.predict(_with_nan(), verbose=0)
    assert model.train_function is None
    assert model.predict_function is None
    # Nothing was adapted from the bad data either.
    assert model.fill_is_set


def test_float_images_far_outside_unit_range_warn(model):
    with pytest.warns(UserWarning, match="divide them by 255"):
        image_checks.check_image_values(_images() * 255.0)
    with pytest.warns(UserWarning, match="normalised"):
        image_checks.check_image_values(_images() * 4.0 - 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Small overshoots (e.g. from augmentation) and uint8 are fine.
        image_checks.check_image_values(_images() * 1.2 - 0.1)
        image_checks.check_image_values((_images() * 255).astype("uint8"))
        # The model also reads float 0..255 pixels (see the next test).
        image_checks.check_image_values(_images() * 255.0, allow_255=True)
    with pytest.warns(UserWarning, match="go beyond 255"):
        image_checks.check_image_values(_images() * 300.0, allow_255=True)
    with pytest.warns(UserWarning, match="far outside"):
        model.predict(_images(2) * 4.0 - 2.0, verbose=0)


def test_to_unit_range_reads_each_float_image_as_0_1_or_0_255():
    from keras_compattr.utils import to_unit_range
    from keras_compattr.utils import to_unit_range_numpy

    unit = _images(4)
    batch = np.concatenate(
        [
            unit[:1],  # [0, 1]: kept
            unit[1:2] * 255.0,  # 0..255 floats: divided by 255
            unit[2:3] * 1.2 - 0.1,  # an overshoot of [0, 1]: kept
            unit[3:4] * 4.0 - 2.0,  # normalised: neither, kept
        ]
    ).astype("float32")
    expected = batch.copy()
    expected[1] = unit[1]
    for convert in (to_unit_range, to_unit_range_numpy):
        out = keras.ops.convert_to_numpy(convert(batch))
        np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    eight_bit = np.round(unit * 255).astype("uint8")
    np.testing.assert_allclose(
        to_unit_range_numpy(eight_bit), eight_bit / 255.0, rtol=1e-6
    )


BAD_LABELS = [
    ("too_large", np.array([0, 1, 2, 3]), "in \\[0, 3\\)"),
    ("one_based", np.array([1, 2, 3, 3]), "subtract 1"),
    ("negative", np.array([0, -1, 1, 2]), "in \\[0, 3\\)"),
    ("too_few", np.array([0, 1, 2]), "one label per image"),
    ("wrong_columns", np.zeros((4, 5)), "one column per class"),
    ("rank_3", np.zeros((4, 3, 1)), "shape \\(N,\\)"),
    ("fractional", np.array([0.0, 0.5, 1.0, 2.0]), "non-integer"),
    ("bad_one_hot", np.ones((4, NUM_CLASSES)), "sum to 1"),
    ("negative_one_hot", np.array([[2.0, -1.0, 0.0]] * 4), "non-negative"),
    ("nan", np.array([0.0, np.nan, 1.0, 2.0]), "NaN"),
]


@pytest.mark.parametrize(
    "labels, match",
    [case[1:] for case in BAD_LABELS],
    ids=[case[0] for case in BAD_LABELS],
)
def test_bad_labels_are_refused(model, labels, match):
    with pytest.raises(ValueError, match=match):
        model.evaluate(_images(), labels, verbose=0)


def test_label_type_and_presence(model):
    with pytest.raises(TypeError, match="class indices"):
        model.evaluate(_images(), np.array(["a", "b", "c", "a"]), verbose=0)
    with pytest.raises(ValueError, match="Labels are required"):
        model.evaluate(_images(), verbose=0)


def test_integer_one_hot_and_soft_labels_are_accepted():
    for labels in (
        np.array([0, 1, 2, 0]),
        np.array([[0], [1], [2], [0]], "float32"),
        np.eye(NUM_CLASSES)[[0, 1, 2, 0]],
        np.full((4, NUM_CLASSES), 1.0 / NUM_CLASSES),
        tf.constant([0, 1, 2, 0]),
    ):
        validate_labels(labels, NUM_CLASSES, 4)


def _dataset(*parts, batch=4):
    return tf.data.Dataset.from_tensor_slices(parts).batch(batch)


def test_datasets_are_checked_from_their_element_spec(model):
    images, labels = _images(), _labels()
    cases = [
        (
            tf.data.Dataset.from_tensor_slices(
                {"image": images, "label": labels}
            ).batch(2),
            ValueError,
            "dicts",
        ),
        (_dataset(images), ValueError, "images only"),
        (_dataset(images, labels, images[..., 0]), ValueError, "with_masks"),
        (
            tf.data.Dataset.from_tensor_slices((images, labels)),
            ValueError,
            "ds.batch",
        ),
        (_dataset(images[:, :8, :8], labels), ValueError, "Resize"),
        (_dataset(np.full((4,), "x"), labels), TypeError, "decode"),
        (_dataset(images, np.zeros((4, 5))), ValueError, "one column"),
        (_dataset(images, np.full((4,), "a")), TypeError, "class indices"),
    ]
    for dataset, error, match in cases:
        with pytest.raises(error, match=match):
            model.evaluate(dataset, verbose=0)
    # A dataset and separate labels at once.
    with pytest.raises(ValueError, match="must be `None`"):
        model.evaluate(_dataset(images, labels), labels, verbose=0)
    # Prediction takes images alone or the first element of a tuple.
    for dataset in (_dataset(images), _dataset(images, labels)):
        assert model.predict(dataset, verbose=0).shape == (4, NUM_CLASSES)
    with pytest.raises(ValueError, match="Resize"):
        model.explain(_dataset(images[:, :8, :8]), verbose=0)


def test_generators_and_pydatasets_are_checked(model):
    def generator(batches):
        yield from batches

    good = (_images(), _labels())
    # The first batch is checked at once, fully.
    with pytest.raises(ValueError, match="NaN"):
        model.evaluate(generator([(_with_nan(), _labels())]), verbose=0)
    with pytest.raises(ValueError, match="no batch"):
        model.predict(generator([]), verbose=0)
    # Later batches are checked for shape as they are read.
    with pytest.raises(ValueError, match="Resize"):
        model.evaluate(
            generator([good, (_images()[:, :8, :8], _labels())]), verbose=0
        )

    class Batches(keras.utils.PyDataset):
        def __init__(self, images):
            super().__init__()
            self.images = images

        def __len__(self):
            return 2

        def __getitem__(self, index):
            return self.images, _labels(len(self.images))

    with pytest.raises(ValueError, match="grayscale|np.repeat"):
        model.evaluate(Batches(_images()[..., :1]), verbose=0)
    logs = model.evaluate(Batches(_images()), verbose=0, return_dict=True)
    assert np.isfinite(logs["loss"])


def test_fit_and_evaluate_take_keras_positional_arguments():
    # `fit(x, y, 2, 3)` is batch size 2 and 3 epochs, as for any Keras
    # model; `refresh_batch_norm` is keyword-only.
    model = build(0, fill_value=0.5)
    model.compile(optimizer="sgd")
    history = model.fit(_images(), _labels(), 2, 3, 0)
    assert history.params["epochs"] == 3
    assert history.params["steps"] == 2
    history = model.fit(_images(), _labels(), 4, 1, 0, refresh_batch_norm=0)
    assert history.params["steps"] == 1
    logs = model.evaluate(_images(), _labels(), 2, 0, None, 1, None, True)
    assert isinstance(logs, dict) and np.isfinite(logs["loss"])
    with pytest.raises(TypeError):
        model.fit(_images(), _labels(), batch_sise=2, verbose=0)


def test_sample_weights_weight_each_image_in_the_batch_means(model):
    # Weights (1, 0, 0, 0) give the terms of the first image alone.
    images, labels = _images(), _labels()
    weighted = model.test_on_batch(
        images, labels, sample_weight=np.array([1.0, 0, 0, 0]), return_dict=True
    )
    alone = model.test_on_batch(images[:1], labels[:1], return_dict=True)
    unweighted = model.test_on_batch(images, labels, return_dict=True)
    for name in ("predictor_loss", "detector_loss", "area_penalty"):
        assert weighted[name] == pytest.approx(alone[name], rel=1e-5), name
    assert weighted["predictor_loss"] != pytest.approx(
        unweighted["predictor_loss"], rel=1e-3
    )


def test_class_and_sample_weights_are_accepted_by_fit():
    model = build(0, fill_value=0.5)
    model.compile(optimizer="sgd")
    weights = {0: 2.0, 1: 1.0, 2: 0.5}
    history = model.fit(_images(), _labels(), class_weight=weights, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    model.fit(_images(), _labels(), sample_weight=np.ones(4), verbose=0)
    model.train_on_batch(_images(), _labels(), class_weight=weights)
    model.fit(
        _images(),
        _labels(),
        validation_data=(_images(), _labels(), np.ones(4)),
        verbose=0,
    )
    with pytest.raises(ValueError, match="validation_data\\[1\\]"):
        model.fit(
            _images(),
            _labels(),
            validation_data=(_images(), _labels() + 5),
            verbose=0,
        )


def test_batch_methods_check_inputs(model):
    before = [np.array(v) for v in model.get_weights()]
    with pytest.raises(ValueError, match="NaN or infinite pixel"):
        model.train_on_batch(_with_nan(), _labels())
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        model.test_on_batch(_images(), _labels() + NUM_CLASSES)
    after = model.get_weights()
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"detector_weight": -1.0}, ValueError, "detector_weight.*>= 0"),
        ({"detector_weight": -0.5}, ValueError, "detector_weight.*>= 0"),
        ({"detector_weight": float("nan")}, ValueError, "finite"),
        ({"detector_weight": "4"}, TypeError, "real number"),
        ({"area_weight": -100.0}, ValueError, "area_weight.*>= 0"),
        ({"area_weight": float("inf")}, ValueError, "finite"),
        ({"smoothness_weight": -0.1}, ValueError, "smoothness_weight"),
        ({"margin": float("nan")}, ValueError, "margin.*finite"),
    ],
)
def test_bad_objective_weights_are_refused(kwargs, error, match):
    # A detector weight of -1 made the predictor's gradient factor
    # `1 + a` zero, and one step gave NaN weights.
    with pytest.raises(error, match=match):
        build(0, compile=False, **kwargs)


def test_zero_detector_weight_and_negative_margin_are_accepted():
    assert build(0, compile=False, detector_weight=0.0).detector_weight == 0
    assert build(0, compile=False, margin=-1.0).margin == -1.0


def test_one_image_of_rank_3_is_a_batch_of_one(model):
    images = _images(3)
    masks = model.explain(images[1], verbose=0)
    probabilities = model.predict(images[1], verbose=0)
    assert masks.shape == (1, H, W)
    assert probabilities.shape == (1, NUM_CLASSES)
    np.testing.assert_allclose(
        masks, model.explain(images[1:2], verbose=0), atol=1e-6
    )
    np.testing.assert_allclose(
        probabilities, model.predict(images[1:2], verbose=0), atol=1e-6
    )
    # Training needs a batch: a single image is refused with the fix.
    with pytest.raises(ValueError, match=r"images\[None\]"):
        model.fit(images[0], _labels(1), verbose=0)


def test_any_count_and_any_input_kind_keeps_order(model):
    images = _images(7, seed=3)
    masks = model.explain(images, batch_size=7, verbose=0)
    probabilities = model.predict(images, batch_size=7, verbose=0)

    def generator():
        for start in (0, 3, 6):
            yield (images[start : start + 3],)

    inputs = {
        "batch_3": (images, 3),
        "batch_1": (images, 1),
        "tensor": (tf.constant(images), 2),
        "list": (list(images), 4),
        "dataset": (tf.data.Dataset.from_tensor_slices(images).batch(3), None),
    }
    for name, (x, batch_size) in inputs.items():
        np.testing.assert_allclose(
            model.explain(x, batch_size=batch_size or 32, verbose=0),
            masks,
            atol=1e-6,
            err_msg=name,
        )
        np.testing.assert_allclose(
            model.predict(x, batch_size=batch_size, verbose=0),
            probabilities,
            atol=1e-6,
            err_msg=name,
        )
    np.testing.assert_allclose(
        model.explain(generator(), verbose=0), masks, atol=1e-6
    )
    np.testing.assert_allclose(
        model.predict(generator(), verbose=0), probabilities, atol=1e-6
    )
    assert model.explain(images[:1], verbose=0).shape == (1, H, W)


def _messages(record):
    return [str(w.message) for w in record]


def test_untrained_detector_warns_and_trained_one_does_not():
    images = _images(24, seed=1)
    # An untrained detector is no better than chance on random labels.
    # (The check reads the detector itself; without hardening each `fit`
    # skips the judge's fine-tuning, minutes in all.)
    model = build(0, fill_value=0.5, hardening=False)
    outputs = keras.ops.convert_to_numpy(model.detector(images))
    predicted = outputs.argmax(-1)
    wrong = (predicted + 1) % NUM_CLASSES
    with pytest.warns(UserWarning, match="looks untrained"):
        model.fit(images, wrong, epochs=0, verbose=0)
    assert model.detector_accuracy(images, wrong) == 0.0
    # Labels the detector gets right: no warning.
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model.fit(images, predicted, epochs=0, verbose=0)
        model.fit(
            tf.data.Dataset.from_tensor_slices((images, predicted)).batch(8),
            epochs=0,
            verbose=0,
        )
    assert not [m for m in _messages(record) if "detector" in m]
    assert model.detector_accuracy(images, predicted) == 1.0
    # Without the detector term, the detector is not checked.
    ablation = build(0, fill_value=0.5, detector_weight=0.0, hardening=False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ablation.fit(images, wrong, epochs=0, verbose=0)
    assert not [m for m in _messages(record) if "detector" in m]


def test_detector_with_nan_outputs_warns_and_generator_keeps_batches():
    model = build(0, fill_value=0.5)
    logits = model.detector.get_layer("logits")
    logits.kernel.assign(np.full(logits.kernel.shape, np.nan, "float32"))
    images = np.random.default_rng(0).uniform(0, 1, (8, *SHAPE))
    images = images.astype("float32")
    seen = []

    def generator():
        for start in (0, 4):
            seen.append(start)
            yield images[start : start + 4], _labels(4)

    with pytest.warns(UserWarning, match="NaN or infinite outputs"):
        model.fit(generator(), epochs=1, verbose=0)
    # The batch read for the check was given back to training: as many
    # steps ran as without the check.
    assert seen == [0, 4]
    unchecked = build(0, fill_value=0.5, detector_weight=0.0)
    unchecked.fit(generator(), epochs=1, verbose=0)
    assert seen == [0, 4, 0, 4]
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.optimizer.iterations),
        keras.ops.convert_to_numpy(unchecked.optimizer.iterations),
    )


def test_adapt_refuses_nan_images():
    with pytest.raises(ValueError, match="NaN"):
        build(0, compile=False).adapt(_with_nan())


def test_trainable_detector_is_frozen_at_construction():
    detector = network("classifier", "detector")
    assert detector.trainable
    model = kca.ComprehensiveAttributionModel(
        selector=network("selector", "selector"),
        predictor=network("classifier", "predictor"),
        detector=detector,
    )
    assert not model.detector.trainable
    assert not model.detector.trainable_variables


def test_direct_validators_accept_good_input():
    images = _images()
    out, single = image_checks.validate_images(images, SHAPE)
    assert out is images and not single
    out, single = image_checks.validate_images(
        images[0], SHAPE, allow_single_image=True
    )
    assert single and out.shape == (1, *SHAPE)
    uint8 = (images * 255).astype("uint8")
    assert image_checks.validate_images(uint8, SHAPE)[0] is uint8
    spec_ok = tf.data.Dataset.from_tensor_slices((images, _labels())).batch(2)
    data_checks.validate_dataset_spec(spec_ok, SHAPE, NUM_CLASSES, True)
    assert kca.models.ComprehensiveAttributionModel is not None


def test_image_dataset_from_directory_batches_are_read_as_they_come(
    tmp_path,
):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in range(NUM_CLASSES):
        folder = tmp_path / f"class_{label}"
        folder.mkdir()
        for index in range(4):
            pixels = rng.integers(0, 256, SHAPE, dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{index}.png")
    ds = keras.utils.image_dataset_from_directory(
        tmp_path, image_size=(H, W), batch_size=4, shuffle=False
    )
    images, labels = next(iter(ds))
    images = np.asarray(images)
    assert images.dtype == np.float32 and images.max() > 1.5  # 0..255
    model = build(0, fill_value=0.5)
    with warnings.catch_warnings():
        # No word on the pixel range: 0..255 floats are read as such.
        warnings.filterwarnings("error", ".*(far outside|pixels)")
        model.fit(ds, epochs=1, verbose=0)
        logs = model.evaluate(ds, verbose=0, return_dict=True)
        predicted = model.predict(images, verbose=0)
        masks = model.explain(images, verbose=0)
    # As the same images in [0, 1], and as uint8.
    unit = images / 255.0
    np.testing.assert_allclose(
        predicted, model.predict(unit, verbose=0), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        masks, model.explain(unit, verbose=0), rtol=1e-5, atol=1e-6
    )
    as_arrays = model.evaluate(
        np.concatenate([np.asarray(x) for x, _ in ds]) / 255.0,
        np.concatenate([np.asarray(y) for _, y in ds]),
        batch_size=4,  # The batch hinge reads batch means: same batches.
        verbose=0,
        return_dict=True,
    )
    assert logs["accuracy"] == pytest.approx(as_arrays["accuracy"])
    assert logs["loss"] == pytest.approx(as_arrays["loss"], rel=1e-4)
