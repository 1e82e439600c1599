"""Process settings that must be made before TensorFlow is first imported.

This module imports neither Keras nor TensorFlow: `keras_compattr` imports
it first, before the subpackages that import Keras.

- `TF_ENABLE_ONEDNN_OPTS=0` unless the user set it. On TensorFlow 2.21 on
  x86 CPUs, oneDNN's 1x1 convolution writes past its workspace in the
  weight gradient of a stride-2 1x1 convolution whose input has fewer
  channels than the kernel's channel block (16 with AVX-512, 8 with AVX2):
  a segmentation fault, a hang or wrong gradients
  (https://github.com/uxlfoundation/oneDNN/issues/6035). TensorFlow turns
  oneDNN on by default on CPUs with AVX-512 VNNI, BF16 or AMX, and reads
  the variable once, when it is imported: set it here or it is too late.
- When the process is the command line (`keras-compattr`, or
  `python -m keras_compattr`) and never in a user's own program:
  TensorFlow's C++ start-up log lines (CUDA probes, CPU features,
  `failed call to cuInit`) are silenced unless the user set
  `TF_CPP_MIN_LOG_LEVEL`.
"""

import contextlib
import os
import sys
import tempfile

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
COMMAND = "keras-compattr"
PACKAGE = "keras_compattr"


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


def is_command_line():
    """Whether this process is the `keras-compattr` command line.

    True for the console script (`sys.argv[0]` is `keras-compattr`, with
    `.exe` or `-script.py` on Windows) and for `python -m keras_compattr`
    (read from `sys.orig_argv`: while the package is imported on the way
    to its `__main__`, `sys.argv[0]` is only `"-m"`). False for anything
    else, a user's script, `python -c`, or `python -m pytest` that
    imports the package.

    Returns:
        bool.
    """
    argv = getattr(sys, "argv", None) or [""]
    script = os.path.basename(argv[0])
    for suffix in (".exe", "-script.py"):
        script = script.removesuffix(suffix)
    if script == COMMAND:
        return True
    return _module_run(getattr(sys, "orig_argv", ())) == PACKAGE


def _module_run(orig_argv):
    """The module of `python -m MODULE` in the interpreter's arguments.

    Args:
        orig_argv: the interpreter's arguments, `sys.orig_argv`.

    Returns:
        str, or None when the interpreter runs a script, `-c` or stdin.
    """
    arguments = iter(orig_argv[1:])
    for argument in arguments:
        if argument in ("-", "--") or not argument.startswith("-"):
            return None  # a script or stdin: the user's program
        if argument == "--check-hash-based-pycs":
            next(arguments, None)
        if argument.startswith("--"):
            continue  # a long option: --version, -X's long forms, ...
        # Short options, possibly combined (`-Bm keras_compattr`).
        for position, letter in enumerate(argument[1:], start=2):
            if letter in "WX":  # -W ignore, -Xdev: the rest is a value
                if position == len(argument):
                    next(arguments, None)
                break
            if letter == "m":
                return argument[position:] or next(arguments, None)
            if letter == "c":
                return None
    return None


def command_line_start_up():
    """Silences the framework's start-up on the command line.

    On the command line (see `is_command_line`), unless the user set
    `TF_CPP_MIN_LOG_LEVEL` or Keras is already imported, the level is set
    to 3 (only fatal errors; this also hides `failed call to cuInit` when
    no GPU driver is installed) and whatever the imports in the `with`
    block write to stderr is dropped, or printed if an import fails: the
    lines TensorFlow 2.21 logs before `absl::InitializeLog()` (CUDA
    probes, CPU features) are written whatever the level. Anywhere else,
    the block runs as it is, with every line TensorFlow prints.

    Returns:
        A context manager.
    """
    if (
        os.environ.get(LOG_LEVEL_VARIABLE)
        or "keras" in sys.modules
        or not is_command_line()
    ):
        return contextlib.nullcontext()
    os.environ[LOG_LEVEL_VARIABLE] = "3"
    return _stderr_to_file()
