"""Shared fixtures: tiny networks and data so that tests run in seconds.

No environment variables, seeds or warning filters are set here: the tests
run in the environment users have (Keras' default backend, TensorFlow's
default oneDNN setting and logs).
"""

import keras
import numpy as np
import pytest

import keras_compattr as kca

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


# Tiny shared networks: plain factories, so that a test builds fresh ones
# (`from tests.conftest import tiny_model`). Tests that need other shapes
# build their own: `tests/resume_worker.py` (16x16 with batch norm, also run
# as a script) and `tests/region_model.py` (a hand-set classifier).


def tiny_images(num_images=4, seed=0):
    """Float32 images of `SHAPE` in [0, 1]."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (num_images, *SHAPE)).astype("float32")


def tiny_selector(name="selector"):
    return kca.models.build_selector(SHAPE, backbone="tiny", width=4, name=name)


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
        selector=tiny_selector(),
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
