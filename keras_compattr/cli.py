"""The `keras-compattr` command line.

Subcommands: `demo`, `train`, `explain`, `evaluate` and `benchmark`. Each
runs on the backend named by `KERAS_BACKEND` (TensorFlow by default), takes
`--seed` and `--config FILE` (JSON, or YAML when PyYAML is installed), and
exits with status 2 and one line on stderr on a bad argument or a missing
file.
"""

import argparse
import json
import os
import sys
import textwrap
import time

from keras_compattr import _environment

_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# Recipe names of `keras_compattr.models.RECIPES`, plus the small networks.
_RECIPES = (
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "resnet18",
    "resnet50",
    "efficientnet_v2_b0",
)
_SELECTORS = ("tiny", *_RECIPES)
_PREDICTORS = ("small", *_RECIPES)
_EXPLAINERS = ("grad_cam", "saliency", "integrated_gradients", "rise")


class CommandError(ValueError):
    """A bad argument or input; printed as one line, exit status 2."""


def _print(*args):
    print(*args, flush=True)


def _fit_verbose(verbose):
    """Keras verbosity of `fit`: progress bars (1) only on a terminal.

    Written to a file or a pipe, Keras' bars are ANSI escapes and carriage
    returns; there, 1 becomes 2 (one line per epoch).
    """
    isatty = getattr(sys.stdout, "isatty", None)
    if verbose == 1 and not (isatty is not None and isatty()):
        return 2
    return verbose


def _compile_notices(verbose, what):
    """A `FirstStepNotice` for `fit`'s silent first step (none if quiet)."""
    if not verbose:
        return []
    from keras_compattr.callbacks import FirstStepNotice

    return [
        FirstStepNotice(
            f"Building and compiling the training step of {what} "
            "(the first step takes longest) ...",
            print_fn=_print,
        )
    ]


# === demo ===


