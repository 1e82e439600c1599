"""Backbones from KerasHub, KerasCV, `keras.applications` and recipes.

The KerasHub and KerasCV tests are skipped when the package is missing
(`pip install "keras-compattr[hub,cv]"` runs them). Every network starts
from a random initialisation: pretrained weights need network access.
"""

import os
import sys

import keras
import numpy as np
import pytest

import keras_compattr as kca
from keras_compattr.models import recipes
from tests.conftest import NUM_CLASSES
from tests.conftest import SHAPE
from tests.conftest import tiny_classifier
from tests.conftest import tiny_selector


def _hub_resnet(keras_hub):
    # KerasHub's ResNet needs 64 filters in the stem and first stack.
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 8, 8, 8],
        stackwise_num_blocks=[1, 1, 1, 1],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="basic_block",
    )


def _cv_resnet(keras_cv):
    # KerasCV's ResNetV2 needs two blocks per stack (unique layer names).
    # Three stacks: pyramid levels P2 to P4 (strides 4 to 16).
    return keras_cv.models.ResNetV2Backbone(
        stackwise_filters=[8, 8, 8],
        stackwise_blocks=[2, 2, 2],
        stackwise_strides=[1, 2, 2],
        include_rescaling=True,
    )


def _fit_and_explain(model, data):
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    selector_before = [
        keras.ops.convert_to_numpy(v).copy()
        for v in model.selector.trainable_variables
    ]
    history = model.fit(
        data["images"][:8], data["labels"][:8], batch_size=4, verbose=0
    )
    assert all(np.isfinite(v).all() for v in history.history.values())
    moved = [
        not np.allclose(before, keras.ops.convert_to_numpy(after))
        for before, after in zip(
            selector_before, model.selector.trainable_variables
        )
    ]
    assert any(moved), "the selector did not train"
    masks = model.explain(data["images"][:3], verbose=0)
    assert masks.shape == (3, *SHAPE[:2])
    assert masks.min() >= 0.0 and masks.max() <= 1.0
    return masks


def _layer_types(model):
    return {type(layer).__name__ for layer in model.layers}


# === KerasHub ===


def test_keras_hub_backbones_and_classifier_train_explain_and_save(
    data, tmp_path
):
    keras_hub = pytest.importorskip("keras_hub")
    keras.utils.set_random_seed(0)
    converter = keras_hub.layers.ResNetImageConverter(
        image_size=SHAPE[:2], scale=1.0 / 127.5, offset=-1.0
    )
    classifier = keras_hub.models.ResNetImageClassifier(
        backbone=_hub_resnet(keras_hub),
        num_classes=NUM_CLASSES,
        preprocessor=keras_hub.models.ResNetImageClassifierPreprocessor(
            image_converter=converter
        ),
    )
    model = kca.ComprehensiveAttributionModel(
        selector=_hub_resnet(keras_hub),
        predictor=_hub_resnet(keras_hub),
        detector=classifier,
        input_shape=SHAPE,
    )
    # Selector: LR-ASPP over pyramid levels P3 (stride 8) and P5.
    assert model.selector.output_shape == (None, 4, 4, 1)
    assert "mask_logits" in {layer.name for layer in model.selector.layers}
    # Predictor: the backbone itself, then pooling and a Dense head.
    assert "ResNetBackbone" in _layer_types(model.predictor)
    assert model.predictor.output_shape == (None, NUM_CLASSES)
    # Detector: the classifier behind its own image converter, on 0..255.
    assert model.num_classes == NUM_CLASSES
    assert model._detector_output_kind == "logits"
    images = data["images"][:4]
    expected = classifier(converter(images * 255.0), training=False)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.detector(images, training=False)),
        keras.ops.convert_to_numpy(expected),
        atol=1e-5,
    )

    masks = _fit_and_explain(model, data)
    path = os.path.join(tmp_path, "hub.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert "ResNetBackbone" in _layer_types(loaded.predictor)
    np.testing.assert_allclose(
        loaded.explain(data["images"][:3], verbose=0), masks, atol=1e-6
    )
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0),
        model.predict(images, verbose=0),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded.detector(images, training=False)),
        keras.ops.convert_to_numpy(model.detector(images, training=False)),
        atol=1e-6,
    )


