"""Process settings that must be made before TensorFlow is first imported.

This module imports neither Keras nor TensorFlow: `keras_compattr` imports
it first, and the command line uses it before any command runs.

- `TF_ENABLE_ONEDNN_OPTS=0` unless the user set it. On TensorFlow 2.21 on
  x86 CPUs, oneDNN's 1x1 convolution writes past its workspace in the
  weight gradient of a stride-2 1x1 convolution whose input has fewer
  channels than the kernel's channel block (16 with AVX-512, 8 with AVX2):
  a segmentation fault, a hang or wrong gradients
  (https://github.com/uxlfoundation/oneDNN/issues/6035). TensorFlow turns
  oneDNN on by default on CPUs with AVX-512 VNNI, BF16 or AMX, and reads
  the variable once, when it is imported: set it here or it is too late.
- The command line only: TensorFlow's C++ start-up log lines (CUDA probes,
  CPU features, `failed call to cuInit`) are silenced unless the user set
  `TF_CPP_MIN_LOG_LEVEL`.
"""

import contextlib
import os
import sys
import tempfile

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"


def configure():
    """Turns oneDNN off for TensorFlow unless the user has decided.

    Does nothing when `TF_ENABLE_ONEDNN_OPTS` is set (to any non-empty
    value) or when TensorFlow is already imported: it read the variable
    then, and setting it now would only misreport the state of the process.

    Returns:
        bool, whether the variable was set.
    """
    if os.environ.get(ONEDNN_VARIABLE) or "tensorflow" in sys.modules:
        return False
    os.environ[ONEDNN_VARIABLE] = "0"
    return True


@contextlib.contextmanager
def _stderr_to_file():
    """Sends file descriptor 2 to a temporary file; replays it on error.

    C++ libraries write to the descriptor, not to `sys.stderr`, so this is
    the only way to keep their start-up lines out of the terminal.

    Yields:
        None.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            captured.seek(0)
            os.write(2, captured.read())
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def import_backend_quietly():
    """Imports Keras and its backend without TensorFlow's start-up lines.

    Used by the command line before a command runs. When the user set
    `TF_CPP_MIN_LOG_LEVEL`, Keras is imported as it is, with every line
    TensorFlow prints at that level. Otherwise the level is set to 3 (only
    fatal errors; this also hides `failed call to cuInit` when no GPU
    driver is installed) and whatever the import writes to stderr is
    dropped, or printed if the import fails.

    Returns:
        The `keras` module.
    """
    if os.environ.get(LOG_LEVEL_VARIABLE) or "keras" in sys.modules:
        import keras

        return keras
    os.environ[LOG_LEVEL_VARIABLE] = "3"
    with _stderr_to_file():
        import keras

        if keras.backend.backend() == "tensorflow":
            # Keras imports TensorFlow lazily in parts; the C++ libraries
            # print their lines when they load.
            import tensorflow  # noqa: F401
    return keras