def run_demo(
    output="compattr_demo",
    image_size=48,
    num_classes=4,
    train_images=1600,
    test_images=500,
    detector_epochs=8,
    epochs=10,
    batch_size=64,
    hinge_reduction="sample",
    detector_weight=4.0,
    area_budget=0.2,
    learning_rate=2e-3,
    seed=0,
    verbose=2,
):
    """Trains a detector, then COMET, on the embedded two-part data.

    Prints the detector's and COMET's test accuracy, the mean mask area, how
    often both evidence parts are covered, and PxAP; writes a PNG grid of
    explanations, the model (`.keras`) and the figures (`metrics.json`) to
    `output`.

    Args:
        output: str, output folder (created if needed).
        image_size: int, image height and width.
        num_classes: int.
        train_images: int, size of the training split.
        test_images: int, size of the test split.
        detector_epochs: int, epochs of the detector's training.
        epochs: int, epochs of COMET's training.
        batch_size: int.
        hinge_reduction: `"batch"` or `"sample"`.
        detector_weight: float, weight of the detector term.
        area_budget: float, mask area allowed for free. The evidence covers
            about 9% of these images (17% with the distractor tiles), far
            less than the objects the reference's 0.6 was set for.
        learning_rate: float, AdamW learning rate of COMET.
        seed: int, seed of data and initialisation.
        verbose: Keras verbosity of `fit`.

    Returns:
        A dict of the printed figures.

    Example:

    ```python
    from keras_compattr.cli import run_demo

    # A tiny budget (seconds): it only shows the outputs. The defaults
    # train for about 2 minutes and give meaningful numbers.
    results = run_demo(
        output="compattr_demo",
        image_size=32,
        train_images=64,
        test_images=16,
        detector_epochs=1,
        epochs=1,
        verbose=0,
    )
    results["comet_accuracy"], results["both_parts_covered"]
    ```
    """
    import keras

    import keras_compattr as kca
    from keras_compattr.evaluation import small_classifier
    from keras_compattr.evaluation import small_comet
    from keras_compattr.evaluation import train_classifier
    from keras_compattr.evaluation import train_comet
    from keras_compattr.visualization import plot_explanations

    start = time.time()
    verbose = _fit_verbose(verbose)
    keras.utils.set_random_seed(seed)
    os.makedirs(output, exist_ok=True)
    shape = (image_size, image_size, 3)
    _print(
        f"keras_compattr demo on the {keras.backend.backend()} backend: "
        f"{num_classes} classes, two evidence parts per image, "
        f"{image_size}x{image_size} px."
    )
    train = kca.datasets.synthetic(
        train_images, image_size, num_classes, "two_part", seed=seed
    )
    test = kca.datasets.synthetic(
        test_images, image_size, num_classes, "two_part", seed=seed + 1
    )

    _print(
        "\n[1/2] Training the detector (a plain classifier, "
        f"{detector_epochs} epochs)"
    )
    detector = small_classifier(shape, num_classes, name="detector")
    train_classifier(
        detector,
        train["images"],
        train["labels"],
        epochs=detector_epochs,
        batch_size=batch_size,
        validation_data=(test["images"], test["labels"]),
        callbacks=_compile_notices(verbose, "the detector"),
        verbose=verbose,
    )
    detector_accuracy = detector.evaluate(
        test["images"], test["labels"], verbose=0, return_dict=True
    )["accuracy"]

    _print(f"\n[2/2] Training COMET: selector + predictor ({epochs} epochs)")
    model = small_comet(
        shape,
        num_classes,
        detector,
        detector_weight=detector_weight,
        hinge_reduction=hinge_reduction,
        area_budget=area_budget,
    )
    train_comet(
        model,
        train["images"],
        train["labels"],
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        validation_data=(test["images"], test["labels"]),
        callbacks=_compile_notices(
            verbose, "COMET (selector, predictor and frozen detector)"
        ),
        verbose=verbose,
    )
    logs = model.evaluate(
        test["images"], test["labels"], verbose=0, return_dict=True
    )
    masks = model.explain(test["images"], verbose=0)
    covered = kca.metrics.coverage(masks, test["part_masks"])
    results = {
        "backend": keras.backend.backend(),
        "detector_accuracy": float(detector_accuracy),
        "comet_accuracy": float(logs["accuracy"]),
        "masked_out_detector_accuracy": float(logs["masked_out_accuracy"]),
        "mean_mask_area": float(masks.mean()),
        "ground_truth_area": float(test["masks"].mean()),
        "both_parts_covered": covered["all_parts_covered"],
        "part_coverage": covered["part_coverage"],
        "pxap": kca.metrics.pxap(masks, test["masks"]),
        "attribution_mass": kca.metrics.attribution_mass(masks, test["masks"]),
        "wall_time_s": round(time.time() - start, 1),
    }

    probabilities = model.predict(test["images"][:6], verbose=0)
    figure_path = os.path.join(output, "explanations.png")
    plot_explanations(
        test["images"][:6],
        masks[:6],
        labels=test["labels"][:6],
        predictions=probabilities,
        class_names=test["class_names"],
        fill_value=keras.ops.convert_to_numpy(model.fill),
        gt_masks=test["masks"][:6],  # the evidence; other tiles distract
        save_path=figure_path,
    )
    model_path = os.path.join(output, "comet.keras")
    model.save(model_path)
    with open(os.path.join(output, "metrics.json"), "w") as f:
        json.dump(results, f, indent=2)

    _print("\nResults on the test split")
    _print(f"  detector (black box) accuracy      {detector_accuracy:7.1%}")
    _print(
        f"  COMET accuracy, P(masked-in)       {results['comet_accuracy']:7.1%}"
    )
    _print(
        "  detector accuracy on masked-out    "
        f"{results['masked_out_detector_accuracy']:7.1%}  (chance "
        f"{1 / num_classes:.0%})"
    )
    _print(
        f"  mean mask area                     {results['mean_mask_area']:7.1%}"
        f"  (evidence covers {results['ground_truth_area']:.1%})"
    )
    _print(
        "  both parts covered                 "
        f"{results['both_parts_covered']:7.1%}"
    )
    _print(f"  PxAP                               {results['pxap']:7.1f}")
    _print(
        f"  wall time                          {results['wall_time_s']:6.0f} s"
    )
    _print(f"\nFigure: {os.path.abspath(figure_path)}")
    _print(f"Model:  {os.path.abspath(model_path)}")
    return results


def _demo(args):
    run_demo(
        output=args.output,
        epochs=args.epochs,
        detector_epochs=args.detector_epochs,
        train_images=args.train_images,
        test_images=args.test_images,
        image_size=args.image_size,
        batch_size=args.batch_size,
        hinge_reduction=args.hinge_reduction,
        area_budget=args.area_budget,
        seed=args.seed,
        verbose=args.verbose,
    )


# === Shared helpers ===


def _is_synthetic(dataset):
    return dataset.split("/")[0] == "synthetic"


def _check_file(path, what):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} {path!r} not found.")


def _load_comet(path):
    import keras

    import keras_compattr.models  # noqa: F401  (registers the serialisables)

    _check_file(path, "model file")
    model = keras.saving.load_model(path)
    if not callable(getattr(model, "explain", None)):
        raise CommandError(
            f"{path!r} holds a {type(model).__name__}, not a "
            "ComprehensiveAttributionModel (saved by `keras-compattr train` "
            "or `model.save`)."
        )
    return model


