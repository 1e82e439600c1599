"""`keras-compattr train`: a detector (or a given one), then COMET."""

import json
import os
import shutil
import warnings

from keras_compattr.cli.common import CommandError
from keras_compattr.cli.common import check_file
from keras_compattr.cli.common import echo
from keras_compattr.cli.data import is_synthetic
from keras_compattr.cli.data import load_splits
from keras_compattr.cli.data import shown_examples
from keras_compattr.cli.detector_check import check_detector
from keras_compattr.cli.parser import add_command
from keras_compattr.cli.parser import add_option
from keras_compattr.cli.parser import add_shared_options
from keras_compattr.cli.parser import image_size
from keras_compattr.models.recipes import RECIPES

SELECTORS = ("tiny", *RECIPES)
PREDICTORS = ("small", *RECIPES)


def add_parser(commands):
    """Adds the `train` command to the subparsers `commands`."""
    train = add_command(
        commands,
        "train",
        help="train a detector (or take one) and COMET on a data set",
        description="Trains the detector as a plain classifier (unless "
        "--detector gives a trained one), then COMET. Writes to --output: "
        "comet.keras, detector.keras, history.json/.csv/.png (and "
        "detector_history.*), explanations.png, monitor/epoch_NNN.png and "
        "class_names.json.",
        epilog=(
            "examples:\n"
            "  keras-compattr train --dataset synthetic --epochs 10\n"
            "  keras-compattr train --dataset folder:photos --image-size 128 "
            "\\\n      --selector mobilenet_v3_small --predictor resnet18\n"
            "  keras-compattr train --dataset oxford_iiit_pet "
            "--detector pets.keras"
        ),
    )
    add_option(
        train,
        "dataset",
        help="synthetic, synthetic/one_part, oxford_iiit_pet, "
        "caltech_birds2011, imagenette, stl10, cifar10 or folder:PATH "
        "(one sub-folder of images per class)",
    )
    weights = dict(choices=("none", "imagenet"), default="none")
    train.add_argument(
        "--selector",
        default="tiny",
        help=f"tiny (a five-layer conv net), {', '.join(RECIPES)} (see the "
        "backbones guide), or a .keras selector model",
    )
    train.add_argument(
        "--selector-weights",
        **weights,
        help="initial weights of a recipe selector (imagenet needs network "
        "access, or weights cached by Keras / KerasHub)",
    )
    train.add_argument(
        "--predictor",
        default="small",
        help=f"small (a narrow ResNet), {', '.join(RECIPES)}, or a .keras "
        "classifier; also the architecture of a detector trained here",
    )
    train.add_argument(
        "--predictor-weights",
        **weights,
        help="initial weights of a recipe predictor (and detector)",
    )
    train.add_argument(
        "--detector",
        metavar="MODEL.keras",
        help="a trained classifier to use as the detector; default: train one",
    )
    add_option(train, "epochs")
    add_option(train, "detector_epochs")
    add_option(train, "batch_size")
    train.add_argument(
        "--learning-rate",
        type=float,
        default=2e-3,
        help="initial learning rate (cosine decay to 0)",
    )
    add_option(
        train,
        "image_size",
        help="image size in pixels: PX, H W or HxW; default 48 for synthetic "
        "data, 224 otherwise",
    )
    add_option(
        train,
        "area_budget",
        default="auto",
        help="mask area budget t, or 'auto' (default, as the model's: the "
        "smallest complete mask); the paper's recipe: 0.6",
    )
    add_option(
        train,
        "hinge_reduction",
        help="hinge on batch-mean losses or per image; default: the model's",
    )
    train.add_argument(
        "--no-hardening",
        action="store_true",
        help="judge the masked-out image with the detector as it is (the "
        "paper's recipe) instead of a copy hardened on randomly masked "
        "images",
    )
    train.add_argument(
        "--detector-weight",
        type=float,
        default=4.0,
        help="weight a of the detector term (0: no-detector ablation)",
    )
    train.add_argument(
        "--augment",
        action="store_true",
        help="random crop, flip and rotation (the paper's augmentation)",
    )
    train.add_argument(
        "--validation-split",
        help="split to validate on; default: test (validation for "
        "imagenette; val for folders, held out of the training images when "
        "the folder has no val folder)",
    )
    add_option(
        train, "train_images", help="training images (synthetic data only)"
    )
    add_option(
        train, "test_images", help="validation images (synthetic data only)"
    )
    train.add_argument(
        "--monitor-every",
        type=int,
        default=1,
        help="save the masks of 6 validation images, spread over the "
        "classes, every N epochs (0: off)",
    )
    add_option(train, "skip_bad_images")
    train.add_argument(
        "--force",
        action="store_true",
        help="train COMET even when the detector's validation accuracy is "
        "near chance (default: stop before COMET, saying so)",
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="resume an interrupted run in --output: its detector.keras is "
        "used as it is, and COMET continues from its last backup "
        "(OUTPUT/backup, written every epoch, deleted when COMET ends)",
    )
    train.add_argument(
        "--early-stopping",
        type=int,
        metavar="PATIENCE",
        help="stop the detector's and COMET's training when the validation "
        "loss has not improved for PATIENCE epochs, and keep the best "
        "epoch's weights (keras.callbacks.EarlyStopping)",
    )
    add_option(train, "data_dir")
    add_option(train, "download")
    cluster = train.add_argument_group(
        "training on several machines (JAX; see docs/scaling.md)",
        "Run the same command on every machine, with KERAS_BACKEND=jax. "
        "Any of these flags (or KERAS_DISTRIBUTION_NUM_PROCESSES / "
        "_PROCESS_ID in the environment) joins the run; unset values come "
        "from KERAS_DISTRIBUTION_JOB_ADDRESSES, then MASTER_ADDR:"
        "MASTER_PORT, WORLD_SIZE and RANK, then JAX's cluster detection "
        "(TPU VMs, SLURM). Process 0 writes --output.",
    )
    cluster.add_argument(
        "--coordinator-address",
        metavar="HOST:PORT",
        help="address of process 0, reachable from every process",
    )
    cluster.add_argument(
        "--num-processes", type=int, help="number of processes in the run"
    )
    cluster.add_argument(
        "--process-id", type=int, help="this process's index, from 0"
    )
    add_shared_options(train, output="compattr_train")
    return train