def test_keras_hub_backbone_is_not_a_detector():
    keras_hub = pytest.importorskip("keras_hub")
    with pytest.raises(ValueError, match="backbone without a classification"):
        kca.models.as_detector(_hub_resnet(keras_hub))


# === KerasCV ===


def test_keras_cv_backbones_and_classifier_train_and_explain(data):
    keras_cv = pytest.importorskip("keras_cv")
    keras.utils.set_random_seed(0)
    classifier = keras_cv.models.ImageClassifier(
        backbone=_cv_resnet(keras_cv), num_classes=NUM_CLASSES
    )
    model = kca.ComprehensiveAttributionModel(
        selector=_cv_resnet(keras_cv),
        predictor=_cv_resnet(keras_cv),
        detector=classifier,
        input_shape=SHAPE,
    )
    # `pyramid_level_inputs` P3 and P4 (the coarsest): LR-ASPP at stride 8.
    assert model.selector.output_shape == (None, 4, 4, 1)
    assert model.predictor.output_shape == (None, NUM_CLASSES)
    # `include_rescaling=True`: the networks get 0..255 pixels.
    for network in (model.selector, model.predictor, model.detector):
        modes = [
            layer.mode
            for layer in network.layers
            if isinstance(layer, kca.layers.ImagePreprocessing)
        ]
        assert modes == ["0_255"]
    # KerasCV classifiers end in a softmax, seen through the wrapper.
    assert model._detector_output_kind == "probabilities"
    _fit_and_explain(model, data)


# === keras.applications and recipe names ===


def test_keras_applications_extractor_and_recipe_name_train(data):
    keras.utils.set_random_seed(0)
    selector = keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=SHAPE
    )
    # A recipe name: the detector fixes the image shape and the classes.
    model = kca.ComprehensiveAttributionModel(
        selector=selector,
        predictor="mobilenet_v3_small",
        detector=tiny_classifier("detector"),
    )
    # Stride-8 and stride-32 taps of MobileNetV3: a 4x4 mask at 32 px.
    assert model.selector.output_shape == (None, 4, 4, 1)
    assert "mask_logits" in {layer.name for layer in model.selector.layers}
    assert model.predictor.output_shape == (None, NUM_CLASSES)
    assert model.predictor.layers[-1].name == "logits"
    _fit_and_explain(model, data)
    # The recipe was resolved to a concrete model: that is what is saved.
    config = model.get_config()
    assert config["predictor"]["class_name"] == "Functional"
    clone = kca.ComprehensiveAttributionModel.from_config(config)
    clone.set_weights(model.get_weights())
    images = data["images"][:3]
    for name in ("selector", "predictor"):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(
                getattr(clone, name)(images, training=False)
            ),
            keras.ops.convert_to_numpy(
                getattr(model, name)(images, training=False)
            ),
            atol=1e-5,
        )


def test_pooled_feature_extractor_gets_a_dense_head():
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(4, 3, strides=2)(inputs)
    pooled = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    predictor = kca.models.as_predictor(pooled, num_classes=NUM_CLASSES)
    assert predictor.output_shape == (None, NUM_CLASSES)
    assert isinstance(predictor.layers[-1], keras.layers.Dense)


def test_plain_networks_pass_unchanged():
    selector = tiny_selector()
    predictor = tiny_classifier("predictor")
    detector = tiny_classifier("detector")
    assert kca.models.as_selector(selector) is selector
    assert kca.models.as_predictor(predictor) is predictor
    assert kca.models.as_detector(detector) is detector
    # A fine multi-channel map is a selector already: the model projects it.
    inputs = keras.Input(SHAPE)
    fine = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))
    assert kca.models.as_selector(fine) is fine


def test_detector_preprocessing_wraps_any_classifier():
    detector = tiny_classifier("detector")
    wrapped = kca.models.as_detector(detector, preprocessing="imagenet")
    images = np.random.default_rng(0).uniform(0, 1, (2, *SHAPE))
    images = images.astype("float32")
    mean = np.array([0.485, 0.456, 0.406], "float32")
    std = np.array([0.229, 0.224, 0.225], "float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(wrapped(images)),
        keras.ops.convert_to_numpy(detector((images - mean) / std)),
        atol=1e-5,
    )


# === Recipes ===


# Building these takes 10-30 s each on JAX (one XLA compilation per weight
# shape for the random initialisers); the resolution code is the same on
# every backend, so JAX builds only the two small recipes.
LARGE_RECIPES = ("resnet50", "efficientnet_v2_b0", "mobilenet_v3_large")