def _class_names_near(model_path, num_classes):
    path = os.path.join(os.path.dirname(model_path), "class_names.json")
    if os.path.isfile(path):
        with open(path) as f:
            names = json.load(f)
        if len(names) == num_classes:
            return names
    return None


def _validation_split(dataset):
    """The split to validate on.

    A folder without a validation folder gets one held out of its training
    images by `keras_compattr.datasets.load`.
    """
    if _is_synthetic(dataset):
        return "test"
    if dataset.startswith("folder:"):
        root = dataset[len("folder:") :]
        return next(
            (
                split
                for split in ("val", "validation")
                if os.path.isdir(os.path.join(root, split))
            ),
            "val",
        )
    return "validation" if dataset == "imagenette" else "test"


def _split_note(split, info):
    """Which images a split holds, in words: held out or not."""
    if info.get("held_out"):
        return "held out of the training images by file name, never trained on"
    if split.strip().startswith("train"):
        return "the training images, not held out"
    return f"the data set's own {split!r} split, not trained on"


def _image_size_value(text):
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


def _image_size(value):
    """`(height, width)` of `--image-size` (or a config value), or `None`."""
    if value is None:
        return None
    values = value if isinstance(value, (list, tuple)) else [value]
    sizes = []
    for item in values:
        if isinstance(item, str):
            try:
                item = _image_size_value(item)
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


def _load_arrays(
    dataset,
    split,
    image_size,
    num_images,
    seed,
    data_dir=None,
    download=None,
):
    """Images, labels and any ground truth of a split, as NumPy arrays.

    Also `"num_examples"` (the split's size) and `"note"` (which images
    these are: held out or not).
    """
    import numpy as np

    height, width = image_size
    if _is_synthetic(dataset):
        from keras_compattr.datasets import synthetic

        variant = dataset.split("/", 1)[1] if "/" in dataset else "two_part"
        if split not in ("train", "test"):
            raise CommandError(
                f"Synthetic data has splits 'train' and 'test', not {split!r}."
            )
        if height != width:
            raise CommandError(
                f"Synthetic data is square; the model takes {height}x{width}."
            )
        data = synthetic(
            num_images,
            height,
            variant=variant,
            background_swap=True,
            seed=seed + (1 if split == "test" else 0),
        )
        data["num_examples"] = num_images
        data["note"] = _split_note(split, {}) + (
            f" (generated with seed {seed + 1})" if split == "test" else ""
        )
        return data
    from keras_compattr.datasets import load

    source = {"data_dir": data_dir, "download": download}
    _, info = load(
        dataset,
        split=split,
        image_size=image_size,
        **source,
        **_info_only(),
    )
    ds = load(
        dataset,
        split=split,
        image_size=image_size,
        batch_size=None,
        with_masks=info["has_masks"],
        shuffle=False,
        seed=seed,
        **source,
    ).take(num_images)
    columns = list(zip(*[tuple(np.asarray(t) for t in e) for e in ds]))
    if not columns:
        raise CommandError(f"{dataset!r} split {split!r} holds no image.")
    data = {
        "images": np.stack(columns[0]).astype("float32"),
        "labels": np.asarray(columns[1], "int32"),
        "class_names": info["class_names"],
        "num_examples": info["num_examples"],
        "note": _split_note(split, info),
    }
    if len(columns) > 2:
        data["masks"] = np.stack(columns[2]).astype("float32")
    return data


def _info_only():
    return {"batch_size": 1, "return_info": True, "shuffle": False}


def _weights(value):
    return None if value == "none" else value


def _build_selector(choice, shape, weights):
    import keras

    from keras_compattr.models import as_selector
    from keras_compattr.models import build_selector

    if choice.endswith(".keras"):
        _check_file(choice, "selector file")
        return keras.saving.load_model(choice)
    if choice == "tiny":
        return build_selector(shape, backbone="tiny", width=8)
    return as_selector(choice, image_shape=shape, weights=_weights(weights))


def _build_predictor(choice, shape, num_classes, weights, name="predictor"):
    import keras

    from keras_compattr.evaluation import small_classifier
    from keras_compattr.models import as_predictor

    if choice.endswith(".keras"):
        _check_file(choice, "predictor file")
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