def _check_choice(value, choices, flag):
    if value not in choices and not value.endswith(".keras"):
        raise CommandError(
            f"{flag} must be one of {', '.join(choices)} or a .keras file. "
            f"Received {value!r}."
        )


def _weights(value):
    return None if value == "none" else value


def _build_selector(choice, shape, weights):
    import keras

    from keras_compattr.models import as_selector
    from keras_compattr.models import build_selector

    if choice.endswith(".keras"):
        check_file(choice, "selector file")
        return keras.saving.load_model(choice)
    if choice == "tiny":
        return build_selector(shape, backbone="tiny", width=8)
    return as_selector(choice, image_shape=shape, weights=_weights(weights))


def _build_predictor(choice, shape, num_classes, weights, name="predictor"):
    import keras

    from keras_compattr.models import as_predictor
    from keras_compattr.training import small_classifier

    if choice.endswith(".keras"):
        check_file(choice, "predictor file")
        return keras.saving.load_model(choice)
    if choice == "small":
        return small_classifier(shape, num_classes, name=name)
    return as_predictor(
        choice,
        image_shape=shape,
        num_classes=num_classes,
        weights=_weights(weights),
        name=name,
    )


def _write_history(history, path_stem):
    """Writes a Keras History as JSON and CSV (one row per epoch)."""
    logs = {k: [float(v) for v in values] for k, values in history.items()}
    with open(path_stem + ".json", "w") as f:
        json.dump(logs, f, indent=2)
    keys = list(logs)
    epochs = max((len(v) for v in logs.values()), default=0)
    with open(path_stem + ".csv", "w") as f:
        f.write("epoch," + ",".join(keys) + "\n")
        for epoch in range(epochs):
            row = [
                f"{logs[k][epoch]:.6g}" if epoch < len(logs[k]) else ""
                for k in keys
            ]
            f.write(f"{epoch + 1}," + ",".join(row) + "\n")


