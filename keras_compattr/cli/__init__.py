"""The `keras-compattr` command line.

Subcommands: `demo`, `train`, `explain`, `evaluate` and `benchmark`. Each
runs on the backend named by `KERAS_BACKEND` (TensorFlow by default), takes
`--seed` and `--config FILE` (JSON, or YAML when PyYAML is installed), and
exits with status 2 and one line on stderr on a bad argument or a missing
file.

The package, one module per concern:

- `parser`: `build_parser`, the options the commands share and the checks
  of their values;
- `config`: `--config FILE`;
- `demo`, `train`, `explain`, `evaluate`, `benchmark`: one module per
  command, each with `add_parser(commands)` and `run(args)`;
- `data`: which data set, split and images a command reads;
- `common`: `CommandError`, printing and model files.

Only `main` and `build_parser` are public. Importing the package imports
Keras and its backend; on the command line TensorFlow's start-up log lines
are silenced unless `TF_CPP_MIN_LOG_LEVEL` is set (see
`keras_compattr._environment`).
"""

import sys
import warnings

from keras_compattr.cli.common import CommandError
from keras_compattr.cli.config import apply_config
from keras_compattr.cli.parser import build_parser
from keras_compattr.cli.parser import check_arguments

__all__ = ["CommandError", "build_parser", "main"]


def main(argv=None):
    """Runs `keras-compattr` with `argv` (default: `sys.argv[1:]`).

    Args:
        argv: list of str.

    Returns:
        The exit status: 0 on success, 2 on a bad argument, a missing file
        or bad input (after one line on stderr). argparse's own usage
        errors raise `SystemExit(2)`.

    Example:

    ```python
    import keras
    import numpy as np

    import keras_compattr as kca
    from keras_compattr.cli import main

    # A model (untrained here: `keras-compattr train` makes real ones) and
    # an image file to explain.
    detector = kca.models.build_classifier((32, 32, 3), 4, widths=(4,))
    kca.training.small_comet((32, 32, 3), 4, detector).save("comet.keras")
    keras.utils.save_img("photo.png", np.random.rand(32, 32, 3))

    # As `keras-compattr explain --model comet.keras photo.png` in a shell.
    status = main(
        ["explain", "--model", "comet.keras", "photo.png",
         "--output", "explained"]
    )  # fmt: skip
    status  # 0; explained/photo_explanation.png, explained/photo_mask.npy
    ```
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _run(parser, args, argv)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Prints a warning as one line, without the source line Python adds."""
    text = " ".join(str(message).split())
    print(f"keras-compattr: warning: {text}", file=sys.stderr, flush=True)


def _run(parser, args, argv):
    try:
        if args.config:
            args = apply_config(parser, args, argv)
        check_arguments(args)
        args.handler(args)
    except (ValueError, FileNotFoundError) as error:
        # Advice worded for the command line where the error has it.
        text = getattr(error, "cli_message", None) or str(error)
        message = " ".join(text.split())
        print(f"keras-compattr: error: {message}", file=sys.stderr)
        return 2
    return 0