def _check_choice(value, choices, flag):
    if value not in choices and not value.endswith(".keras"):
        raise CommandError(
            f"{flag} must be one of {', '.join(choices)} or a .keras file. "
            f"Received {value!r}."
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


# === train ===


def _train(args):
    import keras
    import numpy as np

    from keras_compattr.datasets import load
    from keras_compattr.evaluation import train_classifier
    from keras_compattr.evaluation import train_comet
    from keras_compattr.models import ComprehensiveAttributionModel
    from keras_compattr.visualization import ExplanationMonitor
    from keras_compattr.visualization import plot_explanations
    from keras_compattr.visualization import plot_history

    _check_choice(args.selector, _SELECTORS, "--selector")
    _check_choice(args.predictor, _PREDICTORS, "--predictor")
    if args.detector is not None:
        _check_file(args.detector, "detector file")
    synthetic = _is_synthetic(args.dataset)
    default_size = 48 if synthetic else 224
    image_size = _image_size(args.image_size) or (default_size, default_size)
    height, width = image_size
    area_budget = args.area_budget or (0.2 if synthetic else 0.6)
    verbose = _fit_verbose(args.verbose)
    keras.utils.set_random_seed(args.seed)
    os.makedirs(args.output, exist_ok=True)
    shape = (height, width, 3)

    sizes = {}
    if synthetic:
        sizes = {"train": args.train_images, "test": args.test_images}
    source = {"data_dir": args.data_dir, "download": args.download}
    train, info = load(
        args.dataset,
        split="train",
        image_size=image_size,
        batch_size=args.batch_size,
        augment=args.augment,
        seed=args.seed,
        return_info=True,
        num_images=sizes.get("train"),
        **source,
    )
    num_classes = info["num_classes"]
    validation_split = args.validation_split or _validation_split(args.dataset)
    validation, validation_info = None, None
    try:
        validation, validation_info = load(
            args.dataset,
            split=validation_split,
            image_size=image_size,
            batch_size=args.batch_size,
            seed=args.seed,
            num_images=sizes.get(validation_split),
            return_info=True,
            **source,
        )
    except ValueError as error:
        if args.validation_split or not args.dataset.startswith("folder:"):
            raise
        # A folder too small to hold images out: train, and say so.
        validation_note = f"none ({' '.join(str(error).split())})"
    if validation_info is not None:
        validation_note = (
            f"{validation_split!r}, {validation_info['num_examples']} "
            f"images, {_split_note(validation_split, validation_info)}"
        )
    _print(
        f"keras-compattr train on the {keras.backend.backend()} backend: "
        f"{args.dataset} ({num_classes} classes, {info['num_examples']} "
        f"training images, {height}x{width} px); validation: "
        f"{validation_note}."
    )
    with open(os.path.join(args.output, "class_names.json"), "w") as f:
        json.dump(list(info["class_names"]), f)

    histories = {}
    if args.detector is None:
        _print(f"\n[1/2] Training the detector ({args.detector_epochs} epochs)")
        detector = _build_predictor(
            args.predictor,
            shape,
            num_classes,
            args.predictor_weights,
            name="detector",
        )
        history = train_classifier(
            detector,
            train,
            epochs=args.detector_epochs,
            learning_rate=args.learning_rate,
            validation_data=validation,
            callbacks=_compile_notices(verbose, "the detector"),
            verbose=verbose,
        )
        histories["detector"] = history.history
        detector.save(os.path.join(args.output, "detector.keras"))
        _write_history(
            history.history, os.path.join(args.output, "detector_history")
        )
        plot_history(
            history, save_path=os.path.join(args.output, "detector_history.png")
        )
    else:
        _print(f"\n[1/2] Using the detector {args.detector}")
        detector = keras.saving.load_model(args.detector)

    _print(f"\n[2/2] Training COMET ({args.epochs} epochs)")
    options = {
        "area_budget": area_budget,
        "detector_weight": args.detector_weight,
    }
    if args.hinge_reduction is not None:
        options["hinge_reduction"] = args.hinge_reduction
    model = ComprehensiveAttributionModel(
        selector=_build_selector(args.selector, shape, args.selector_weights),
        predictor=_build_predictor(
            args.predictor, shape, num_classes, args.predictor_weights
        ),
        detector=detector,
        **options,
    )
    shown = next(iter(validation if validation is not None else train))
    shown_images = np.asarray(shown[0])[:6]
    shown_labels = np.asarray(shown[1])[:6]
    callbacks = _compile_notices(
        verbose, "COMET (selector, predictor and frozen detector)"
    )
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
    history = train_comet(
        model,
        train,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        validation_data=validation,
        callbacks=callbacks,
        verbose=verbose,
    )
    histories["comet"] = history.history
    model_path = os.path.join(args.output, "comet.keras")
    model.save(model_path)
    _write_history(history.history, os.path.join(args.output, "history"))
    plot_history(
        history,
        area_budget=area_budget,
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
    _print("\nLast epoch: " + ", ".join(f"{k} {v}" for k, v in final.items()))
    _print(f"Model:   {os.path.abspath(model_path)}")
    _print(f"Figures: {os.path.abspath(args.output)}")
    return histories


# === explain ===


def _image_paths(inputs):
    paths = []
    for item in inputs:
        if os.path.isdir(item):
            for root, dirs, files in os.walk(item):
                dirs.sort()
                paths += [
                    os.path.join(root, f)
                    for f in sorted(files)
                    if f.lower().endswith(_IMAGE_EXTENSIONS)
                ]
        elif os.path.isfile(item):
            paths.append(item)
        else:
            raise FileNotFoundError(f"image {item!r} not found.")
    if not paths:
        raise CommandError(
            f"No image ({', '.join(_IMAGE_EXTENSIONS)}) in {inputs}."
        )
    return paths


def _read_images(paths, size):
    import keras
    import numpy as np

    images = []
    for path in paths:
        try:
            image = keras.utils.load_img(path, target_size=size)
        except Exception as error:  # PIL raises many kinds
            raise CommandError(f"cannot read image {path!r}: {error}") from None
        images.append(keras.utils.img_to_array(image, dtype="float32") / 255.0)
    return np.stack(images)


def _explain(args):
    import keras
    import numpy as np

    from keras_compattr.visualization import plot_explanations

    model = _load_comet(args.model)
    paths = _image_paths(args.images)
    images = _read_images(paths, model.image_shape[:2])
    masks = model.explain(images, batch_size=args.batch_size, verbose=0)
    probabilities = model.predict(images, batch_size=args.batch_size, verbose=0)
    class_names = _class_names_near(args.model, model.num_classes)
    fill = keras.ops.convert_to_numpy(model.fill)
    os.makedirs(args.output, exist_ok=True)
    summary, used = [], set()
    for index, path in enumerate(paths):
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in used:
            stem = f"{stem}_{index}"
        used.add(stem)
        np.save(os.path.join(args.output, f"{stem}_mask.npy"), masks[index])
        plot_explanations(
            images[index : index + 1],
            masks[index : index + 1],
            predictions=probabilities[index : index + 1],
            class_names=class_names,
            fill_value=fill,
            title=os.path.basename(path),
            save_path=os.path.join(args.output, f"{stem}_explanation.png"),
        )
        predicted = int(probabilities[index].argmax())
        summary.append(
            {
                "image": path,
                "predicted_class": predicted,
                "class_name": None
                if class_names is None
                else class_names[predicted],
                "confidence": round(float(probabilities[index].max()), 4),
                "mask_area": round(float(masks[index].mean()), 4),
                "mask": f"{stem}_mask.npy",
                "overlay": f"{stem}_explanation.png",
            }
        )
        name = summary[-1]["class_name"] or predicted
        _print(
            f"{path}: {name} ({summary[-1]['confidence']:.2f}), mask area "
            f"{summary[-1]['mask_area']:.2f}"
        )
    with open(os.path.join(args.output, "explanations.json"), "w") as f:
        json.dump(summary, f, indent=2)
    _print(f"Wrote {len(paths)} overlays and masks to {args.output}")
    return summary


# === evaluate ===


def _evaluate(args):
    import keras

    from keras_compattr import explainers
    from keras_compattr.evaluation import CompiledClassifier
    from keras_compattr.evaluation import evaluate_explanations
    from keras_compattr.evaluation import format_table

    model = _load_comet(args.model)
    names = (
        [n for n in args.explainers.split(",") if n] if args.explainers else []
    )
    for name in names:
        if name not in _EXPLAINERS:
            raise CommandError(
                f"--explainers takes {', '.join(_EXPLAINERS)}; got {name!r}."
            )
    evaluator = model.detector
    if args.evaluator is not None:
        _check_file(args.evaluator, "evaluator file")
        evaluator = keras.saving.load_model(args.evaluator)
    fast_evaluator = CompiledClassifier(evaluator)
    keras.utils.set_random_seed(args.seed)
    data = _load_arrays(
        args.dataset,
        args.split,
        tuple(model.image_shape[:2]),
        args.max_images,
        args.seed,
        data_dir=args.data_dir,
        download=args.download,
    )
    images, labels = data["images"], data["labels"]
    if labels.max() >= model.num_classes:
        raise CommandError(
            f"{args.dataset!r} has labels up to {labels.max()}, but the "
            f"model has {model.num_classes} classes."
        )
    total = data.get("num_examples")
    _print(
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
    _print("\n" + table)
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        with open(os.path.join(args.output, "evaluation.json"), "w") as f:
            json.dump(results, f, indent=2)
        with open(os.path.join(args.output, "evaluation.md"), "w") as f:
            f.write(table + "\n")
        _print(f"\nWrote {args.output}")
    return results


# === benchmark ===


def _area_budget(value):
    """`--area-budget`: a share of the image, or 'auto'."""
    if value == "auto":
        return value
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a share of the image in (0, 1] or 'auto'; got {value!r}"
        ) from None


def _benchmark(args):
    from keras_compattr.evaluation import run_benchmark

    return run_benchmark(
        output=args.output,
        quick=args.quick,
        seed=args.seed,
        seeds=args.seeds,
        area_budget=args.area_budget,
        variant=args.variant,
        verbose=1 if args.verbose else 0,
    )


# === Parser ===


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows defaults (except None / False) and keeps the epilog's lines."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, False, "", argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


def _describe(text):
    return textwrap.fill(text, 78)


def _common(parser, verbose_default=1):
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of data and initialisation"
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="JSON (or YAML, with PyYAML installed) file of option values, "
        'keyed by option name (e.g. {"epochs": 5}); flags on the command '
        "line win",
    )
    parser.add_argument(
        "--verbose",
        type=int,
        default=verbose_default,
        choices=(0, 1, 2),
        help="Keras verbosity: 0 silent, 1 progress bars on a terminal (one "
        "line per epoch when output goes to a file or pipe), 2 one line per "
        "epoch",
    )


def _data_source(parser):
    """`--data-dir` and `--download` of the commands that load data sets."""
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="TFDS data folder; default: TFDS_DATA_DIR or "
        "~/tensorflow_datasets",
    )
    parser.add_argument(
        "--download",
        action=argparse.BooleanOptionalAction,
        help="download and prepare a missing TFDS data set (--no-download: "
        "never); default: only if its download host answers",
    )


