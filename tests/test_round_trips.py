"""Every public serialisable class passes the helpers of `tests/helpers.py`.

Layers through `run_layer_test`; models, schedules, metrics, optimizers and
the objective through `run_serialization_test` (full JSON config equality)
and, where they are saved with a model, `run_model_saving_test` (`.keras`
round trip with identical outputs).
"""

import warnings

import keras
import numpy as np
import pytest

import keras_compattr as kca
from keras_compattr.api_export import EXPORTS
from tests.conftest import NUM_CLASSES
from tests.conftest import SHAPE
from tests.conftest import tiny_classifier
from tests.conftest import tiny_images
from tests.conftest import tiny_model
from tests.conftest import tiny_selector
from tests.helpers import run_layer_test
from tests.helpers import run_model_saving_test
from tests.helpers import run_serialization_test

# One instance of each serialisable public class, with non-default settings
# where it has any, so that a setting the config forgets shows.
INSTANCES = {
    "keras_compattr.layers.MaskHead": lambda: kca.layers.MaskHead(
        16, 12, name="head"
    ),
    "keras_compattr.layers.ImagePreprocessing": lambda: (
        kca.layers.ImagePreprocessing("caffe")
    ),
    "keras_compattr.layers.RandomCellMask": lambda: kca.layers.RandomCellMask(
        [0.1, 0.2, 0.3],
        min_cells=3,
        max_cells=9,
        whole_fraction=0.1,
        fade_fraction=0.5,
        seed=4,
        name="cells",
    ),
    "keras_compattr.models.DetectorHardening": lambda: (
        kca.models.DetectorHardening(
            epochs=2, learning_rate=1e-3, max_images=100, max_cells=8, seed=1
        )
    ),
    "keras_compattr.losses.AreaMultiplier": lambda: kca.losses.AreaMultiplier(
        5, tolerance=0.05, rate=0.2, momentum=0.5, initial_multiplier=2.0
    ),
    "keras_compattr.losses.CometObjective": lambda: kca.losses.CometObjective(
        detector_weight=2.0, margin=1.0, area_budget=0.4
    ),
    "keras_compattr.metrics.PxAP": lambda: kca.metrics.PxAP(
        num_thresholds=11, name="pxap_11"
    ),
    "keras_compattr.metrics.Coverage": lambda: kca.metrics.Coverage(
        threshold=0.3, statistic="part_coverage"
    ),
    "keras_compattr.models.GroupedOptimizer": lambda: (
        kca.models.GroupedOptimizer(
            keras.optimizers.AdamW(5e-4, weight_decay=0.03),
            keras.optimizers.SGD(0.05, momentum=0.9),
        )
    ),
    "keras_compattr.training.WarmupStepDecay": lambda: (
        kca.training.WarmupStepDecay(
            1e-3, steps_per_epoch=10, warmup_epochs=1, decay_epochs=(3, 5)
        )
    ),
    "keras_compattr.models.ComprehensiveAttributionModel": lambda: tiny_model(
        margin=1.0,
        area_budget=0.3,
        fill_value=0.2,
        hardening=kca.models.DetectorHardening(epochs=2, seed=3),
    ),
    "keras_compattr.explainers.LearnedMask": lambda: kca.explainers.LearnedMask(
        tiny_classifier(),
        area_budget=0.3,
        hardening=kca.models.DetectorHardening(epochs=2, seed=3),
    ),
}
# The model is exported under two paths; one instance serves both.
ALIASES = {
    "keras_compattr.ComprehensiveAttributionModel": (
        "keras_compattr.models.ComprehensiveAttributionModel"
    )
}


def test_every_exported_serialisable_has_an_instance_here():
    for name in kca._REGISTERING:
        getattr(kca, name)
    serialisable = {
        path
        for path, symbol in EXPORTS.items()
        if isinstance(symbol, type) and hasattr(symbol, "get_config")
    }
    assert serialisable - set(ALIASES) == set(INSTANCES)


@pytest.mark.parametrize("path", sorted(INSTANCES))
def test_serialization_round_trip(path):
    instance = INSTANCES[path]()
    revived = run_serialization_test(instance)
    assert type(revived) is EXPORTS[path]


# === Layers ===


