"""`keras-compattr demo`: `keras_compattr.evaluation.run_demo` in a shell."""

from keras_compattr.cli.common import call_with_options
from keras_compattr.cli.parser import add_command
from keras_compattr.cli.parser import add_option
from keras_compattr.cli.parser import add_shared_options


def add_parser(commands):
    """Adds the `demo` command to the subparsers `commands`."""
    demo = add_command(
        commands,
        "demo",
        help="train on the embedded data and save explanations",
        description="Trains a detector, then COMET, on the embedded "
        "synthetic two-part data; prints accuracy, mask area and part "
        "coverage; saves a PNG of explanations and the model.",
    )
    add_option(demo, "epochs")
    add_option(demo, "detector_epochs")
    add_option(demo, "train_images")
    add_option(
        demo,
        "hinge_reduction",
        default="batch",
        help="hinge on batch-mean losses or per image (default: batch, as "
        "the model's)",
    )
    add_option(demo, "area_budget", default="auto")
    add_option(
        demo, "image_size", type=int, nargs=None, default=48, help="pixels"
    )
    add_option(demo, "test_images")
    add_option(demo, "batch_size")
    add_shared_options(demo, output="compattr_demo", verbose=2)
    return demo


def run(args):
    """Runs the demo with the parsed arguments."""
    from keras_compattr.evaluation import run_demo

    return call_with_options(run_demo, args)