def _add_demo(commands):
    demo = commands.add_parser(
        "demo",
        help="train on the embedded data and save explanations",
        formatter_class=_Formatter,
        description=_describe(
            "Trains a detector, then COMET, on the embedded synthetic "
            "two-part data; prints accuracy, mask area and part coverage; "
            "saves a PNG of explanations and the model."
        ),
    )
    demo.add_argument("--output", default="compattr_demo", help="output folder")
    demo.add_argument("--epochs", type=int, default=10, help="COMET epochs")
    demo.add_argument(
        "--detector-epochs", type=int, default=8, help="detector epochs"
    )
    demo.add_argument(
        "--train-images", type=int, default=1600, help="training images"
    )
    demo.add_argument(
        "--hinge-reduction",
        choices=("batch", "sample"),
        default="sample",
        help="hinge on batch-mean losses or per image",
    )
    demo.add_argument(
        "--area-budget",
        type=_area_budget,
        default=0.2,
        help="mask area budget t, or 'auto' (smallest complete mask)",
    )
    demo.add_argument("--image-size", type=int, default=48, help="pixels")
    demo.add_argument("--test-images", type=int, default=500, help="images")
    demo.add_argument("--batch-size", type=int, default=64, help="images")
    _common(demo, verbose_default=2)
    demo.set_defaults(handler=_demo)
    return demo