def _early_stopping(args, validation):
    """`[EarlyStopping]` for `--early-stopping PATIENCE`, else `[]`."""
    import keras

    if args.early_stopping is None:
        return []
    return [
        keras.callbacks.EarlyStopping(
            monitor="val_loss" if validation is not None else "loss",
            patience=args.early_stopping,
            restore_best_weights=True,
        )
    ]


def _train_detector(args, train, validation, shape, num_classes, verbose):
    """Trains the detector, saves it with its history, and returns it.

    `train_classifier` refreshes its batch-norm statistics after `fit`.
    """
    from keras_compattr.training import first_step_notices
    from keras_compattr.training import train_classifier
    from keras_compattr.visualization import plot_history

    echo(f"\n[1/2] Training the detector ({args.detector_epochs} epochs)")
    detector = _build_predictor(
        args.predictor,
        shape,
        num_classes,
        args.predictor_weights,
        name="detector",
    )
    # The command checks the detector itself, in its own words.
    history = _train(
        train_classifier,
        detector,
        (train, validation, args.detector_epochs),
        args,
        first_step_notices(verbose, "the detector")
        + _early_stopping(args, validation),
        verbose,
        quiet="The classifier has accuracy",
    )
    detector.save(os.path.join(args.output, "detector.keras"))
    stem = os.path.join(args.output, "detector_history")
    _write_history(history.history, stem)
    plot_history(history, save_path=stem + ".png")
    return detector, history.history


def _join_cluster(args):
    """Joins a multi-process JAX run when the flags or launcher ask for it.

    Every process then runs the whole command (saving takes part in JAX
    collectives); the processes other than 0 write into a temporary
    folder, so that --output holds process 0's files only.
    """
    from keras_compattr import distributed

    names = (
        "KERAS_DISTRIBUTION_NUM_PROCESSES",
        "KERAS_DISTRIBUTION_PROCESS_ID",
    )
    if (
        args.coordinator_address is None
        and args.num_processes is None
        and args.process_id is None
        and not any(os.environ.get(name) for name in names)
    ):
        return
    distributed.initialize(
        coordinator_address=args.coordinator_address,
        num_processes=args.num_processes,
        process_id=args.process_id,
    )
    if not distributed.is_chief():
        import tempfile

        args.output = tempfile.mkdtemp(prefix="keras-compattr-process-")


def _train(train_function, model, data, args, callbacks, verbose, quiet):
    """`train_function(model, ...)` on `data`: `(train, validation,
    epochs)`, without the warning that starts with `quiet` (the command
    gives it in its own words). Returns the `History`."""
    train, validation, epochs = data
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", quiet)
        return train_function(
            model,
            train,
            epochs=epochs,
            learning_rate=args.learning_rate,
            validation_data=validation,
            callbacks=callbacks,
            verbose=verbose,
        )


