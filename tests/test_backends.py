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


SHARDS = 2


def _jax_files(run_large):
    skipped = {os.path.basename(__file__)}
    if not run_large:
        # The training run and the example scripts repeat, on JAX, code
        # paths the other tests cover there; they take minutes on a CPU.
        skipped |= {"test_learning.py", "test_examples.py"}
    return sorted(
        name
        for name in os.listdir(HERE)
        if name.startswith("test_")
        and name.endswith(".py")
        and name not in skipped
    )


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the parent run (TensorFlow) launches the JAX run",
)
@pytest.mark.parametrize("shard", range(SHARDS))
def test_suite_passes_on_jax(request, shard):
    # The JAX run is split into shards so that pytest-xdist can spread it
    # over the cores beside the TensorFlow tests.
    pytest.importorskip("jax", reason="install the [jax] or [test] extra")
    run_large = request.config.getoption("--run-large")
    files = _jax_files(run_large)[shard::SHARDS]
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2")
    command = [
        sys.executable,
        "-m",
        "pytest",
        *[os.path.join(HERE, name) for name in files],
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
    ]
    if run_large:
        command.append("--run-large")
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
