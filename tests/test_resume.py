"""Nothing lost: determinism, resume after faults, NaN stops, safe loading."""

import os
import subprocess
import sys
import warnings
import zipfile

import keras
import numpy as np
import pytest

import keras_compattr as kca
from tests.resume_worker import NUM_CLASSES
from tests.resume_worker import SHAPE
from tests.resume_worker import InterruptAt
from tests.resume_worker import build
from tests.resume_worker import network

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCHS = 3
BATCH_SIZE = 8  # 3 batches per epoch on the 24 images of `data`.


@pytest.fixture(scope="module")
def data():
    from tests import resume_worker

    images, labels = resume_worker.data()
    return {"images": images, "labels": labels}


def _numpy(variables):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def _state(model):
    return _numpy(model.weights) + _numpy(model.optimizer.variables)


def _assert_same(a, b):
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        np.testing.assert_array_equal(x, y, err_msg=f"variable {i}")


def _model(seed=0):
    return build(seed)


def _fit(model, data, callbacks=(), **kwargs):
    kwargs.setdefault("epochs", EPOCHS)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*looks untrained")
        return model.fit(
            data["images"],
            data["labels"],
            batch_size=BATCH_SIZE,
            shuffle=False,
            callbacks=list(callbacks),
            verbose=0,
            **kwargs,
        )


@pytest.fixture(scope="module")
def reference(data):
    """An uninterrupted run: its initial detector and its final state."""
    model = _model(seed=0)
    detector = _numpy(model.detector.weights)
    _fit(model, data)
    return {"detector": detector, "state": _state(model), "model": model}


