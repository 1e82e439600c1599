"""COMET's core contract on the PyTorch backend.

`tests/test_backends.py` runs this file on torch in a child process, with
`test_routing.py` and `test_mixed_precision.py`'s bfloat16 case (the rest
of the suite joins that run with `--run-large`). On TensorFlow and JAX the
same contract is tested by `test_model.py` and `test_resume.py`, so this
file skips there.
"""

import os
import warnings

import keras
import numpy as np
import pytest

import keras_compattr as kca
from tests.conftest import tiny_model
from tests.helpers import LOG_NAMES
from tests.resume_worker import InterruptAt

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="torch contract; test_backends.py runs it on torch",
)


def _numpy(variables):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def _fit(model, data, **kwargs):
    kwargs.setdefault("epochs", 1)
    kwargs.setdefault("batch_size", 8)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*looks untrained")
        return model.fit(
            data["images"], data["labels"], shuffle=False, verbose=0, **kwargs
        )


def test_fit_predict_explain_evaluate_save_load(data, tmp_path):
    model = tiny_model()
    detector = _numpy(model.detector.weights)
    model.compile()
    history = _fit(model, data, epochs=2)
    # With the default area control, "auto", its multiplier.
    assert set(history.history) == LOG_NAMES | {"area_multiplier"}
    assert all(np.isfinite(v).all() for v in history.history.values())
    for b, a in zip(detector, _numpy(model.detector.weights)):
        np.testing.assert_array_equal(b, a)
    # `fit`'s `adapt` set the fill value to the mean colour of the data.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.fill),
        data["images"].astype("float64").mean(axis=(0, 1, 2)),
        atol=1e-5,
    )
    logs = model.evaluate(
        data["images"], data["labels"], verbose=0, return_dict=True
    )
    assert 0.0 <= logs["accuracy"] <= 1.0
    probabilities = model.predict(data["images"], verbose=0)
    assert probabilities.shape == (24, 3)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
    masks = model.explain(data["images"], verbose=0)
    assert masks.shape == (24, 32, 32) and masks.dtype == np.float32
    assert masks.min() >= 0.0 and masks.max() <= 1.0

    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        loaded.predict(data["images"], verbose=0), probabilities, atol=1e-6
    )
    np.testing.assert_allclose(
        loaded.explain(data["images"], verbose=0), masks, atol=1e-6
    )
    for b, a in zip(detector, _numpy(loaded.detector.weights)):
        np.testing.assert_array_equal(b, a)
    # The loaded model trains on.
    _fit(loaded, data)


def test_gradient_explainers(data):
    classifier = tiny_model().detector
    images, labels = data["images"][:4], data["labels"][:4]
    for explainer in (
        kca.explainers.Saliency(classifier),
        kca.explainers.GradCAM(classifier),
        kca.explainers.IntegratedGradients(classifier, steps=4),
    ):
        maps = explainer.explain(images, labels)
        assert maps.shape == (4, 32, 32)
        assert np.isfinite(maps).all()
    # Saliency is the gradient of the class logit: check one pixel against
    # a finite difference.
    from keras_compattr.explainers._gradients import class_score_gradients

    scores, grads = class_score_gradients(classifier)(images, labels)
    shifted = images.copy()
    step = 1e-2
    shifted[:, 5, 7, 1] += step
    shifted_scores, _ = class_score_gradients(classifier)(shifted, labels)
    np.testing.assert_allclose(
        (shifted_scores - scores) / step, grads[:, 5, 7, 1], atol=2e-2
    )


def test_backup_and_restore_resumes_exactly_mid_epoch(data, tmp_path):
    def state(model):
        return _numpy(model.weights) + _numpy(model.optimizer.variables)

    reference = tiny_model(fill_value=0.5)
    reference.compile()
    _fit(reference, data, epochs=2)
    backup_dir = os.path.join(tmp_path, "backup")
    interrupted = tiny_model(fill_value=0.5)
    interrupted.compile()
    with pytest.raises(RuntimeError, match="Interrupted"):
        _fit(
            interrupted,
            data,
            epochs=2,
            callbacks=[
                kca.callbacks.BackupAndRestore(backup_dir, save_freq=2),
                InterruptAt(epoch=1, batch=2),
            ],
        )
    resumed = tiny_model(fill_value=0.5)
    resumed.compile()
    _fit(
        resumed,
        data,
        epochs=2,
        callbacks=[kca.callbacks.BackupAndRestore(backup_dir, save_freq=2)],
    )
    for i, (a, b) in enumerate(zip(state(resumed), state(reference))):
        np.testing.assert_array_equal(a, b, err_msg=f"variable {i}")
