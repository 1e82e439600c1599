"""Loading a saved COMET model is silent and exact (issue 12, item 8).

The detector arrives trained and compiled; its compile state used to be
saved and restored for a frozen network, and loading printed "Skipping
variable loading for optimizer 'adam', because it has 2 variables whereas
the saved optimizer has N variables". The load runs in a fresh interpreter
with Python's default warning filters, as in a user's script, and all it
writes to stderr is checked.
"""

import json
import os
import subprocess
import sys
import textwrap
from unittest import mock

import keras
import numpy as np

from keras_compattr.models import hardening
from tests.conftest import tiny_classifier
from tests.conftest import tiny_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LOADER = """
    import json
    import sys

    import numpy as np

    import keras_compattr as kca

    images = np.load(sys.argv[1])
    # Before the markers: Keras' and TensorFlow's start-up lines, and the
    # device set-up of the first operation.
    import keras

    keras.ops.convert_to_numpy(keras.ops.ones(1) + 1)
    # Keras' model configs import TensorFlow on every backend, and building
    # the hardened judge's copy reads one: its start-up lines come here.
    keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]).get_config()

    outputs = {}
    for path in sys.argv[2:]:
        for name, load in (
            ("keras", keras.saving.load_model),
            ("kca", kca.models.load_model),
        ):
            print("<load>", file=sys.stderr, flush=True)
            model = load(path)
            print("</load>", file=sys.stderr, flush=True)
            outputs[f"{path}:{name}"] = {
                "predict": model.predict(images, verbose=0).tolist(),
                "explain": model.explain(images, verbose=0).tolist(),
                "detector": keras.ops.convert_to_numpy(
                    model.detector(images)
                ).tolist(),
                "weights": [np.asarray(w).tolist() for w in model.weights],
            }
    print(json.dumps(outputs))
"""


def _between_markers(stderr):
    inside, lines = False, []
    for line in stderr.splitlines():
        if line == "<load>":
            inside = True
        elif line == "</load>":
            inside = False
        elif inside:
            lines.append(line)
    return lines


def test_loading_is_silent_and_exact(data, tmp_path):
    detector = tiny_classifier("detector")
    detector.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    detector.fit(data["images"], data["labels"], epochs=1, verbose=0)
    model = tiny_model(detector=detector)
    model.compile()
    model.fit(data["images"], data["labels"], epochs=1, verbose=0)
    path = str(tmp_path / "comet.keras")
    model.save(path)
    # A file saved before the fix: the detector's compile state included.
    old_path = str(tmp_path / "old.keras")
    with mock.patch.object(
        hardening,
        "frozen_config",
        keras.saving.serialize_keras_object,
    ):
        model.save(old_path)
    images = data["images"][:4]
    np.save(tmp_path / "images.npy", images)
    process = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(LOADER),
            str(tmp_path / "images.npy"),
            path,
            old_path,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stderr
    assert process.stderr.count("<load>") == 4
    assert _between_markers(process.stderr) == []
    outputs = json.loads(process.stdout.splitlines()[-1])
    expected = {
        "predict": model.predict(images, verbose=0),
        "explain": model.explain(images, verbose=0),
        "detector": keras.ops.convert_to_numpy(detector(images)),
    }
    weights = [keras.ops.convert_to_numpy(w) for w in model.weights]
    assert len(outputs) == 4
    for loaded in outputs.values():
        # Exact: every variable, the multiplier and batch-norm statistics
        # included, comes back bit for bit.
        assert len(loaded["weights"]) == len(weights)
        for got, want in zip(loaded["weights"], weights):
            np.testing.assert_array_equal(np.array(got, want.dtype), want)
        # The outputs of another process may differ in the last bit, as
        # the CPU kernels there may sum in another order.
        for key, value in expected.items():
            np.testing.assert_allclose(
                np.array(loaded[key]), value, rtol=1e-6, atol=1e-7
            )
