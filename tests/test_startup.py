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


def test_lazy_package_still_registers_and_exposes_everything():
    process = _python(
        """
        import json
        import sys

        import keras_compattr as kca

        before = "keras" in sys.modules
        names = dir(kca)
        import keras

        registered = keras.saving.get_registered_object(
            "keras_compattr>ComprehensiveAttributionModel"
        )
        print(json.dumps({
            "keras_before": before,
            "names": names,
            "registered": registered is kca.ComprehensiveAttributionModel,
            "loader": type(keras.__spec__.loader).__module__,
            "builder": callable(kca.models.build_classifier),
            "version": kca.__version__,
        }))
        """
    )
    result = json.loads(process.stdout.splitlines()[-1])
    assert result["keras_before"] is False
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
    assert result["registered"] is True
    assert not result["loader"].startswith("keras_compattr")
    assert result["builder"] is True
    assert result["version"]
