"""Start-up of the package and the command line (issue 12, item 9).

`import keras_compattr` and `keras-compattr --help` must not import Keras or
TensorFlow, and a command must print nothing of TensorFlow's start-up. Each
test runs a fresh interpreter, as a user's shell does.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("keras", "tensorflow", "jax", "torch")


def _run(arguments, unset=()):
    env = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        arguments,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _python(code):
    process = _run([sys.executable, "-c", textwrap.dedent(code)])
    assert process.returncode == 0, process.stderr
    return process


def _command_line():
    # The installed script when there is one, as users call it.
    script = shutil.which(
        "keras-compattr", path=os.path.dirname(sys.executable)
    )
    return [script] if script else [sys.executable, "-m", "keras_compattr"]


def test_help_imports_no_framework():
    process = _python(
        f"""
        import contextlib
        import io
        import json
        import sys

        import keras_compattr.cli

        with contextlib.redirect_stdout(io.StringIO()):
            try:
                keras_compattr.cli.main(["--help"])
            except SystemExit:
                pass
            for command in ("train", "explain", "evaluate"):
                try:
                    keras_compattr.cli.main([command, "--help"])
                except SystemExit:
                    pass
        print(json.dumps(sorted(set({HEAVY!r}) & set(sys.modules))))
        """
    )
    assert json.loads(process.stdout.splitlines()[-1]) == []


def test_help_and_usage_errors_print_only_the_cli_text():
    process = _run(_command_line() + ["--help"])
    assert process.returncode == 0
    assert process.stdout.startswith("usage: keras-compattr")
    assert process.stderr == ""
    process = _run(_command_line() + ["train", "--no-such-flag"])
    assert process.returncode == 2
    assert process.stdout == ""
    lines = process.stderr.splitlines()
    assert lines[0].startswith("usage: keras-compattr")
    assert lines[-1] == (
        "keras-compattr: error: unrecognized arguments: --no-such-flag"
    )
    assert not any("0000 " in line or "absl" in line for line in lines)


def test_a_command_prints_no_tensorflow_start_up_lines(tmp_path):
    # Imports the backend, then fails on the missing model file.
    missing = str(tmp_path / "missing.keras")
    process = _run(
        _command_line()
        + ["explain", "--model", missing, str(tmp_path / "image.png")],
        unset=("TF_CPP_MIN_LOG_LEVEL",),
    )
    assert process.returncode == 2
    assert process.stderr.splitlines() == [
        f"keras-compattr: error: model file {missing!r} not found."
    ], process.stderr


def test_lazy_package_registers_on_use_and_after_keras():
    # Without Keras, `import keras_compattr` imports nothing heavy and no
    # import hook: its subpackages are imported on first use, and register
    # their classes then.
    process = _python(
        """
        import json
        import sys

        import keras_compattr as kca

        before = "keras" in sys.modules
        hooks = [type(h).__module__ for h in sys.meta_path]
        names = dir(kca)
        import keras

        name = "keras_compattr>ComprehensiveAttributionModel"
        unused = keras.saving.get_registered_object(name)
        model = kca.ComprehensiveAttributionModel
        print(json.dumps({
            "keras_before": before,
            "hooks": hooks,
            "names": names,
            "unused": unused is None,
            "registered": keras.saving.get_registered_object(name) is model,
            "builder": callable(kca.models.build_classifier),
            "version": kca.__version__,
        }))
        """
    )
    result = json.loads(process.stdout.splitlines()[-1])
    assert result["keras_before"] is False
    assert not any(h.startswith("keras_compattr") for h in result["hooks"])
    for name in (
        "ComprehensiveAttributionModel",
        "callbacks",
        "datasets",
        "explainers",
        "layers",
        "losses",
        "metrics",
        "models",
        "__version__",
    ):
        assert name in result["names"]
    assert result["unused"] is True
    assert result["registered"] is True
    assert result["builder"] is True
    assert result["version"]


def test_load_model_registers_what_a_saved_model_holds(tmp_path):
    # In a fresh process, `kca.models.load_model` alone finds every class
    # a saved model holds (the model, its area control, its optimizers'
    # `WarmupStepDecay`), whatever was imported before.
    path = tmp_path / "comet.keras"
    shutil.copyfile(
        os.path.join(ROOT, "tests", "data", "saved_before", "comet.zip"), path
    )
    process = _python(
        f"""
        import json
        import warnings

        import keras_compattr as kca

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = kca.models.load_model({str(path)!r})
        optimizer = model.optimizer.selector_optimizer.get_config()
        print(json.dumps([
            type(model).__name__,
            type(model.area_control).__name__,
            optimizer["learning_rate"]["class_name"],
        ]))
        """
    )
    assert json.loads(process.stdout.splitlines()[-1]) == [
        "ComprehensiveAttributionModel",
        "AreaMultiplier",
        "WarmupStepDecay",
    ]