@pytest.mark.parametrize(
    "input_shape, trainable_weights",
    [((2, 8, 8, 16), 2), ((2, 4, 4, 1), 0)],
    ids=["projected", "one_channel"],
)
def test_mask_head_layer(input_shape, trainable_weights, tmp_path):
    features = np.random.default_rng(0).normal(size=input_shape)
    run_layer_test(
        kca.layers.MaskHead,
        {"height": 16, "width": 12},
        features.astype("float32"),
        expected_output_shape=(2, 16, 12, 1),
        directory=tmp_path,
        expected_num_trainable_weights=trainable_weights,
    )


@pytest.mark.parametrize("mode", kca.layers.PREPROCESSING_MODES)
def test_image_preprocessing_layer(mode, tmp_path):
    run_layer_test(
        kca.layers.ImagePreprocessing,
        {"mode": mode},
        tiny_images(2),
        expected_output_shape=(2, *SHAPE),
        directory=tmp_path,
    )


def test_area_multiplier_keeps_its_state_through_a_round_trip():
    # A layer for its saved state only: it takes no inputs, so it is checked
    # here and saved inside COMET models below, not by `run_layer_test`.
    layer = INSTANCES["keras_compattr.losses.AreaMultiplier"]()
    layer.update(0.9)
    revived = run_serialization_test(layer)
    revived.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(revived.multiplier),
        keras.ops.convert_to_numpy(layer.multiplier),
    )


# === Schedules, metrics, optimizers ===


def test_warmup_step_decay_gives_the_same_rates_after_a_round_trip():
    schedule = INSTANCES["keras_compattr.training.WarmupStepDecay"]()
    revived = run_serialization_test(schedule)
    steps = np.array([0, 5, 9, 10, 29, 30, 49, 50, 80])
    np.testing.assert_allclose(
        [float(revived(s)) for s in steps],
        [float(schedule(s)) for s in steps],
    )


@pytest.mark.parametrize(
    "path", ["keras_compattr.metrics.PxAP", "keras_compattr.metrics.Coverage"]
)
def test_streaming_metrics_give_the_same_result_after_a_round_trip(path):
    rng = np.random.default_rng(0)
    gt = (rng.uniform(size=(4, 16, 16)) > 0.5).astype("float32")
    if path.endswith("Coverage"):
        gt = np.stack([gt, 1.0 - gt], axis=1)  # (N, parts, H, W)
    scores = rng.uniform(size=(4, 16, 16)).astype("float32")
    metric = INSTANCES[path]()
    revived = run_serialization_test(metric)
    for m in (metric, revived):
        m.update_state(gt, scores)
    np.testing.assert_allclose(float(revived.result()), float(metric.result()))


# === Models ===


@pytest.mark.parametrize(
    "build",
    [
        lambda: tiny_classifier("classifier"),
        lambda: tiny_classifier("softmax_classifier", softmax=True),
        lambda: tiny_selector(),
        lambda: kca.models.build_predictor(
            SHAPE, NUM_CLASSES, widths=(4, 8), name="predictor"
        ),
    ],
    ids=["classifier", "softmax_classifier", "selector", "predictor"],
)
def test_builders_models_round_trip(build, tmp_path):
    model = build()
    run_serialization_test(model)
    run_model_saving_test(model, tiny_images(3), tmp_path)


def _explain_and_predict(model, images):
    return [
        model.predict(images, verbose=0),
        model.explain(images, verbose=0),
        model.explain(images, verbose=0, output="logits"),
    ]


@pytest.mark.parametrize(
    "settings",
    [
        {"margin": 1.0, "area_budget": 0.3, "fill_value": 0.2},
        {"area_budget": "auto", "hinge_reduction": "sample"},
    ],
    ids=["fixed_budget", "adaptive_budget"],
)
def test_comprehensive_attribution_model_round_trips(settings, tmp_path):
    model = tiny_model(**settings)
    run_serialization_test(model)
    run_model_saving_test(
        model, tiny_images(3), tmp_path, outputs=_explain_and_predict
    )


def test_a_trained_model_with_grouped_optimizer_and_schedule_round_trips(
    tmp_path,
):
    model = tiny_model(fill_value=0.5)
    schedule = kca.training.WarmupStepDecay(1e-3, steps_per_epoch=2)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        predictor_optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
    )
    assert isinstance(model.optimizer, kca.models.GroupedOptimizer)
    images = tiny_images(4)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*looks untrained")
        model.fit(images, np.arange(4) % NUM_CLASSES, epochs=1, verbose=0)
    loaded = run_model_saving_test(
        model, images, tmp_path, outputs=_explain_and_predict
    )
    run_serialization_test(model.optimizer)
    assert isinstance(loaded.optimizer, kca.models.GroupedOptimizer)
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        )
