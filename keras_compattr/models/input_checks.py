"""The checks `fit`, `evaluate` and friends run before Keras sees the data."""

import inspect
import types

import keras

from keras_compattr.utils import data_checks


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
