"""Two JAX processes on localhost train COMET as one process does.

The processes join through `keras_compattr.distributed.initialize` (gloo
CPU collectives), each feeding half of every global batch; a third process
trains alone on the whole global batches. Each runs
`tests/scripts/multi_host.py` in a child process, since the run must be
set up before the backend starts.
"""

import json
import os
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

SCRIPT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "scripts", "multi_host.py"
)


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _launch(process, processes, port, out_dir):
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    return subprocess.Popen(
        [sys.executable, "-W", "ignore", SCRIPT]
        + [str(process), str(processes), str(port), out_dir],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.large  # 3 JAX processes: about 3 minutes on 2 cores
@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the parent run (TensorFlow) launches the JAX processes",
)
def test_two_processes_match_one_process_on_the_same_global_batch(tmp_path):
    pytest.importorskip("jax", reason="install the [jax] or [test] extra")
    port = _free_port()
    single_dir = str(tmp_path / "single")
    multi_dir = str(tmp_path / "multi")
    os.makedirs(single_dir)
    os.makedirs(multi_dir)
    start = time.monotonic()
    children = [
        _launch(0, 1, port, single_dir),
        _launch(0, 2, port, multi_dir),
        _launch(1, 2, port, multi_dir),
    ]
    outputs = []
    for child in children:
        try:
            output, _ = child.communicate(timeout=900)
        except subprocess.TimeoutExpired:
            for other in children:
                other.kill()
            raise
        outputs.append(output)
        assert child.returncode == 0, output[-4000:]
    print(f"3 processes ran in {time.monotonic() - start:.0f} s")

    single = np.load(os.path.join(single_dir, "process-0.npz"))
    multi = [
        np.load(os.path.join(multi_dir, f"process-{i}.npz")) for i in (0, 1)
    ]
    single_logs = json.loads(str(single["history"]))
    for process, result in enumerate(multi):
        # The weights after two epochs, the fill value `fit`'s `adapt`
        # computed from the process's half of the data, and the logs of
        # every epoch all equal the one-process run's.
        np.testing.assert_allclose(
            result["weights"], single["weights"], atol=1e-5
        )
        np.testing.assert_allclose(result["fill"], single["fill"], atol=1e-6)
        logs = json.loads(str(result["history"]))
        assert set(logs) == set(single_logs)
        for name, values in single_logs.items():
            np.testing.assert_allclose(
                logs[name], values, rtol=1e-5, atol=1e-6, err_msg=name
            )
        # The same run on one `tf.data` dataset of global batches, which
        # Keras shards between the processes.
        np.testing.assert_allclose(
            result["dataset_weights"], single["dataset_weights"], atol=1e-5
        )
        dataset_logs = json.loads(str(result["dataset_history"]))
        single_dataset_logs = json.loads(str(single["dataset_history"]))
        for name, values in single_dataset_logs.items():
            np.testing.assert_allclose(
                dataset_logs[name], values, rtol=1e-5, atol=1e-6, err_msg=name
            )
        # The run interrupted after epoch 1 and resumed from process 0's
        # backup ends where the uninterrupted run ends, on every process.
        assert bool(result["backed_up"]), process
        np.testing.assert_allclose(
            result["resumed"], result["weights"], atol=1e-6
        )
    # Process 0 wrote the backups (after each of the 2 steps and at the
    # end of each epoch); process 1 wrote none.
    assert int(multi[0]["saves"]) > 0
    assert int(multi[1]["saves"]) == 0
    np.testing.assert_array_equal(multi[0]["weights"], multi[1]["weights"])
    np.testing.assert_array_equal(multi[0]["fill"], multi[1]["fill"])
