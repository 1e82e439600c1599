"""What the commands share: the error they raise, printing, model files."""

import json
import os


class CommandError(ValueError):
    """A bad argument or input; printed as one line, exit status 2."""


def echo(*args):
    """Prints at once (`fit`'s lines interleave with the command's)."""
    print(*args, flush=True)


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
    """The class names in `class_names.json` beside the model, or `None`."""
    path = os.path.join(os.path.dirname(model_path), "class_names.json")
    if os.path.isfile(path):
        with open(path) as f:
            names = json.load(f)
        if len(names) == num_classes:
            return names
    return None
