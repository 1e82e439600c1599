"""A model saved on one backend loads and explains the same on another.

Each side runs `tests/scripts/cross_backend.py` in a child process (one
process has one backend): the first trains and saves a tiny COMET model
and explains images, the second loads the file and explains the same
images. Masks, probabilities, the detector's saliency maps (a gradient
explainer) and the fill value must agree to float tolerance.
"""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

SCRIPT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "scripts", "cross_backend.py"
)


def _run(backend, mode, folder):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-W", "ignore", SCRIPT, backend, mode, folder],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, (
        f"{mode} on {backend} failed:\n{result.stderr[-4000:]}"
    )


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the parent run (TensorFlow) launches both backends",
)
@pytest.mark.parametrize(
    "saved_on,loaded_on",
    [
        ("tensorflow", "torch"),
        # Each case starts two fresh processes (about 4 minutes on 2
        # loaded cores): the other directions join with --run-large.
        pytest.param("torch", "tensorflow", marks=pytest.mark.large),
        pytest.param("tensorflow", "jax", marks=pytest.mark.large),
        pytest.param("jax", "torch", marks=pytest.mark.large),
    ],
)
def test_saved_on_one_backend_explains_the_same_on_another(
    tmp_path, saved_on, loaded_on
):
    for backend in (saved_on, loaded_on):
        if backend != "tensorflow" and not importlib.util.find_spec(backend):
            pytest.skip(f"install the [{backend}] or [test] extra")
    folder = str(tmp_path)
    _run(saved_on, "save", folder)
    _run(loaded_on, "load", folder)
    saved = np.load(os.path.join(folder, "save.npz"))
    loaded = np.load(os.path.join(folder, "load.npz"))
    np.testing.assert_array_equal(saved["fill"], loaded["fill"])
    np.testing.assert_allclose(loaded["masks"], saved["masks"], atol=1e-5)
    np.testing.assert_allclose(
        loaded["probabilities"], saved["probabilities"], atol=1e-5
    )
    np.testing.assert_allclose(loaded["saliency"], saved["saliency"], atol=1e-4)
