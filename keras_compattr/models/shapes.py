"""The input and output shapes of the networks a model is built from."""

import keras


def static_input_shape(network):
    """`(H, W, C)` of a network's first input when all three are fixed.

    Args:
        network: a `keras.Model` (or any object with `inputs`).

    Returns:
        A tuple of three ints, or `None` when the network has no inputs
        yet, its first input is not an image batch, or a size is open.

    Example:

    >>> import keras
    >>> from keras_compattr.models.shapes import static_input_shape
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
    >>> from keras_compattr.models.shapes import output_shape
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
