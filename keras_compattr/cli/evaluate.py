"""`keras-compattr evaluate`: the metrics table of a trained model."""

import json
import os

from keras_compattr.cli.common import CommandError
from keras_compattr.cli.common import check_file
from keras_compattr.cli.common import check_model_classes
from keras_compattr.cli.common import echo
from keras_compattr.cli.common import load_comet
from keras_compattr.cli.data import load_arrays
from keras_compattr.cli.parser import add_command
from keras_compattr.cli.parser import add_option
from keras_compattr.cli.parser import add_shared_options

EXPLAINERS = (
    "grad_cam",
    "saliency",
    "integrated_gradients",
    "rise",
    "learned_mask",
)


def add_parser(commands):
    """Adds the `evaluate` command to the subparsers `commands`."""
    evaluate = add_command(
        commands,
        "evaluate",
        help="print the metrics table of a trained model on a data set",
        description="Scores a trained COMET model (and optionally post-hoc "
        "explainers of its detector) with the metrics of "
        "keras_compattr.metrics: accuracy, PxAP, coverage, pointing game, "
        "fidelity, robustness. Localisation metrics need a data set with "
        "masks; coverage and background-swap robustness need the synthetic "
        "data.",
        epilog="example:\n  keras-compattr evaluate --model "
        "compattr_train/comet.keras --dataset synthetic "
        "--explainers grad_cam,saliency",
    )
    add_option(evaluate, "model")
    add_option(evaluate, "dataset")
    own_options = {
        "--split": dict(
            default="test",
            help="split to score (for a folder without a test folder: the "
            "test share held out of its training images)",
        ),
        "--max-images": dict(type=int, default=500, help="images scored"),
        "--explainers": dict(
            default="",
            help="comma-separated explainers of the detector to compare: "
            f"{', '.join(EXPLAINERS)} (learned_mask is trained first, see "
            "--learned-mask-epochs)",
        ),
        "--learned-mask-epochs": dict(
            type=int,
            default=8,
            help="epochs of learned_mask: a LearnedMask of the detector, "
            "trained on images of the training split with the detector's "
            "own predictions as labels",
        ),
        "--learned-mask-images": dict(
            type=int,
            default=2000,
            help="training images of learned_mask at most",
        ),
        "--evaluator": dict(
            metavar="MODEL.keras",
            help="classifier that scores the fidelity metrics; default: the "
            "model's detector",
        ),
        "--deletion-steps": dict(type=int, default=20, help="curve steps"),
    }
    for flag, settings in own_options.items():
        evaluate.add_argument(flag, **settings)
    add_option(evaluate, "batch_size")
    add_option(evaluate, "skip_bad_images")
    add_option(evaluate, "data_dir")
    add_option(evaluate, "download")
    add_shared_options(
        evaluate,
        output=None,
        output_help="folder for evaluation.json and evaluation.md",
    )
    return evaluate


def run(args):
    """Scores the model of the parsed arguments; returns the results."""
    import keras

    from keras_compattr import explainers
    from keras_compattr.evaluation import CompiledClassifier
    from keras_compattr.evaluation import evaluate_explanations
    from keras_compattr.evaluation import format_table

    model = load_comet(args.model)
    names = (
        [n for n in args.explainers.split(",") if n] if args.explainers else []
    )
    for name in names:
        if name not in EXPLAINERS:
            raise CommandError(
                f"--explainers takes {', '.join(EXPLAINERS)}; got {name!r}."
            )
    evaluator = model.detector
    if args.evaluator is not None:
        check_file(args.evaluator, "evaluator file")
        evaluator = keras.saving.load_model(args.evaluator)
    fast_evaluator = CompiledClassifier(evaluator)
    keras.utils.set_random_seed(args.seed)
    data = _load_split(model, args, args.split, args.max_images)
    images, labels = data["images"], data["labels"]
    check_model_classes(
        args.model, model.num_classes, args.dataset, data["class_names"]
    )
    if labels.max() >= model.num_classes:
        raise CommandError(
            f"{args.dataset!r} has labels up to {labels.max()}, but the "
            f"model has {model.num_classes} classes."
        )
    total = data.get("num_examples")
    echo(
        f"Evaluating {args.model} on {len(images)} "
        f"{'' if total is None else f'of the {total} '}images of "
        f"{args.dataset}, split {args.split!r} ({data['note']}); fidelity "
        "judged by "
        f"{'the model detector' if args.evaluator is None else args.evaluator}."
    )
    logs = model.evaluate(
        images, labels, batch_size=args.batch_size, verbose=0, return_dict=True
    )
    common = dict(
        masks=data.get("masks"),
        part_masks=data.get("part_masks"),
        swapped_images=data.get("swapped_images"),
        fill=keras.ops.convert_to_numpy(model.fill),
        batch_size=args.batch_size,
        deletion_steps=args.deletion_steps,
    )
    results = {
        "COMET": evaluate_explanations(
            lambda x: model.explain(x, batch_size=args.batch_size, verbose=0),
            images,
            labels,
            fast_evaluator,
            accuracy=logs["accuracy"],
            **common,
        )
    }
    results["COMET"]["masked_out_accuracy"] = float(logs["masked_out_accuracy"])
    detector_accuracy = None
    if names:
        predicted = model.detector.predict(
            images, batch_size=args.batch_size, verbose=0
        ).argmax(axis=-1)
        detector_accuracy = float((predicted == labels).mean())
    for name in names:
        explainer = {
            "grad_cam": lambda: explainers.GradCAM(model.detector),
            "saliency": lambda: explainers.Saliency(model.detector),
            "integrated_gradients": lambda: explainers.IntegratedGradients(
                model.detector
            ),
            "rise": lambda: explainers.RISE(
                CompiledClassifier(model.detector), num_masks=500
            ),
            "learned_mask": lambda: _learned_mask(model, args),
        }[name]()
        results[f"{name} (detector)"] = evaluate_explanations(
            lambda x, e=explainer: e.explain(
                x, labels[: len(x)], batch_size=args.batch_size
            ),
            images,
            labels,
            fast_evaluator,
            accuracy=detector_accuracy,
            **common,
        )
    table = format_table(results)
    echo("\n" + table)
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        with open(os.path.join(args.output, "evaluation.json"), "w") as f:
            json.dump(results, f, indent=2)
        with open(os.path.join(args.output, "evaluation.md"), "w") as f:
            f.write(table + "\n")
        echo(f"\nWrote {args.output}")
    return results


def _load_split(model, args, split, max_images):
    """`split` of `--dataset` at the model's image size, as arrays."""
    return load_arrays(
        args.dataset,
        split,
        tuple(model.image_shape[:2]),
        max_images,
        args.seed,
        data_dir=args.data_dir,
        download=args.download,
        skip_bad_images=args.skip_bad_images,
    )


def _learned_mask(model, args):
    """A `LearnedMask` of the model's detector, fitted on training images."""
    from keras_compattr import explainers

    train = _load_split(model, args, "train", args.learned_mask_images)
    echo(
        f"Training learned_mask (a LearnedMask of the detector) on "
        f"{len(train['images'])} training images for "
        f"{args.learned_mask_epochs} epochs."
    )
    explainer = explainers.LearnedMask(model.detector)
    explainer.fit(
        train["images"],
        epochs=args.learned_mask_epochs,
        batch_size=args.batch_size,
        verbose=0,
    )
    return explainer
