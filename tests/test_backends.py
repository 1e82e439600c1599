"""Runs the suite again on JAX and on PyTorch, in child processes.

A Keras backend is fixed when `keras` is first imported, so one pytest
process tests one backend. The README's single test command runs on
TensorFlow; these tests run other test files on JAX and on torch and fail,
with the child's report, if any of them fails there.

- JAX: the tests of `JAX_SHARDS`, in 2 shards: those that step the
  backend's own code (the training step under XLA and eagerly, gradient
  routing, the grouped optimizer, float16 loss scaling, exact resume,
  save and load, the gradient explainers). With `--run-large` every
  test file that exercises backend code joins it (not those of
  `BACKEND_INDEPENDENT_FILES`): the rest of the model's file, the
  command line, the benchmark, the metrics, the docstrings, ... repeat
  on JAX what the TensorFlow run checks, for about 25 minutes on 2
  loaded cores. `test_training_contract.py`, `test_learned_mask.py`,
  `test_imports.py` and `test_startup.py` start JAX processes of their
  own in the default run.
- torch: `test_torch_backend.py`, `test_routing.py` and bfloat16 mixed
  precision (the core contract: fit, evaluate, predict, explain,
  save/load, frozen detector, exact gradient routing, gradient
  explainers, mixed precision against float32, exact resume). With
  `--run-large` the files of `TORCH_LARGE_FILES` join it: they repeat that
  contract more broadly and take about 10 minutes on torch's eager CPU
  execution.
"""

import importlib.util
import os
import subprocess
import sys

import keras
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

# Checked on JAX by default, in two shards of about equal time: the tests
# that step the backend's own code paths (`keras_compattr/backend/jax.py`:
# the training step under XLA, gradient routing, loss scaling, exact
# resume, saving, the gradient explainers). The rest of their files
# repeats on JAX what TensorFlow checks, 4 more minutes of the default
# run's 2 cores, and joins with --run-large (with every other file).
JAX_SHARDS = (
    (
        "test_routing.py",
        "test_grouped_optimizer.py",
        "test_model.py::test_jit_compile_true_matches_eager",
        "test_model.py::test_fit_predict_explain_evaluate_on_arrays",
        "test_model.py::test_regularization_losses_reach_their_network",
        "test_model.py::"
        "test_predictor_regularization_is_that_of_the_masked_in_pass",
        "test_explainers.py::test_maps_have_image_shape_and_are_finite",
        "test_explainers.py::test_integrated_gradients_completeness",
    ),
    (
        # float16 with its loss scaling; bfloat16 runs on torch.
        "test_mixed_precision.py::"
        "test_mixed_precision_trains_with_float32_terms[mixed_float16]",
        "test_resume.py::test_same_seed_gives_identical_masks",
        "test_resume.py::test_compattr_backup_and_restore_in_process",
        "test_model.py::test_save_load_gives_identical_outputs",
        "test_model.py::test_detector_stays_bit_identical_through_fit_and_save",
        # The noisy fill's seed threaded through the stateless step.
        "test_fill_noise.py::test_the_training_step_draws_new_noise_every_step",
        "test_fill_noise.py::test_auto_noise_is_measured_by_fit_and_saved",
    ),
)
# Checked on torch by default.
TORCH_FILES = (
    "test_torch_backend.py",
    "test_routing.py",
    "test_mixed_precision.py::"
    "test_mixed_precision_trains_with_float32_terms[mixed_bfloat16]",
    "test_fill_noise.py::test_the_training_step_draws_new_noise_every_step",
)
# Checked on torch with --run-large. Other files still hold TensorFlow- or
# JAX-only code (tf.data-only paths, jit checks, backend-specific gradient
# helpers).
TORCH_LARGE_FILES = (
    "test_model.py",
    "test_explainers.py",
    "test_resume.py",
    "test_mixed_precision.py",
)
# Deselected on torch (none at present).
TORCH_DESELECTED = ()


# Files whose subject does not depend on the Keras backend (packaging,
# docs, start-up, NumPy and tf.data data pipelines, input checks) or that
# skip off TensorFlow or torch anyway: the JAX child leaves them out.
BACKEND_INDEPENDENT_FILES = (
    "test_cross_backend.py",
    "test_datasets.py",
    # These start a process per backend themselves.
    "test_imports.py",
    "test_learned_mask.py",
    "test_training_contract.py",
    "test_docs.py",
    "test_environment.py",
    "test_multi_host.py",
    "test_notebooks.py",
    "test_release.py",
    "test_startup.py",
    "test_synthetic.py",
    "test_torch_backend.py",
    "test_validation.py",
)


def _jax_files(run_large, shard):
    if not run_large:
        return JAX_SHARDS[shard]
    skipped = {os.path.basename(__file__), *BACKEND_INDEPENDENT_FILES}
    names = sorted(
        name
        for name in os.listdir(HERE)
        if name.startswith("test_")
        and name.endswith(".py")
        and name not in skipped
    )
    return names[shard :: len(JAX_SHARDS)]


def _run_child(backend, files, run_large, deselected=()):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
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
    for test in deselected:
        command += ["--deselect", os.path.join(HERE, test)]
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
    assert result.returncode == 0, f"{backend} run failed:\n{summary}"
    assert " passed" in result.stdout, summary


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the parent run (TensorFlow) launches the JAX run",
)
@pytest.mark.parametrize("shard", range(len(JAX_SHARDS)))
def test_suite_passes_on_jax(request, shard):
    # The JAX run is split into shards so that pytest-xdist can spread it
    # over the cores beside the TensorFlow tests.
    pytest.importorskip("jax", reason="install the [jax] or [test] extra")
    run_large = request.config.getoption("--run-large")
    _run_child("jax", _jax_files(run_large, shard), run_large)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the parent run (TensorFlow) launches the torch run",
)
def test_suite_passes_on_torch(request):
    if importlib.util.find_spec("torch") is None:
        pytest.skip("install the [torch] or [test] extra")
    run_large = request.config.getoption("--run-large")
    files = list(TORCH_FILES)
    if run_large:
        files = [*TORCH_FILES[:2], *TORCH_LARGE_FILES]
    _run_child("torch", files, run_large, TORCH_DESELECTED)
