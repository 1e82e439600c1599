"""The layers that feed `[0, 1]` images to a network in its input range.

`keras_compattr.models.as_selector`, `as_predictor` and `as_detector` take
a `preprocessing` argument; `preprocessing_layers` turns it into a list of
stock Keras layers (saved with the model), and `with_preprocessing` puts
them in front of the network.
"""

import keras
import numpy as np
from keras import layers

from keras_compattr.layers.image_preprocessing import PREPROCESSING_MODES
from keras_compattr.layers.image_preprocessing import ImagePreprocessing
from keras_compattr.models.recipes import import_extra
from keras_compattr.models.recipes import network_source


def preprocessing_layers(preprocessing, network, image_shape):
    """The layers mapping `[0, 1]` images to the network's input.

    Args:
        preprocessing: `"auto"`, `None`, a mode of `ImagePreprocessing`,
            or a `keras.layers.Layer` (see
            `keras_compattr.models.as_selector`).
        network: the network the images are fed to.
        image_shape: `(H, W, C)` of the images, or `None`.

    Returns:
        A list of layers, empty when the images go in as they are.

    Example:

    >>> import keras
    >>> from keras_compattr.models.preprocessing import preprocessing_layers
    >>> network = keras.Sequential([keras.Input((8, 8, 3))])
    >>> [layer.mode for layer in preprocessing_layers("-1_1", network, None)]
    ['-1_1']
    """
    if isinstance(preprocessing, str) and preprocessing == "auto":
        return _auto_preprocessing(network, image_shape)
    if preprocessing is None:
        return []
    if isinstance(preprocessing, str):
        if preprocessing not in PREPROCESSING_MODES:
            raise ValueError(
                "`preprocessing` must be 'auto', None, one of "
                f"{PREPROCESSING_MODES} or a keras Layer. Received: "
                f"preprocessing={preprocessing!r}"
            )
        return [ImagePreprocessing(preprocessing)]
    if isinstance(preprocessing, layers.Layer):
        if network_source(preprocessing) == "keras_hub":
            keras_hub = import_extra("keras_hub")
            if isinstance(preprocessing, keras_hub.layers.ImageConverter):
                return _converter_layers(preprocessing, image_shape)
        return [preprocessing]
    raise ValueError(
        "`preprocessing` must be 'auto', None, one of "
        f"{PREPROCESSING_MODES} or a keras Layer (so that it is saved with "
        f"the model). Received: {preprocessing!r}"
    )


def apply_layers(images, chain):
    """Calls the layers of `chain` on `images`, one after the other."""
    for layer in chain:
        images = layer(images)
    return images


def with_preprocessing(network, image_shape, chain, name):
    """`network` itself for an empty `chain`, else a model running both.

    Args:
        network: a `keras.Model`.
        image_shape: `(H, W, C)` of the new model's input.
        chain: a list of layers from `preprocessing_layers`.
        name: str, the name of the new model.

    Returns:
        A `keras.Model`.
    """
    if not chain:
        return network
    inputs = keras.Input(shape=image_shape, name="images")
    return keras.Model(inputs, network(apply_layers(inputs, chain)), name=name)


def _auto_preprocessing(network, image_shape):
    source = network_source(network)
    if source == "keras_hub":
        preprocessor = getattr(network, "preprocessor", None)
        converter = getattr(preprocessor, "image_converter", None)
        if converter is not None:
            return _converter_layers(converter, image_shape)
        return []
    if source == "keras_cv":
        backbone = getattr(network, "backbone", network)
        if getattr(backbone, "include_rescaling", False):
            return [ImagePreprocessing("0_255")]
    return []


def _converter_layers(converter, image_shape):
    """Stock layers doing what a KerasHub `ImageConverter` does to 0..255.

    The converter itself is not put in the graph: its inner `Resizing`
    layer would run every later layer in training mode when the wrapper is
    called without `training=` (Keras takes the default of the first layer
    that has a `training` argument).
    """
    chain = []
    size = converter.image_size
    if size is not None and (
        image_shape is None or tuple(size) != tuple(image_shape[:2])
    ):
        chain.append(
            layers.Resizing(
                size[0],
                size[1],
                interpolation=converter.interpolation,
                crop_to_aspect_ratio=converter.crop_to_aspect_ratio,
                pad_to_aspect_ratio=converter.pad_to_aspect_ratio,
                name="resize_like_converter",
            )
        )
    scale = 1.0 if converter.scale is None else converter.scale
    offset = 0.0 if converter.offset is None else converter.offset
    chain.append(
        layers.Rescaling(
            (255.0 * np.asarray(scale, "float32")).tolist(),
            np.asarray(offset, "float32").tolist(),
            name="rescale_like_converter",
        )
    )
    return chain