def run(args):
    """Trains with the parsed arguments; returns the histories."""
    import keras

    from keras_compattr.callbacks import BackupAndRestore
    from keras_compattr.models import ComprehensiveAttributionModel
    from keras_compattr.training import first_step_notices
    from keras_compattr.training import fit_verbosity
    from keras_compattr.training import train_comet
    from keras_compattr.visualization import ExplanationMonitor
    from keras_compattr.visualization import plot_explanations
    from keras_compattr.visualization import plot_history

    _check_choice(args.selector, SELECTORS, "--selector")
    _check_choice(args.predictor, PREDICTORS, "--predictor")
    if args.detector is not None:
        check_file(args.detector, "detector file")
    synthetic = is_synthetic(args.dataset)
    default_size = 48 if synthetic else 224
    height, width = image_size(args.image_size) or (default_size,) * 2
    verbose = fit_verbosity(args.verbose)
    _join_cluster(args)
    keras.utils.set_random_seed(args.seed)
    shape = (height, width, 3)

    # The data is checked first: a bad folder leaves no empty --output.
    train, validation, info, validation_note = load_splits(
        args, (height, width)
    )
    os.makedirs(args.output, exist_ok=True)
    num_classes = info["num_classes"]
    echo(
        f"keras-compattr train on the {keras.backend.backend()} backend: "
        f"{args.dataset} ({num_classes} classes, {info['num_examples']} "
        f"training images, {height}x{width} px); validation: "
        f"{validation_note}."
    )

    with open(os.path.join(args.output, "class_names.json"), "w") as f:
        json.dump(list(info["class_names"]), f)

    histories = {}
    detector_path = os.path.join(args.output, "detector.keras")
    backup = os.path.join(args.output, "backup")
    if not args.resume:
        shutil.rmtree(backup, ignore_errors=True)
    elif not os.path.isdir(backup) and not os.path.isfile(detector_path):
        echo(f"--resume: nothing to resume in {args.output}; starting anew.")
    check_data = validation if validation is not None else train
    check_note = "validation" if validation is not None else "training"
    if args.detector is not None:
        echo(f"\n[1/2] Using the detector {args.detector}")
        detector = keras.saving.load_model(args.detector)
    elif args.resume and os.path.isfile(detector_path):
        echo(f"\n[1/2] Resuming with the detector {detector_path}")
        detector = keras.saving.load_model(detector_path)
    else:
        detector, histories["detector"] = _train_detector(
            args, train, validation, shape, num_classes, verbose
        )
    check_detector(
        args,
        detector,
        check_data,
        check_note,
        num_classes,
        trained=args.detector is None,
    )

    echo(f"\n[2/2] Training COMET ({args.epochs} epochs)")
    options = {
        "area_budget": args.area_budget,
        "detector_weight": args.detector_weight,
    }
    if args.hinge_reduction is not None:
        options["hinge_reduction"] = args.hinge_reduction
    if args.no_hardening:
        options["hardening"] = False
    model = ComprehensiveAttributionModel(
        selector=_build_selector(args.selector, shape, args.selector_weights),
        predictor=_build_predictor(
            args.predictor, shape, num_classes, args.predictor_weights
        ),
        detector=detector,
        **options,
    )
    shown_images, shown_labels = shown_examples(check_data, num_classes)
    callbacks = first_step_notices(
        verbose, "COMET (selector, predictor and frozen detector)"
    )
    callbacks.append(BackupAndRestore(backup))
    callbacks += _early_stopping(args, validation)
    if args.monitor_every > 0:
        callbacks.append(
            ExplanationMonitor(
                shown_images,
                every=args.monitor_every,
                path=os.path.join(args.output, "monitor"),
                labels=shown_labels,
                class_names=info["class_names"],
            )
        )
    # `check_detector` has said it, with the command's flags.
    history = _train(
        train_comet,
        model,
        (train, validation, args.epochs),
        args,
        callbacks,
        verbose,
        quiet="The detector has accuracy",
    )
    histories["comet"] = history.history
    model_path = os.path.join(args.output, "comet.keras")
    model.save(model_path)
    _write_history(history.history, os.path.join(args.output, "history"))
    plot_history(
        history,
        area_budget=args.area_budget,
        save_path=os.path.join(args.output, "history.png"),
    )
    plot_explanations(
        shown_images,
        model.explain(shown_images, verbose=0),
        labels=shown_labels,
        predictions=model.predict(shown_images, verbose=0),
        class_names=info["class_names"],
        fill_value=keras.ops.convert_to_numpy(model.fill),
        save_path=os.path.join(args.output, "explanations.png"),
    )
    final = {k: round(float(v[-1]), 4) for k, v in history.history.items()}
    echo("\nLast epoch: " + ", ".join(f"{k} {v}" for k, v in final.items()))
    echo(f"Model:   {os.path.abspath(model_path)}")
    echo(f"Figures: {os.path.abspath(args.output)}")
    return histories
