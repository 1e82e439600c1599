"""`keras-compattr benchmark`: `keras_compattr.evaluation.run_benchmark`."""

from keras_compattr.cli.common import call_with_options
from keras_compattr.cli.parser import add_command
from keras_compattr.cli.parser import add_option
from keras_compattr.cli.parser import add_shared_options

# `keras_compattr.evaluation.benchmark.METHODS`, listed here so that
# `--help` does not import Keras; a test keeps the two equal.
METHODS = (
    "COMET (default)",
    "COMET (unhardened)",
    "COMET (paper recipe)",
    "COMET (sample hinge)",
    "no detector (a=0)",
    "Grad-CAM",
    "Saliency",
    "IntegratedGradients",
    "RISE",
    "LearnedMask",
)


def add_parser(commands):
    """Adds the `benchmark` command to the subparsers `commands`."""
    benchmark = add_command(
        commands,
        "benchmark",
        help="COMET vs. its ablation and post-hoc maps on the embedded data",
        description="Trains the black box, COMET (the defaults, unhardened, "
        "the paper's recipe, the per-sample hinge) and the no-detector "
        "ablation on the embedded two-part data, "
        "explains the test set with them and with Grad-CAM, Saliency, "
        "IntegratedGradients, RISE and LearnedMask of the black box, and "
        "prints one table of every "
        "metric. Writes benchmark.json, benchmark.md and figures. The full "
        "budget takes about 30 minutes on a 2-core CPU.",
    )
    benchmark.add_argument(
        "--quick",
        action="store_true",
        help="tiny budget: checks that it runs, numbers mean nothing",
    )
    benchmark.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        metavar="SEED",
        help="run several seeds and report mean ± std (overrides --seed)",
    )
    add_option(
        benchmark,
        "area_budget",
        type=float,
        default=0.2,
        help="the fixed area budget of the fixed-budget COMET rows",
    )
    benchmark.add_argument(
        "--variant",
        choices=("two_part", "varied"),
        default="two_part",
        help="embedded configuration: two class tiles per image, or 1-3 "
        "tiles of three sizes (evidence area varies from image to image)",
    )
    benchmark.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        metavar="METHOD",
        help="run only these rows (quote names with spaces), from: "
        + ", ".join(repr(name) for name in METHODS),
    )
    add_shared_options(benchmark, output="compattr_benchmark")
    return benchmark


def run(args):
    """Runs the benchmark with the parsed arguments; returns its report."""
    from keras_compattr.evaluation import run_benchmark

    return call_with_options(
        run_benchmark, args, verbose=1 if args.verbose else 0
    )
