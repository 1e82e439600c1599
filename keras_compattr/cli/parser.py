"""The argument parser: the options the commands share, and their checks.

Each command module adds its own parser with `add_parser(commands)`; the
options several commands take are defined once here, in `OPTIONS`, and
added by name with `add_option`. `add_shared_options` adds those every
command takes.
"""

import argparse
import textwrap

from keras_compattr.cli.common import CommandError

COMMANDS = ("demo", "train", "explain", "evaluate", "benchmark")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows defaults (except None / False) and keeps the epilog's lines."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, False, "", argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


def describe(text):
    """`text` wrapped for `--help`."""
    return textwrap.fill(text, 78)


def image_size_value(text):
    """argparse type of `--image-size`: `PX` or `HxW`."""
    parts = text.lower().split("x")
    try:
        sizes = [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected PX, H W or HxW, got {text!r}"
        ) from None
    if len(sizes) > 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected positive PX, H W or HxW, got {text!r}"
        )
    return sizes[0] if len(sizes) == 1 else tuple(sizes)


def image_size(value):
    """`(height, width)` of `--image-size` (or a config value), or `None`."""
    if value is None:
        return None
    values = value if isinstance(value, (list, tuple)) else [value]
    sizes = []
    for item in values:
        if isinstance(item, str):
            try:
                item = image_size_value(item)
            except argparse.ArgumentTypeError as error:
                raise CommandError(f"--image-size: {error}.") from None
        sizes += list(item) if isinstance(item, (list, tuple)) else [item]
    if (
        len(sizes) not in (1, 2)
        or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in sizes
        )
        or min(sizes) < 1
    ):
        raise CommandError(
            f"--image-size takes PX, H W or HxW (positive ints); got {value!r}."
        )
    return (sizes[0], sizes[-1])


def area_budget_value(value):
    """argparse type of `--area-budget`: a share of the image, or 'auto'."""
    if value == "auto":
        return value
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a share of the image in (0, 1] or 'auto'; got {value!r}"
        ) from None


# The options of more than one command: `add_argument` settings by name;
# a command may change any setting (a default, a help text).
OPTIONS = {
    "output": dict(help="output folder"),
    "seed": dict(type=int, default=0, help="seed of data and initialisation"),
    "config": dict(
        metavar="FILE",
        help="JSON (or YAML, with PyYAML installed) file of option values, "
        'keyed by option name (e.g. {"epochs": 5}); flags on the command '
        "line win",
    ),
    "verbose": dict(
        type=int,
        default=1,
        choices=(0, 1, 2),
        help="Keras verbosity: 0 silent, 1 progress bars on a terminal (one "
        "line per epoch when output goes to a file or pipe), 2 one line per "
        "epoch",
    ),
    "model": dict(metavar="MODEL.keras", help="trained COMET model (required)"),
    "dataset": dict(default="synthetic", help="as in `train --dataset`"),
    "data_dir": dict(
        metavar="DIR",
        help="TFDS data folder; default: TFDS_DATA_DIR or "
        "~/tensorflow_datasets",
    ),
    "download": dict(
        action=argparse.BooleanOptionalAction,
        help="download and prepare a missing TFDS data set (--no-download: "
        "never); default: only if its download host answers",
    ),
    "image_size": dict(
        type=image_size_value,
        nargs="+",
        metavar="PX",
        help="image size in pixels: PX, H W or HxW",
    ),
    "epochs": dict(type=int, default=10, help="COMET epochs"),
    "detector_epochs": dict(type=int, default=8, help="detector epochs"),
    "batch_size": dict(type=int, default=64, help="images"),
    "train_images": dict(type=int, default=1600, help="training images"),
    "test_images": dict(type=int, default=500, help="test images"),
    "hinge_reduction": dict(
        choices=("batch", "sample"),
        help="hinge on batch-mean losses or per image",
    ),
    "area_budget": dict(
        type=area_budget_value,
        help="mask area budget t, or 'auto' (smallest complete mask)",
    ),
    "skip_bad_images": dict(
        action="store_true",
        help="leave out the image files of a folder that cannot be decoded "
        "(their count is printed); default: stop, naming the first",
    ),
}


def add_option(parser, name, **changes):
    """Adds the shared option `name` (`--name-with-dashes`) to `parser`.

    Args:
        parser: an `argparse.ArgumentParser`.
        name: str, a key of `OPTIONS`.
        **changes: `add_argument` settings that replace the shared ones.
    """
    flag = "--" + name.replace("_", "-")
    parser.add_argument(flag, **{**OPTIONS[name], **changes})


def add_shared_options(parser, output, verbose=1, output_help=None):
    """Adds the options every command takes.

    `--output`, `--seed`, `--config FILE` and `--verbose`.

    Args:
        parser: the command's `argparse.ArgumentParser`.
        output: the default output folder (`None`: no output by default).
        verbose: the default Keras verbosity.
        output_help: what `--output` holds, when not a folder of results.
    """
    add_option(
        parser,
        "output",
        default=output,
        help=output_help or OPTIONS["output"]["help"],
    )
    add_option(parser, "seed")
    add_option(parser, "config")
    add_option(parser, "verbose", default=verbose)


def add_command(commands, name, help, description, epilog=None):
    """A subcommand's parser, formatted alike."""
    return commands.add_parser(
        name,
        help=help,
        formatter_class=Formatter,
        description=describe(description),
        epilog=epilog,
    )


def build_parser():
    """The argument parser of `keras-compattr`.

    Returns:
        An `argparse.ArgumentParser`; `parser.commands` maps each
        subcommand name to its parser.

    Example:

    >>> from keras_compattr.cli import build_parser
    >>> args = build_parser().parse_args(["train", "--epochs", "3"])
    >>> args.command, args.epochs, args.seed
    ('train', 3, 0)
    """
    import importlib

    parser = argparse.ArgumentParser(
        prog="keras-compattr",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=describe(
            "Inherently explainable image classification (COMET) in Keras 3. "
            "The backend comes from KERAS_BACKEND (tensorflow, jax or "
            "torch)."
        ),
        epilog=(
            "Run `keras-compattr COMMAND --help` for a command's options.\n"
            "Every command takes --seed and --config FILE (JSON, or YAML "
            "with PyYAML)."
        ),
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND"
    )
    parser.commands = {}
    for name in COMMANDS:
        module = importlib.import_module(f"keras_compattr.cli.{name}")
        command = module.add_parser(commands)
        command.set_defaults(handler=module.run)
        parser.commands[name] = command
    return parser


def check_arguments(args):
    """Raises `CommandError` on values argparse cannot check by itself."""
    for name in ("epochs", "detector_epochs", "batch_size", "max_images"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            flag = "--" + name.replace("_", "-")
            raise CommandError(f"{flag} must be positive; got {value}.")
    patience = getattr(args, "early_stopping", None)
    if patience is not None and patience < 1:
        raise CommandError(
            f"--early-stopping takes a patience of at least 1 epoch; got "
            f"{patience}."
        )
    if getattr(args, "area_budget", None) is not None:
        if args.area_budget != "auto" and not 0.0 < args.area_budget <= 1.0:
            raise CommandError(
                f"--area-budget must be in (0, 1]; got {args.area_budget}."
            )
    if args.command in ("explain", "evaluate") and not args.model:
        raise CommandError(f"`{args.command}` needs --model MODEL.keras.")