def _add_train(commands):
    train = commands.add_parser(
        "train",
        help="train a detector (or take one) and COMET on a data set",
        formatter_class=_Formatter,
        description=_describe(
            "Trains the detector as a plain classifier (unless --detector "
            "gives a trained one), then COMET. Writes to --output: "
            "comet.keras, detector.keras, history.json/.csv/.png (and "
            "detector_history.*), explanations.png, "
            "monitor/epoch_NNN.png and class_names.json."
        ),
        epilog=(
            "examples:\n"
            "  keras-compattr train --dataset synthetic --epochs 10\n"
            "  keras-compattr train --dataset folder:photos --image-size 128 "
            "\\\n      --selector mobilenet_v3_small --predictor resnet18\n"
            "  keras-compattr train --dataset oxford_iiit_pet "
            "--detector pets.keras"
        ),
    )
    train.add_argument(
        "--dataset",
        default="synthetic",
        help="synthetic, synthetic/one_part, oxford_iiit_pet, "
        "caltech_birds2011, imagenette, stl10, cifar10 or folder:PATH "
        "(one sub-folder of images per class)",
    )
    train.add_argument(
        "--selector",
        default="tiny",
        help=f"tiny (a five-layer conv net), {', '.join(_RECIPES)} (see the "
        "backbones guide), or a .keras selector model",
    )
    train.add_argument(
        "--selector-weights",
        choices=("none", "imagenet"),
        default="none",
        help="initial weights of a recipe selector (imagenet needs network "
        "access, or weights cached by Keras / KerasHub)",
    )
    train.add_argument(
        "--predictor",
        default="small",
        help=f"small (a narrow ResNet), {', '.join(_RECIPES)}, or a .keras "
        "classifier; also the architecture of a detector trained here",
    )
    train.add_argument(
        "--predictor-weights",
        choices=("none", "imagenet"),
        default="none",
        help="initial weights of a recipe predictor (and detector)",
    )
    train.add_argument(
        "--detector",
        metavar="MODEL.keras",
        help="a trained classifier to use as the detector; default: train one",
    )
    train.add_argument("--epochs", type=int, default=10, help="COMET epochs")
    train.add_argument(
        "--detector-epochs", type=int, default=8, help="detector epochs"
    )
    train.add_argument("--batch-size", type=int, default=64, help="images")
    train.add_argument(
        "--learning-rate",
        type=float,
        default=2e-3,
        help="initial learning rate (cosine decay to 0)",
    )
    train.add_argument(
        "--image-size",
        type=_image_size_value,
        nargs="+",
        metavar="PX",
        help="image size in pixels: PX, H W or HxW; default 48 for synthetic "
        "data, 224 otherwise",
    )
    train.add_argument(
        "--area-budget",
        type=_area_budget,
        help="mask area budget t, or 'auto' (smallest complete mask); "
        "default 0.2 for synthetic data, 0.6 (the paper's) otherwise",
    )
    train.add_argument(
        "--hinge-reduction",
        choices=("batch", "sample"),
        help="hinge on batch-mean losses or per image; default: the model's",
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
    train.add_argument(
        "--train-images",
        type=int,
        default=1600,
        help="training images (synthetic data only)",
    )
    train.add_argument(
        "--test-images",
        type=int,
        default=500,
        help="validation images (synthetic data only)",
    )
    train.add_argument(
        "--monitor-every",
        type=int,
        default=1,
        help="save the masks of 6 validation images every N epochs (0: off)",
    )
    train.add_argument(
        "--output", default="compattr_train", help="output folder"
    )
    _data_source(train)
    _common(train)
    train.set_defaults(handler=_train)
    return train


def _add_explain(commands):
    explain = commands.add_parser(
        "explain",
        help="write mask overlays (PNG) and masks (.npy) of images",
        formatter_class=_Formatter,
        description=_describe(
            "Explains image files (or every image in the given folders) "
            "with a trained COMET model. Writes <name>_explanation.png (the "
            "image, mask, masked-in and masked-out image, predicted class) "
            "and <name>_mask.npy (H x W floats in [0, 1]) per image, and "
            "explanations.json."
        ),
        epilog="example:\n  keras-compattr explain --model "
        "compattr_train/comet.keras photos/*.jpg --output explained",
    )
    explain.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files or folders"
    )
    explain.add_argument(
        "--model", metavar="MODEL.keras", help="trained COMET model (required)"
    )
    explain.add_argument(
        "--output", default="compattr_explanations", help="output folder"
    )
    explain.add_argument("--batch-size", type=int, default=32, help="images")
    _common(explain)
    explain.set_defaults(handler=_explain)
    return explain


