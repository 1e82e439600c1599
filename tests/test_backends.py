"""Runs the whole suite again on the JAX backend, in a child process.

A Keras backend is fixed when `keras` is first imported, so one pytest
process tests one backend. The README's single test command runs on
TensorFlow; this test runs the other test files on JAX and fails, with the
child's report, if any of them fails there. The short training run and the
example scripts join the JAX run with `--run-large`.
"""

import os
import subprocess
import sys

import keras
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the parent run (TensorFlow) launches the JAX run",
)
def test_suite_passes_on_jax(request):
    pytest.importorskip("jax", reason="install the [jax] or [test] extra")
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2")
    command = [
        sys.executable,
        "-m",
        "pytest",
        HERE,
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        "--deselect",
        f"{os.path.relpath(__file__, os.path.dirname(HERE))}"
        "::test_suite_passes_on_jax",
    ]
    if request.config.getoption("--run-large"):
        command.append("--run-large")
    else:
        # The training run and the example scripts repeat, on JAX, code
        # paths the other tests cover there; they take minutes on a CPU.
        command += [
            "--ignore",
            os.path.join(HERE, "test_learning.py"),
            "--ignore",
            os.path.join(HERE, "test_examples.py"),
        ]
    result = subprocess.run(
        command,
        cwd=os.path.dirname(HERE),
        env=env,
        capture_output=True,
        text=True,
    )
    summary = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, f"JAX run failed:\n{summary}"
    assert " passed" in result.stdout, summary