@pytest.mark.parametrize("recipe", recipes.RECIPES)
def test_recipes_build_selectors_and_predictors(recipe):
    if recipe in LARGE_RECIPES and keras.backend.backend() == "jax":
        pytest.skip("slow to initialise on JAX; built on TensorFlow")
    images = np.random.default_rng(0).uniform(0, 1, (2, *SHAPE))
    images = images.astype("float32")
    selector = kca.models.as_selector(recipe, SHAPE, head_channels=8)
    assert selector.output_shape[-1] == 1
    assert len(selector.output_shape) == 4
    predictor = kca.models.as_predictor(recipe, SHAPE, num_classes=5)
    assert predictor.output_shape == (None, 5)
    for network in (selector, predictor):
        outputs = keras.ops.convert_to_numpy(network(images))
        assert np.isfinite(outputs).all()


# === Errors ===


def test_errors_name_the_problem(monkeypatch):
    inputs = keras.Input(SHAPE)
    features = keras.Model(inputs, keras.layers.Conv2D(4, 3, strides=4)(inputs))
    with pytest.raises(ValueError, match="num_classes"):
        kca.models.as_predictor(features)
    with pytest.raises(ValueError, match="num_classes"):
        kca.models.as_predictor("resnet18", SHAPE)
    with pytest.raises(ValueError, match="Unknown recipe.*resnet18"):
        kca.models.as_selector("resnet19", SHAPE)
    with pytest.raises(ValueError, match="input_shape"):
        kca.models.as_selector("resnet18")
    with pytest.raises(ValueError, match="recipe name"):
        kca.models.as_detector("resnet18")
    with pytest.raises(ValueError, match="recipe names only"):
        kca.models.as_selector(features, weights="imagenet")
    with pytest.raises(ValueError, match="preprocessing"):
        kca.models.as_detector(tiny_classifier(), preprocessing="0..1")
    with pytest.raises(TypeError, match="keras.Model"):
        kca.models.as_predictor(lambda x: x, SHAPE, 3)
    with pytest.raises(ValueError, match="same object"):
        kca.ComprehensiveAttributionModel(
            selector=features, predictor=features, detector=tiny_classifier()
        )


def test_missing_extras_name_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_hub", None)
    monkeypatch.setitem(sys.modules, "keras_cv", None)
    with pytest.raises(ImportError, match=r'"keras-compattr\[hub\]"'):
        kca.models.as_predictor("resnet18", SHAPE, 3, weights="imagenet")
    with pytest.raises(ImportError, match=r'"keras-compattr\[cv\]"'):
        recipes.import_extra("keras_cv")


def test_failed_download_says_to_use_random_weights(monkeypatch):
    # What `keras.utils.get_file` raises offline, from the constructor.
    def offline(*args, **kwargs):
        raise Exception(
            "URL fetch failure on https://example.invalid/w.h5: None -- "
            "[Errno -2] Name or service not known"
        )

    monkeypatch.setattr(keras.applications, "MobileNetV3Small", offline)
    with pytest.raises(OSError, match="weights=None"):
        kca.models.as_selector("mobilenet_v3_small", SHAPE, weights="imagenet")
    with pytest.raises(OSError, match="network access"):
        kca.models.as_predictor(
            "mobilenet_v3_small", SHAPE, 3, weights="imagenet"
        )


# === Preprocessing layer ===


def test_image_preprocessing_modes_and_config():
    pixel = np.array([[[[0.2, 0.5, 1.0]]]], "float32")
    expected = {
        "0_255": [51.0, 127.5, 255.0],
        "-1_1": [-0.6, 0.0, 1.0],
        "imagenet": [
            (0.2 - 0.485) / 0.229,
            (0.5 - 0.456) / 0.224,
            (1.0 - 0.406) / 0.225,
        ],
        "caffe": [255.0 - 103.939, 127.5 - 116.779, 51.0 - 123.68],
    }
    for mode, values in expected.items():
        layer = kca.layers.ImagePreprocessing(mode)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(layer(pixel)).reshape(-1),
            values,
            rtol=1e-5,
        )
        clone = kca.layers.ImagePreprocessing.from_config(layer.get_config())
        assert clone.mode == mode
    with pytest.raises(ValueError, match="mode"):
        kca.layers.ImagePreprocessing("0_1")
