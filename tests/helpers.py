"""Reusable checks for keras_compattr's public layers, models and objects.

- `run_serialization_test(instance)`: `get_config` -> JSON -> `from_config`
  gives an object of the same class with the very same config, through both
  `cls.from_config` and Keras' registered serialisation.
- `run_layer_test(cls, init_kwargs, input_data, ...)`: a layer builds,
  computes the expected shape eagerly and symbolically, has the expected
  weights, round-trips its config, and works inside a saved model.
- `run_model_saving_test(model, input_data, directory)`: a `.keras` round
  trip gives the same config and identical outputs.
- `run_script_in_fresh_process(script, backend, *args)`: a script of
  `tests/scripts` run by a new Python on `backend`, as a user's script
  runs; returns the JSON its last line prints.

Shapes are tiny (16x16 to 32x32) so that every check runs in seconds.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

PACKAGE = "keras_compattr"
ROOT = pathlib.Path(__file__).resolve().parent.parent

# What `fit` logs for every model (the default area control, "auto", adds
# "area_multiplier").
LOG_NAMES = {
    "loss",
    "predictor_loss",
    "detector_loss",
    "area_penalty",
    "mask_area",
    "accuracy",
    "masked_out_accuracy",
}


def run_script_in_fresh_process(script, backend, *args):
    """Runs `tests/scripts/<script>` in a new process on `backend`.

    Skips when the backend is not installed. Fails with the child's error
    output if it fails; returns the JSON object of its last output line.
    """
    if backend != "tensorflow" and not importlib.util.find_spec(backend):
        pytest.skip(f"install the [{backend}] or [test] extra")
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.run(
        [
            sys.executable,
            "-W",
            "ignore",
            str(ROOT / "tests" / "scripts" / script),
            *map(str, args),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stderr[-4000:]
    return json.loads(process.stdout.splitlines()[-1])


def as_json(config):
    """`config` as JSON would store it (tuples become lists)."""
    return json.loads(json.dumps(config, sort_keys=True))


def assert_same_config(a, b):
    """Full equality of two configs once written as JSON."""
    assert as_json(a) == as_json(b)


def run_serialization_test(instance):
    """Checks that `instance` round-trips through its config exactly.

    Args:
        instance: a layer, model, metric, optimizer, schedule or any object
            with `get_config`.

    Returns:
        The object rebuilt by `keras.saving.deserialize_keras_object`.
    """
    cls = type(instance)
    config = instance.get_config()
    # The config is plain JSON: what `model.save` writes.
    json.dumps(config)
    serialized = as_json(keras.saving.serialize_keras_object(instance))
    if cls.__module__.startswith(f"{PACKAGE}."):
        # The name models saved by earlier versions refer to.
        assert serialized["registered_name"] == f"{PACKAGE}>{cls.__name__}"
        assert keras.saving.get_registered_object(
            serialized["registered_name"]
        ) is (cls)

    rebuilt = cls.from_config(as_json(config))
    assert type(rebuilt) is cls
    assert_same_config(rebuilt.get_config(), config)

    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is cls
    assert_same_config(revived.get_config(), config)
    return revived


def run_model_saving_test(model, input_data, directory, outputs=None):
    """Saves `model` as `.keras`, loads it, and compares everything.

    Args:
        model: a built Keras model.
        input_data: what `outputs` (by default `model.predict`) is fed.
        directory: a folder to write the file in (e.g. pytest's `tmp_path`).
        outputs: optional `(model, input_data) -> array or list of arrays`,
            for models whose output of interest is not `predict`'s.

    Returns:
        The loaded model.
    """
    if outputs is None:

        def outputs(m, x):
            return m.predict(x, verbose=0)

    path = os.path.join(str(directory), f"{model.name}_saved.keras")
    expected = outputs(model, input_data)
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    assert_same_config(loaded.get_config(), model.get_config())
    actual = outputs(loaded, input_data)
    for a, e in zip(_as_list(actual), _as_list(expected)):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(a),
            keras.ops.convert_to_numpy(e),
            atol=1e-6,
            rtol=1e-6,
        )
    for a, e in zip(loaded.weights, model.weights):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(e)
        )
    return loaded


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    directory,
    expected_num_trainable_weights=0,
    expected_num_non_trainable_weights=0,
):
    """Checks a layer: shapes, weights, config and `.keras` saving.

    Args:
        layer_cls: the layer class.
        init_kwargs: dict, its constructor arguments.
        input_data: a NumPy batch to call it on.
        expected_output_shape: tuple, including the batch dimension.
        directory: a folder for the saved model.
        expected_num_trainable_weights: int.
        expected_num_non_trainable_weights: int.

    Returns:
        The layer, called once.
    """
    layer = layer_cls(**init_kwargs)
    output = layer(input_data)
    assert tuple(output.shape) == tuple(expected_output_shape)
    assert len(layer.trainable_weights) == expected_num_trainable_weights
    assert (
        len(layer.non_trainable_weights) == expected_num_non_trainable_weights
    )
    assert tuple(layer.compute_output_shape(input_data.shape)) == tuple(
        expected_output_shape
    )
    run_serialization_test(layer)

    # Symbolically, in a functional model that is saved and loaded.
    inputs = keras.Input(input_data.shape[1:])
    symbolic = layer_cls(**init_kwargs)(inputs)
    assert tuple(symbolic.shape) == (None, *expected_output_shape[1:])
    model = keras.Model(inputs, symbolic, name=f"{layer_cls.__name__}_test")
    run_model_saving_test(model, input_data, directory)
    return layer


def _as_list(values):
    return list(values) if isinstance(values, (list, tuple)) else [values]
