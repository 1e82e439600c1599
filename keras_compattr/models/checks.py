"""What a model checks and infers about its networks and its data.

- the networks' shapes: `static_input_shape`, `input_channels`,
  `output_shape`;
- what they tell about the task: `infer_image_shape`, `infer_num_classes`,
  `output_kind`;
- the arguments of `fit`, `evaluate` and friends before Keras sees them:
  `validate_validation_data`, `keras_arguments`;
- that the frozen detector was trained: `detector_accuracy`,
  `warn_if_untrained`.
"""

import inspect
import types
import warnings

import keras
import numpy as np

from keras_compattr.models.data_statistics import first_examples
from keras_compattr.utils import data_checks
from keras_compattr.utils.classifiers import model_outputs
from keras_compattr.utils.images import to_unit_range_numpy
from keras_compattr.utils.labels import integer_labels


def static_input_shape(network):
    """`(H, W, C)` of a network's first input when all three are fixed.

    Args:
        network: a `keras.Model` (or any object with `inputs`).

    Returns:
        A tuple of three ints, or `None` when the network has no inputs
        yet, its first input is not an image batch, or a size is open.

    Example:

    >>> import keras
    >>> from keras_compattr.models.checks import static_input_shape
    >>> inputs = keras.Input((32, 32, 3))
    >>> static_input_shape(keras.Model(inputs, inputs))
    (32, 32, 3)
    """
    inputs = getattr(network, "inputs", None)
    if not inputs:
        return None
    try:
        shape = tuple(inputs[0].shape[1:])
    except (AttributeError, TypeError):
        return None
    if len(shape) != 3 or any(d is None for d in shape):
        return None
    return shape


def input_channels(network, default=3):
    """The channel count of a network's first input, or `default`."""
    try:
        return network.inputs[0].shape[-1]
    except (AttributeError, IndexError, TypeError):
        return default


def output_shape(network, image_shape=None):
    """The output shape of a single-output network on `image_shape` images.

    The symbolic output shape is used when it is fully known (or when no
    `image_shape` is given); otherwise the shape is computed for a batch of
    `image_shape` images without running the network.

    Args:
        network: a `keras.Model`.
        image_shape: `(H, W, C)`, or `None`.

    Returns:
        The shape as a tuple with `None` for the batch size, or `None` when
        it cannot be told: several outputs, or no output yet and no fully
        known `image_shape`.

    Example:

    >>> import keras
    >>> from keras_compattr.models.checks import output_shape
    >>> inputs = keras.Input((None, None, 3))
    >>> features = keras.layers.Conv2D(4, 1, strides=4)(inputs)
    >>> network = keras.Model(inputs, features)
    >>> output_shape(network, (32, 32, 3))
    (None, 8, 8, 4)
    """
    outputs = getattr(network, "outputs", None)
    if outputs and len(outputs) == 1:
        shape = tuple(outputs[0].shape)
        if image_shape is None or all(d is not None for d in shape[1:]):
            return shape
    if image_shape is None or any(d is None for d in image_shape):
        return None
    spec = network.compute_output_spec(
        keras.KerasTensor((1, *image_shape), dtype="float32")
    )
    if isinstance(spec, (list, tuple, dict)):
        return None
    return (None, *spec.shape[1:])


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


def validate_validation_data(data, image_shape, num_classes):
    """Checks `fit`'s `validation_data`: a dataset or `(images, labels)`.

    Args:
        data: a dataset, `PyDataset` or generator yielding `(images,
            labels)`, or a tuple `(images, labels)` or `(images, labels,
            sample_weight)`.
        image_shape: `(H, W, C)`.
        num_classes: int.

    Returns:
        The data to pass on to Keras.
    """
    if data_checks.is_dataset(data) or isinstance(
        data, (keras.utils.PyDataset, types.GeneratorType)
    ):
        data, _ = data_checks.validate_inputs(
            data,
            None,
            image_shape,
            num_classes,
            with_labels=True,
            name="validation_data",
        )
        return data
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise ValueError(
            "`validation_data` must be a dataset or a tuple "
            "`(images, labels)`. Received an object of type "
            f"{type(data).__name__}."
        )
    images, _ = data_checks.validate_inputs(
        data[0],
        data[1],
        image_shape,
        num_classes,
        with_labels=True,
        name="validation_data[0]",
        label_name="validation_data[1]",
    )
    return (images, *data[1:])


def keras_arguments(method, x, y, args, kwargs):
    """`method`'s arguments after `x` and `y`, by name, as Keras binds them.

    So that `model.fit(x, y, 64)` means `batch_size=64`, as for any Keras
    model, and a misspelt argument fails as it would there.

    Returns:
        A dict of the arguments passed, without `x` and `y`.
    """
    bound = inspect.signature(method).bind(None, x, y, *args, **kwargs)
    arguments = dict(bound.arguments)
    for name in ("self", "x", "y"):
        arguments.pop(name, None)
    arguments.update(arguments.pop("kwargs", {}))
    return arguments


def detector_accuracy(detector, images, labels, batch_size=32):
    """Accuracy of `detector` on full images, NaN for non-finite outputs.

    The implementation of `ComprehensiveAttributionModel.detector_accuracy`,
    which describes the arguments.
    """
    images = to_unit_range_numpy(images)
    labels = integer_labels(labels, len(images))
    outputs = np.concatenate(
        [
            model_outputs(detector, images[i : i + batch_size])
            for i in range(0, len(images), batch_size)
        ]
    )
    if not np.all(np.isfinite(outputs)):
        return float("nan")
    return float(np.mean(outputs.argmax(axis=-1) == labels))


def warn_if_untrained(detector, num_classes, x, y, batch_size=None):
    """Warns when the detector is near chance on the first training data.

    Args:
        detector: the frozen detector.
        num_classes: int, `K`.
        x: the training data, as `fit` takes it.
        y: the labels for an array `x`, else `None`.
        batch_size: int or `None`, images per forward pass.

    Returns:
        The `x` to train on (a generator is re-wrapped, see
        `keras_compattr.models.data_statistics.first_examples`).
    """
    images, labels, x = first_examples(x, y)
    if images is None or len(images) == 0 or num_classes < 2:
        return x
    accuracy = detector_accuracy(
        detector, images, labels, batch_size=batch_size or 32
    )
    chance = 1.0 / num_classes
    if np.isnan(accuracy):
        problem = "returns NaN or infinite outputs on the training images"
    elif accuracy <= 1.5 * chance:
        problem = (
            f"has accuracy {accuracy:.0%} on {len(images)} training "
            f"images (chance: {chance:.0%}), so it looks untrained"
        )
    else:
        return x
    warnings.warn(
        f"The detector {problem}. The detector penalty is then "
        "meaningless: the selector is rewarded for hiding evidence from "
        "a network that cannot see it. Train the detector on full "
        "images first (e.g. `detector.fit(images, labels)`), or set "
        "`detector_weight=0.0` for the no-detector ablation.",
        stacklevel=3,
    )
    return x