def _add_evaluate(commands):
    evaluate = commands.add_parser(
        "evaluate",
        help="print the metrics table of a trained model on a data set",
        formatter_class=_Formatter,
        description=_describe(
            "Scores a trained COMET model (and optionally post-hoc "
            "explainers of its detector) with the metrics of "
            "keras_compattr.metrics: accuracy, PxAP, coverage, pointing "
            "game, fidelity, robustness. Localisation metrics need a data "
            "set with masks; coverage and background-swap robustness need "
            "the synthetic data."
        ),
        epilog="example:\n  keras-compattr evaluate --model "
        "compattr_train/comet.keras --dataset synthetic "
        "--explainers grad_cam,saliency",
    )
    evaluate.add_argument(
        "--model", metavar="MODEL.keras", help="trained COMET model (required)"
    )
    evaluate.add_argument(
        "--dataset", default="synthetic", help="as in `train --dataset`"
    )
    evaluate.add_argument(
        "--split",
        default="test",
        help="split to score (for a folder without a test folder: the test "
        "share held out of its training images)",
    )
    evaluate.add_argument(
        "--max-images", type=int, default=500, help="images scored"
    )
    evaluate.add_argument(
        "--explainers",
        default="",
        help=f"comma-separated post-hoc explainers of the detector to "
        f"compare: {', '.join(_EXPLAINERS)}",
    )
    evaluate.add_argument(
        "--evaluator",
        metavar="MODEL.keras",
        help="classifier that scores the fidelity metrics; default: the "
        "model's detector",
    )
    evaluate.add_argument(
        "--deletion-steps", type=int, default=20, help="curve steps"
    )
    evaluate.add_argument("--batch-size", type=int, default=64, help="images")
    evaluate.add_argument(
        "--output", help="folder for evaluation.json and evaluation.md"
    )
    _data_source(evaluate)
    _common(evaluate)
    evaluate.set_defaults(handler=_evaluate)
    return evaluate


