"""What the commands share: the error they raise, printing, model files."""

import inspect
import json
import os


class CommandError(ValueError):
    """A bad argument or input; printed as one line, exit status 2."""


def echo(*args):
    """Prints at once (`fit`'s lines interleave with the command's)."""
    print(*args, flush=True)


def call_with_options(function, args, **overrides):
    """Calls `function` with the parsed options named as its parameters.

    Args:
        function: a function of keyword arguments, such as
            `keras_compattr.evaluation.run_demo`.
        args: the `argparse.Namespace` of the command.
        **overrides: arguments given instead of the options of that name.

    Returns:
        What `function` returns.
    """
    parameters = inspect.signature(function).parameters
    options = {k: v for k, v in vars(args).items() if k in parameters}
    return function(**{**options, **overrides})


def check_file(path, what):
    """Raises `FileNotFoundError` naming `what` when `path` is no file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} {path!r} not found.")


def load_comet(path):
    """The `ComprehensiveAttributionModel` saved at `path`.

    Loaded by `keras_compattr.models.load_model`, which checks the file
    first; another kind of model is a `CommandError`.
    """
    from keras_compattr.models import load_model

    check_file(path, "model file")
    try:
        return load_model(path)
    except TypeError:
        raise CommandError(
            f"{path!r} holds another kind of model, not a "
            "ComprehensiveAttributionModel (saved by `keras-compattr train` "
            "or `model.save`)."
        ) from None


def class_names_near(model_path, num_classes):
    """The class names in `class_names.json` beside the model, or `None`.

    `keras-compattr train` writes that file beside `comet.keras`. A file
    naming another number of classes than the model has belongs to
    another run: a `CommandError`.
    """
    path = os.path.join(os.path.dirname(model_path), "class_names.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            names = json.load(f)
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot read {path!r}: {error}.") from None
    if not isinstance(names, list) or len(names) != num_classes:
        count = len(names) if isinstance(names, list) else "no"
        raise CommandError(
            f"{path!r} names {count} classes, but the model {model_path!r} "
            f"has {num_classes}: the file belongs to another run. Put the "
            "model's own class_names.json beside it, or delete the file."
        )
    return [str(name) for name in names]


def _listed(names, limit=6):
    shown = ", ".join(map(str, names[:limit]))
    return shown + (", ..." if len(names) > limit else "")


def check_model_classes(model_path, num_classes, dataset, class_names):
    """Raises `CommandError` unless the model's classes are the data's.

    Args:
        model_path: str, the model file (`class_names.json` is read beside
            it).
        num_classes: int, the model's number of classes.
        dataset: str, the `--dataset` value, for messages.
        class_names: list of str, the data set's classes.
    """
    if len(class_names) != num_classes:
        raise CommandError(
            f"The model {model_path!r} has {num_classes} classes, but "
            f"{dataset} has {len(class_names)} ({_listed(class_names)}): "
            "evaluate a model on the data set it was trained on."
        )
    saved = class_names_near(model_path, num_classes)
    if saved is not None and saved != [str(n) for n in class_names]:
        raise CommandError(
            f"The model {model_path!r} was trained on the classes "
            f"{_listed(saved)} (its class_names.json), but {dataset} has "
            f"{_listed(class_names)}: evaluate a model on the data set it "
            "was trained on, with the same class folders."
        )
