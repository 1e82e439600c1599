"""Start-up of the package and the command line (issue 12, item 9).

`import keras_compattr` registers every serialisable class it defines (so
that `keras.saving.load_model` reads a saved model), `keras-compattr --help`
prints only the command line's text, and a command prints nothing of
TensorFlow's start-up. Each test runs a fresh interpreter, as a user's
shell does.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from keras_compattr import _environment

LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def test_help_and_usage_errors_print_only_the_cli_text():
    # `--help` imports the package, and so Keras and its backend, but prints
    # only the command line's text. (Importing Keras sets
    # TF_CPP_MIN_LOG_LEVEL=1 in this process: unset it, as a user's shell.)
    process = _run(_command_line() + ["--help"], unset=(LOG_LEVEL,))
    assert process.returncode == 0
    assert process.stdout.startswith("usage: keras-compattr")
    assert process.stderr == ""
    process = _run(
        [sys.executable, "-W", "ignore", "-m", "keras_compattr"]
        + ["train", "--no-such-flag"],
        unset=(LOG_LEVEL,),
    )
    assert process.returncode == 2
    assert process.stdout == ""
    lines = process.stderr.splitlines()
    assert lines[0].startswith("usage: keras-compattr")
    assert lines[-1] == (
        "keras-compattr: error: unrecognized arguments: --no-such-flag"
    )
    assert len(lines) == 2, process.stderr


def test_a_command_prints_no_tensorflow_start_up_lines(tmp_path):
    # Imports the backend, then fails on the missing model file.
    missing = str(tmp_path / "missing.keras")
    process = _run(
        _command_line()
        + ["explain", "--model", missing, str(tmp_path / "image.png")],
        unset=(LOG_LEVEL,),
    )
    assert process.returncode == 2
    assert process.stderr.splitlines() == [
        f"keras-compattr: error: model file {missing!r} not found."
    ], process.stderr


def test_the_command_line_is_recognised_and_nothing_else(monkeypatch):
    # Only `keras-compattr` and `python -m keras_compattr` are silenced.
    monkeypatch.setattr(sys, "orig_argv", ["python", "script.py"])
    for script, expected in [
        ("/usr/bin/keras-compattr", True),
        ("C:\\env\\Scripts\\keras-compattr.exe", os.name == "nt"),
        ("keras-compattr-script.py", True),
        ("my_keras-compattr_script.py", False),
        ("script.py", False),
        ("", False),
    ]:
        monkeypatch.setattr(sys, "argv", [script])
        assert _environment.is_command_line() is expected, script
    monkeypatch.setattr(sys, "argv", ["-m"])
    for orig_argv, expected in [
        (["python", "-m", "keras_compattr", "train"], True),
        (["python", "-W", "ignore", "-Bm", "keras_compattr"], True),
        (["python", "-X", "dev", "-mkeras_compattr"], True),
        (["python", "-m", "pytest", "-m", "keras_compattr"], False),
        (["python", "script.py", "-m", "keras_compattr"], False),
        (["python", "-c", "import x", "-m", "keras_compattr"], False),
        (["python", "-", "-m", "keras_compattr"], False),
    ]:
        monkeypatch.setattr(sys, "orig_argv", orig_argv)
        assert _environment.is_command_line() is expected, orig_argv


# One fresh process per backend, Keras imported before the package on one.
LOAD_ORDERS = {"tensorflow": False, "jax": True, "torch": False}


@pytest.mark.parametrize("backend", sorted(LOAD_ORDERS))
def test_import_alone_lets_keras_load_a_saved_model(tmp_path, backend):
    # After `import keras_compattr` (before or after `import keras`), Keras'
    # own `load_model` reads a saved model, its area control and its
    # optimizers' `WarmupStepDecay`: the package registers every
    # serialisable class it defines when imported, not on first use. In a
    # user's program the package leaves TensorFlow's log level alone.
    if backend != "tensorflow" and not importlib.util.find_spec(backend):
        pytest.skip(f"install the [{backend}] or [test] extra")
    path = tmp_path / "comet.keras"
    shutil.copyfile(
        os.path.join(ROOT, "tests", "data", "saved_before", "comet.zip"), path
    )
    order = ("keras", "keras_compattr")[:: -1 if LOAD_ORDERS[backend] else 1]
    code = f"""
        import json
        import os
        import sys
        import warnings

        import {order[1]}
        import {order[0]}
        import keras
        import numpy as np
        import keras_compattr as kca
        from keras_compattr.api_export import EXPORTS

        def registered():
            return sorted(
                path for path, symbol in EXPORTS.items()
                if keras.saving.get_registered_object(
                    f"keras_compattr>{{symbol.__name__}}"
                ) is symbol
            )

        at_import = registered()
        hooks = [type(h).__module__ for h in sys.meta_path]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = keras.saving.load_model({str(path)!r})
            again = kca.models.load_model({str(path)!r})
        images = np.random.default_rng(0).uniform(
            0, 1, (2, *model.image_shape)
        ).astype("float32")
        outputs = [
            keras.ops.convert_to_numpy(m(images))
            for m in (model, again)
        ]
        for name in kca.__all__:  # the lazy subpackages too
            getattr(kca, name)
        schedule = model.optimizer.selector_optimizer.get_config()
        print(json.dumps({{
            "backend": keras.backend.backend(),
            "at_import": at_import,
            "after_all": registered(),
            "hooks": hooks,
            "model": type(model).__name__,
            "area_control": type(model.area_control).__name__,
            "schedule": schedule["learning_rate"]["class_name"],
            "same_class": type(model) is kca.ComprehensiveAttributionModel,
            "same_outputs": bool(np.allclose(*outputs)),
            "log_level": os.environ.get("TF_CPP_MIN_LOG_LEVEL"),
        }}))
        """
    env = {k: v for k, v in os.environ.items() if k != LOG_LEVEL}
    process = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=dict(env, KERAS_BACKEND=backend),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stderr[-4000:]
    result = json.loads(process.stdout.splitlines()[-1])
    assert result["backend"] == backend
    assert result["model"] == "ComprehensiveAttributionModel"
    assert result["area_control"] == "AreaMultiplier"
    assert result["schedule"] == "WarmupStepDecay"
    assert result["same_class"] is True
    assert result["same_outputs"] is True
    assert (
        "keras_compattr.models.ComprehensiveAttributionModel"
        in result["at_import"]
    )
    # Nothing that a later import registers was missing at import.
    assert result["at_import"] == result["after_all"]
    assert not any(h.startswith("keras_compattr") for h in result["hooks"])
    # Keras' TensorFlow backend sets 1 itself; the command line sets 3.
    assert result["log_level"] != "3"
