"""TensorFlow's oneDNN crash (issue 12, item 1), in the user's environment.

On TensorFlow 2.21 on x86 CPUs, oneDNN's weight gradient of a stride-2 1x1
convolution whose input has fewer than 16 channels (8 with AVX2) writes
past its workspace: a segmentation fault on AVX-512 machines, where
TensorFlow turns oneDNN on by default, and wrong gradients or hangs on AVX2
(https://github.com/uxlfoundation/oneDNN/issues/6035). The shortcut of the
first strided block of `build_classifier(..., widths=(8, 16))` is exactly
that. Each test runs in a fresh interpreter, as a user's script does.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_compattr.models import build_classifier
from keras_compattr.models.networks import ONEDNN_CHANNEL_BLOCK

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ONEDNN = "TF_ENABLE_ONEDNN_OPTS"


def _run(code, **environment):
    """Runs `code` in a fresh interpreter; returns the completed process."""
    env = {k: v for k, v in os.environ.items() if k != ONEDNN}
    env.update(environment)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _last_json(process):
    assert process.returncode == 0, (process.returncode, process.stderr)
    return json.loads(process.stdout.strip().splitlines()[-1])


def test_docstring_recipe_trains_without_the_variable():
    # The recipe: exit 139 on an AVX-512 CPU before the fix.
    result = _last_json(
        _run(
            """
            import json
            import os

            import keras_compattr as kca

            chosen = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
            import keras
            from tensorflow.python.util import _pywrap_util_port

            data = kca.datasets.synthetic(
                num_images=400, image_size=48, num_classes=4, seed=0
            )
            model = kca.models.build_classifier(
                (48, 48, 3), 4, widths=(8, 16)
            )
            model.compile(
                optimizer="adam",
                loss=keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True
                ),
                metrics=["accuracy"],
            )
            history = model.fit(
                data["images"], data["labels"], epochs=1, verbose=0
            )
            print(json.dumps({
                "variable": chosen,
                "onednn": bool(_pywrap_util_port.IsMklEnabled()),
                "loss": history.history["loss"],
            }))
            """
        )
    )
    assert result["variable"] == "0"
    assert result["onednn"] is False
    assert np.all(np.isfinite(result["loss"]))


def test_a_users_choice_is_kept():
    result = _last_json(
        _run(
            """
            import json
            import os

            import keras_compattr

            print(json.dumps([os.environ["TF_ENABLE_ONEDNN_OPTS"]]))
            """,
            TF_ENABLE_ONEDNN_OPTS="1",
        )
    )
    # Kept. (The package imports Keras now, to register its classes.)
    assert result == ["1"]


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="oneDNN kernels are TensorFlow's; the child imports TensorFlow",
)
def test_classifier_gradients_are_right_with_onednn_on():
    # As on an AVX-512 CPU where TensorFlow was imported, oneDNN on, before
    # the package: the shortcut's weight gradient against NumPy. Before the
    # fix it was wrong by 2x on AVX2 (and crashed on AVX-512).
    result = _last_json(
        _run(
            """
            import json

            import keras
            import numpy as np
            import tensorflow as tf
            from tensorflow.python.util import _pywrap_util_port

            from keras_compattr.models import build_classifier

            model = build_classifier(
                (32, 32, 3), 3, widths=(4, 8), blocks_per_stage=1
            )
            block_input = keras.Model(
                model.input, model.get_layer("stage0_0_out").output
            )
            conv = model.get_layer("stage1_0_shortcut_conv")
            path = keras.Model(model.input, conv.output)
            images = np.random.default_rng(0).uniform(
                size=(32, 32, 32, 3)
            ).astype("float32")
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(path(images)))
            gradient = tape.gradient(loss, conv.kernel)[0, 0].numpy()
            x = block_input(images).numpy()[:, ::2, ::2]
            y = np.einsum("nhwc,cd->nhwd", x, conv.kernel.numpy()[0, 0])
            expected = np.einsum("nhwc,nhwd->cd", x, 2 * y)
            error = np.abs(gradient - expected).max() / np.abs(expected).max()
            print(json.dumps({
                "onednn": bool(_pywrap_util_port.IsMklEnabled()),
                "error": float(error),
            }))
            """,
            TF_ENABLE_ONEDNN_OPTS="1",
        )
    )
    assert result["onednn"] is True
    assert result["error"] < 1e-4


def test_strided_shortcuts_are_the_same_function():
    keras.utils.set_random_seed(0)
    model = build_classifier((32, 32, 3), 3, widths=(4, 8))
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D) and layer.strides != (1, 1):
            assert (
                layer.kernel_size != (1, 1)
                or layer.input.shape[-1] >= ONEDNN_CHANNEL_BLOCK
            ), layer.name
    # Subsampling, then a 1x1 convolution: the strided 1x1 convolution.
    block = keras.Model(model.input, model.get_layer("stage0_1_out").output)
    conv = model.get_layer("stage1_0_shortcut_conv")
    path = keras.Model(model.input, conv.output)
    images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3))
    expected = keras.ops.conv(block(images), conv.kernel, strides=2)
    np.testing.assert_allclose(path(images), expected, atol=1e-5)