def test_same_seed_gives_identical_masks(data):
    images, labels = data["images"][:16], data["labels"][:16]
    masks = []
    for seed in (3, 3, 4):
        model = build(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Shuffled batches: the shuffle is seeded too.
            model.fit(images, labels, batch_size=4, epochs=1, verbose=0)
        masks.append(model.explain(images, verbose=0))
    np.testing.assert_array_equal(masks[0], masks[1])
    assert np.abs(masks[0] - masks[2]).max() > 1e-4


def test_keras_backup_and_restore_resumes_an_interrupted_run(
    data, reference, tmp_path
):
    backup_dir = os.path.join(tmp_path, "backup")
    interrupted = _model(seed=0)
    with pytest.raises(RuntimeError, match="Interrupted"):
        _fit(
            interrupted,
            data,
            [
                keras.callbacks.BackupAndRestore(backup_dir),
                InterruptAt(epoch=1, batch=1),
            ],
        )
    # A fresh process would build the model anew: another seed, and a fill
    # value adapted to other data, so the state can only come from the
    # backup.
    resumed = _model(seed=1)
    resumed.adapt(data["images"][:4] * 0.5)
    history = _fit(
        resumed, data, [keras.callbacks.BackupAndRestore(backup_dir)]
    )
    assert len(history.epoch) == EPOCHS - 1  # Epoch counter came back.
    _assert_same(_state(resumed), reference["state"])
    _assert_same(_numpy(resumed.detector.weights), reference["detector"])


def test_model_checkpoint_files_resume_training(data, reference, tmp_path):
    model = _model(seed=0)
    full = os.path.join(tmp_path, "epoch{epoch}.keras")
    weights = os.path.join(tmp_path, "epoch{epoch}.weights.h5")
    _fit(
        model,
        data,
        [
            keras.callbacks.ModelCheckpoint(full),
            keras.callbacks.ModelCheckpoint(weights, save_weights_only=True),
        ],
        epochs=1,
        # The checkpoints hold the state of the epoch's end, before `fit`
        # refreshes the batch-norm statistics.
        refresh_batch_norm=False,
    )
    # The weights file restores the optimizer state and fill value too.
    fresh = _model(seed=1)
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.load_weights(os.path.join(tmp_path, "epoch1.weights.h5"))
    _assert_same(_state(fresh), _state(model))
    assert fresh.fill_is_set
    # The full model file goes on training to the uninterrupted result.
    loaded = kca.models.load_model(
        os.path.join(tmp_path, "epoch1.keras"), num_classes=NUM_CLASSES
    )
    _fit(loaded, data, initial_epoch=1)
    _assert_same(_state(loaded), reference["state"])
    _assert_same(_numpy(loaded.detector.weights), reference["detector"])


def test_compattr_backup_and_restore_in_process(data, reference, tmp_path):
    save_freq = 2
    backup_dir = os.path.join(tmp_path, "backup")
    with pytest.raises(RuntimeError, match="Interrupted"):
        _fit(
            _model(seed=0),
            data,
            [
                kca.callbacks.BackupAndRestore(backup_dir, save_freq),
                InterruptAt(epoch=1, batch=2),
            ],
        )
    files = sorted(os.listdir(backup_dir))
    assert len([f for f in files if f.endswith(".weights.h5")]) == 1
    resumed = _model(seed=1)
    _fit(resumed, data, [kca.callbacks.BackupAndRestore(backup_dir, save_freq)])
    _assert_same(_state(resumed), reference["state"])
    assert not os.path.exists(backup_dir)  # Deleted at the end.


def test_killed_process_resumes_mid_epoch_to_the_same_weights(tmp_path):
    backup_dir = os.path.join(tmp_path, "backup")
    out = os.path.join(tmp_path, "result.npz")
    env = dict(os.environ, PYTHONWARNINGS="ignore")

    def worker(mode):
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.resume_worker",
                mode,
                backup_dir,
                out,
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    crashed = worker("crash")
    assert crashed.returncode == -9, crashed.stderr[-3000:]  # SIGKILL
    with open(os.path.join(backup_dir, "training_metadata.json")) as f:
        assert '"steps_done": 4' in f.read()  # Killed mid-epoch.
    resumed = worker("resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = np.load(out)
    names = [k.split("/", 1)[1] for k in result if k.startswith("resumed/")]
    assert len(names) > 50
    for name in names:
        np.testing.assert_array_equal(
            result[f"resumed/{name}"], result[f"reference/{name}"], name
        )
    assert int(result["resumed/iterations"]) == 18
    # The frozen detector is bit-identical to the one training started with.
    detector = [result[k] for k in sorted(result) if k.startswith("detector/")]
    assert detector
    reference_weights = [
        result[f"reference/weight_{i}"]
        for i in range(len(names))
        if f"reference/weight_{i}" in result
    ]
    for weights in detector:
        assert any(
            w.shape == weights.shape and np.array_equal(w, weights)
            for w in reference_weights
        )


def _poison(layer):
    """Sets every weight of `layer` to NaN."""
    for variable in layer.weights:
        variable.assign(np.full(variable.shape, np.nan, "float32"))


@pytest.mark.filterwarnings("ignore:.*looks untrained")
def test_terminate_on_nan_names_the_term_that_went_bad(data):
    images, labels = data["images"][:16], data["labels"][:16]
    model = build(0)
    _poison(model.predictor.get_layer("logits"))
    callback = kca.callbacks.TerminateOnNaN()
    with pytest.warns(RuntimeWarning, match="predictor's loss"):
        model.fit(
            images,
            labels,
            batch_size=4,
            callbacks=[callback],
            epochs=2,
            verbose=0,
        )
    assert "predictor_loss" in callback.bad_terms
    assert "mask_area" not in callback.bad_terms
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 1
    # A selector that outputs NaN is blamed first, and the error can raise.
    model = build(0)
    _poison(model.selector.get_layer("logits"))
    with pytest.raises(
        RuntimeError, match="mask_area=nan.*Most likely the selector's masks"
    ):
        model.fit(
            images,
            labels,
            batch_size=4,
            epochs=1,
            verbose=0,
            callbacks=[kca.callbacks.TerminateOnNaN(raise_error=True)],
        )


class _PoisonAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.at = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            _poison(self.model.predictor.get_layer("logits"))


@pytest.mark.filterwarnings("ignore:.*looks untrained")
def test_backup_before_a_nan_is_kept(data, tmp_path):
    backup_dir = os.path.join(tmp_path, "backup")
    model = build(0)
    with pytest.warns(RuntimeWarning, match="last good one is kept"):
        _fit(
            model,
            data,
            [
                kca.callbacks.BackupAndRestore(backup_dir),
                _PoisonAtEpoch(1),
                kca.callbacks.TerminateOnNaN(),
            ],
        )
    with open(os.path.join(backup_dir, "training_metadata.json")) as f:
        assert '"epoch": 1' in f.read()
    restored = build(1)
    restored.optimizer.build(restored.trainable_variables)
    restored.load_weights(os.path.join(backup_dir, "backup-1-0.weights.h5"))
    assert all(np.all(np.isfinite(w)) for w in _state(restored))


@pytest.mark.filterwarnings("ignore:.*looks untrained")
def test_keras_terminate_on_nan_stops_training(data):
    model = build(0)
    _poison(model.predictor.get_layer("logits"))
    history = model.fit(
        data["images"][:16],
        data["labels"][:16],
        batch_size=4,
        epochs=3,
        callbacks=[keras.callbacks.TerminateOnNaN()],
        verbose=0,
    )
    assert len(history.epoch) == 1
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 1


def test_load_model_gives_clear_errors(tmp_path):
    path = str(tmp_path)
    with pytest.raises(FileNotFoundError):
        kca.models.load_model(os.path.join(path, "missing.keras"))
    junk = os.path.join(path, "junk.keras")
    with open(junk, "wb") as f:
        f.write(b"not a model")
    with pytest.raises(ValueError, match="not a Keras model file"):
        kca.models.load_model(junk)
    empty = os.path.join(path, "empty.keras")
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="config.json"):
        kca.models.load_model(empty)
    with pytest.raises(ValueError, match="folder"):
        kca.models.load_model(path)
    other = network("classifier", "classifier")
    other_path = os.path.join(path, "classifier.keras")
    other.save(other_path)
    with pytest.raises(TypeError, match="not a ComprehensiveAttributionModel"):
        kca.models.load_model(other_path)
    weights = os.path.join(path, "classifier.weights.h5")
    other.save_weights(weights)
    with pytest.raises(ValueError, match="weights only"):
        kca.models.load_model(weights)

    model = build(0, compile=False)
    model_path = os.path.join(path, "comet.keras")
    model.save(model_path)
    with pytest.raises(ValueError, match="3 classes, but 5"):
        kca.models.load_model(model_path, num_classes=5)
    with pytest.raises(ValueError, match="shape"):
        kca.models.load_model(model_path, input_shape=(64, 64, 3))
    loaded = kca.models.load_model(
        model_path, num_classes=NUM_CLASSES, input_shape=SHAPE
    )
    assert isinstance(loaded, kca.ComprehensiveAttributionModel)
    _assert_same(_numpy(loaded.weights), _numpy(model.weights))


def test_safe_mode_refuses_code_in_a_model_file(tmp_path):
    inputs = keras.Input(SHAPE)
    outputs = keras.layers.Lambda(lambda x: x[..., :1] * 2.0)(inputs)
    selector = keras.Model(inputs, outputs)
    model = kca.ComprehensiveAttributionModel(
        selector=selector,
        predictor=network("classifier", "predictor"),
        detector=network("classifier", "detector"),
        fill_value=0.5,
    )
    path = os.path.join(tmp_path, "lambda.keras")
    model.save(path)
    with pytest.raises(ValueError, match="safe_mode"):
        kca.models.load_model(path)