def _add_benchmark(commands):
    benchmark = commands.add_parser(
        "benchmark",
        help="COMET vs. its ablation and post-hoc maps on the embedded data",
        formatter_class=_Formatter,
        description=_describe(
            "Trains the black box, COMET (batch and per-sample hinge) and "
            "the no-detector ablation on the embedded two-part data, "
            "explains the test set with them and with Grad-CAM, Saliency, "
            "IntegratedGradients and RISE, and prints one table of every "
            "metric. Writes benchmark.json, benchmark.md and figures. The "
            "full budget takes about 30 minutes on a 2-core CPU."
        ),
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
    benchmark.add_argument(
        "--area-budget",
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
        "--output", default="compattr_benchmark", help="output folder"
    )
    _common(benchmark)
    benchmark.set_defaults(handler=_benchmark)
    return benchmark


def build_parser():
    """The argument parser of `keras-compattr`.

    Returns:
        An `argparse.ArgumentParser`; `parser.commands` maps each
        subcommand name to its parser.
    """
    parser = argparse.ArgumentParser(
        prog="keras-compattr",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_describe(
            "Inherently explainable image classification (COMET) in Keras 3. "
            "The backend comes from KERAS_BACKEND (tensorflow or jax)."
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
    parser.commands = {
        "demo": _add_demo(commands),
        "train": _add_train(commands),
        "explain": _add_explain(commands),
        "evaluate": _add_evaluate(commands),
        "benchmark": _add_benchmark(commands),
    }
    return parser


def _read_config(path):
    _check_file(path, "config file")
    with open(path) as f:
        text = f.read()
    if path.lower().endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise CommandError(
                f"{path!r} is YAML, which needs PyYAML (`pip install "
                "pyyaml`); or write the config as JSON."
            ) from None
        config = yaml.safe_load(text)
    else:
        try:
            config = json.loads(text)
        except json.JSONDecodeError as error:
            raise CommandError(f"{path!r} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise CommandError(f"{path!r} must hold a mapping of option values.")
    return config


def _apply_config(parser, args, argv):
    """Re-parses `argv` with the config file's values as defaults."""
    config = _read_config(args.config)
    command = parser.commands[args.command]
    actions = {
        action.dest: action
        for action in command._actions
        if action.dest not in ("help", "config")
    }
    defaults = {}
    for key, value in config.items():
        dest = str(key).replace("-", "_")
        if dest not in actions or not actions[dest].option_strings:
            known = sorted(d for d, a in actions.items() if a.option_strings)
            raise CommandError(
                f"{args.config!r}: unknown option {key!r} for "
                f"`{args.command}`; known: {', '.join(known)}."
            )
        choices = actions[dest].choices
        if choices is not None and value not in choices:
            raise CommandError(
                f"{args.config!r}: {key} must be one of {list(choices)}; "
                f"got {value!r}."
            )
        defaults[dest] = value
    command.set_defaults(**defaults)
    return parser.parse_args(argv)


def _check_arguments(args):
    for name in ("epochs", "detector_epochs", "batch_size", "max_images"):
        value = getattr(args, name, None)
        if value is not None and value < (0 if "epochs" in name else 1):
            flag = "--" + name.replace("_", "-")
            raise CommandError(f"{flag} must be positive; got {value}.")
    if getattr(args, "area_budget", None) is not None:
        if args.area_budget != "auto" and not 0.0 < args.area_budget <= 1.0:
            raise CommandError(
                f"--area-budget must be in (0, 1]; got {args.area_budget}."
            )
    if args.command in ("explain", "evaluate") and not args.model:
        raise CommandError(f"`{args.command}` needs --model MODEL.keras.")


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
    shape = (32, 32, 3)
    kca.ComprehensiveAttributionModel(
        selector=kca.models.build_selector(shape, backbone="tiny", width=4),
        predictor=kca.models.build_classifier(shape, 4, widths=(4, 8)),
        detector=kca.models.build_classifier(shape, 4, widths=(4, 8)),
    ).save("comet.keras")
    keras.utils.save_img("photo.png", np.random.rand(*shape))

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
    try:
        if args.config:
            args = _apply_config(parser, args, argv)
        _check_arguments(args)
        # Only now, with the arguments known good: Keras, TensorFlow and
        # their start-up lines (silenced unless TF_CPP_MIN_LOG_LEVEL is set).
        _environment.import_backend_quietly()
        args.handler(args)
    except (ValueError, FileNotFoundError) as error:
        # Advice worded for the command line where the error has it.
        text = getattr(error, "cli_message", None) or str(error)
        message = " ".join(text.split())
        print(f"keras-compattr: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
