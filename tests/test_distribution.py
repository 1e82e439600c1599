"""Training on 2 virtual CPU devices equals training on one.

TensorFlow runs under `tf.distribute.MirroredStrategy`, JAX under
`keras.distribution.DataParallel`. The devices must be configured before
the backend starts, so each check runs in a child process.
"""

import json
import os
import subprocess
import sys

import keras

SCRIPT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "scripts", "distributed_step.py"
)


def test_two_devices_match_one_device_on_the_same_global_batch():
    result = subprocess.run(
        [sys.executable, "-W", "ignore", SCRIPT, keras.backend.backend()],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    differences = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(differences) == {"hinge_batch", "hinge_sample", "entropy_batch"}
    for case, diff in differences.items():
        # Weights, the fill value (computed by `fit` in the last case), the
        # global-batch losses and the metrics all match.
        assert diff["weights"] < 1e-5, (case, diff)
        assert diff["fill"] < 1e-5, (case, diff)
        for name in ("loss", "mask_area", "detector_loss"):
            assert diff[name] < 1e-4, (case, name, diff)
        assert diff["accuracy"] == 0.0, (case, diff)
        assert diff["masked_out_accuracy"] == 0.0, (case, diff)
