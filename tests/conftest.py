"""Shared fixtures: tiny networks and data so that tests run in seconds."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TF 2.21's oneDNN CPU kernels can corrupt the heap in the gradient of a
# stride-2 1x1 convolution with fewer than 16 input channels (oneDNN issue
# 6035); the tiny test networks have exactly such shortcuts.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras  # noqa: E402
import pytest  # noqa: E402

import keras_compattr as kca  # noqa: E402

IMAGE_SIZE = 32
NUM_CLASSES = 3
SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 3)


def pytest_addoption(parser):
    parser.addoption(
        "--run-large",
        action="store_true",
        default=False,
        help="also run tests marked `large` (minutes each on a CPU)",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-large"):
        return
    skip = pytest.mark.skip(reason="large test: pass --run-large to run it")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)


def tiny_classifier(name="classifier", softmax=False):
    model = kca.models.build_classifier(
        SHAPE, NUM_CLASSES, widths=(4, 8), blocks_per_stage=1, name=name
    )
    if softmax:
        outputs = keras.layers.Softmax(name="probabilities")(model.output)
        model = keras.Model(model.input, outputs, name=name)
    return model


def tiny_model(detector=None, **kwargs):
    keras.utils.set_random_seed(0)
    return kca.ComprehensiveAttributionModel(
        selector=kca.models.build_selector(SHAPE, backbone="tiny", width=4),
        predictor=tiny_classifier("predictor"),
        detector=detector
        if detector is not None
        else tiny_classifier("detector"),
        **kwargs,
    )


@pytest.fixture(scope="session")
def data():
    return kca.datasets.synthetic(
        num_images=24, image_size=IMAGE_SIZE, num_classes=NUM_CLASSES, seed=0
    )
