"""What the networks tell about the task: image shape, classes, outputs."""

import keras

from keras_compattr.models.shapes import output_shape
from keras_compattr.models.shapes import static_input_shape

OUTPUT_KINDS = ("auto", "logits", "probabilities")


def infer_image_shape(input_shape, networks):
    """The one image shape `(H, W, C)` the networks and `input_shape` fix.

    Args:
        input_shape: `(H, W, C)` or `None`.
        networks: a dict of name to `keras.Model` (or `None`).

    Returns:
        A tuple of three ints.

    Raises:
        ValueError: no shape is fixed, or two of them disagree.
    """
    found = {}
    for name, model in networks.items():
        shape = static_input_shape(model) if model is not None else None
        if shape is not None:
            found[name] = shape
    if input_shape is not None:
        input_shape = tuple(int(d) for d in input_shape)
        if len(input_shape) != 3:
            raise ValueError(
                "`input_shape` must be (height, width, channels). "
                f"Received: input_shape={input_shape}"
            )
        found["input_shape"] = input_shape
    if not found:
        raise ValueError(
            "Cannot infer the image shape: none of the networks has a fixed "
            "input shape. Pass `input_shape=(height, width, channels)`."
        )
    shapes = set(found.values())
    if len(shapes) > 1:
        raise ValueError(
            "The networks and `input_shape` disagree on the image shape: "
            + ", ".join(f"{k}={v}" for k, v in found.items())
        )
    return shapes.pop()


def infer_num_classes(num_classes, networks, image_shape):
    """The one class count that `num_classes` and the classifiers fix.

    Args:
        num_classes: int or `None`.
        networks: a dict of name to classifier (or `None`), each mapping
            `image_shape` images to `(N, K)` scores.
        image_shape: `(H, W, C)`.

    Returns:
        An int.

    Raises:
        ValueError: a network does not return `(N, K)`, no count is
            fixed, or two of them disagree.
    """
    found = {}
    for name, model in networks.items():
        if model is None:
            continue
        shape = output_shape(model, image_shape)
        if shape is None or len(shape) != 2:
            raise ValueError(
                f"The {name} must return class scores of shape (N, K). It "
                f"returns shape {shape}."
            )
        found[name] = shape[-1]
    if num_classes is not None:
        found["num_classes"] = int(num_classes)
    if not found:
        raise ValueError(
            "Cannot infer the number of classes. Pass `num_classes`."
        )
    if len(set(found.values())) > 1:
        raise ValueError(
            "The number of classes differs: "
            + ", ".join(f"{k}={v}" for k, v in found.items())
            + ". The predictor and the detector must score the same classes."
        )
    return next(iter(found.values()))


def check_output_kind(name, value):
    """Refuses an output kind other than `OUTPUT_KINDS`."""
    if value not in OUTPUT_KINDS:
        raise ValueError(
            f"`{name}` must be one of {OUTPUT_KINDS}. "
            f"Received: {name}={value!r}"
        )


def output_kind(model, declared="auto", default="auto"):
    """Whether a classifier returns `"logits"` or `"probabilities"`.

    Args:
        model: a classifier.
        declared: the kind the user declared; `"auto"` reads it from the
            model.
        default: the kind when the model's last layer does not tell
            (`"auto"` leaves it to `keras_compattr.losses.
            log_probabilities`, which then looks at the values).

    Returns:
        `"logits"`, `"probabilities"` or `default`.
    """
    if declared != "auto":
        return declared
    model_layers = getattr(model, "layers", None)
    last = model_layers[-1] if model_layers else None
    if isinstance(last, keras.Model):
        # A wrapper (e.g. preprocessing + classifier): look inside.
        return output_kind(last, default=default)
    if isinstance(last, keras.layers.Softmax):
        return "probabilities"
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", "")
    if name == "softmax":
        return "probabilities"
    if name == "linear":
        return "logits"
    return default
