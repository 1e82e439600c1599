"""The built-in recipes, pretrained weights, optional extras, preprocessing.

A recipe names a backbone (`RECIPES`) that `keras_compattr.models.as_selector`
and `as_predictor` build for the image shape, from a random initialisation
or pretrained weights. KerasHub and KerasCV are optional extras: they are
imported only when a recipe or a network of theirs needs them.

`as_selector`, `as_predictor` and `as_detector` take a `preprocessing`
argument; `preprocessing_layers` turns it into a list of stock Keras layers
(saved with the model) that feed `[0, 1]` images to a network in its input
range, and `with_preprocessing` puts them in front of the network.
"""

import importlib

import keras
import numpy as np
from keras import layers

from keras_compattr.layers.image_preprocessing import PREPROCESSING_MODES
from keras_compattr.layers.image_preprocessing import ImagePreprocessing
from keras_compattr.models import networks

RECIPES = (
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "resnet18",
    "resnet50",
    "efficientnet_v2_b0",
)

_EXTRAS = {"keras_hub": "hub", "keras_cv": "cv"}
_DOWNLOAD_FAILURES = (
    "URL fetch failure",
    "Failed to resolve",
    "Max retries exceeded",
    "Name or service not known",
    "Connection",
)


def check_recipe(recipe, image_shape):
    """Checks a recipe name and returns the image shape as ints.

    Args:
        recipe: str, a name from `RECIPES`.
        image_shape: `(H, W, C)`; required.

    Returns:
        `image_shape` as a tuple of ints.
    """
    if recipe not in RECIPES:
        raise ValueError(
            f"Unknown recipe {recipe!r}. Recipes: {', '.join(RECIPES)}; or "
            "pass a `keras.Model`, a KerasHub or KerasCV backbone."
        )
    if image_shape is None:
        raise ValueError(
            f"The recipe {recipe!r} needs the image shape: pass "
            "`input_shape=(height, width, channels)` to the model (or "
            "`image_shape` here)."
        )
    return tuple(int(d) for d in image_shape)


def recipe_backbone(recipe, image_shape, weights, preprocessing="auto"):
    """Builds a recipe's feature extractor.

    Args:
        recipe: str, a name from `RECIPES`.
        image_shape: `(H, W, C)`, as ints.
        weights: `None`, `"imagenet"`, or (for the `keras.applications`
            recipes) a weights file.
        preprocessing: `"auto"` for the recipe's own input mapping, or the
            caller's choice, returned as it is.

    Returns:
        The pair `(backbone, preprocessing)`: a `keras.Model` returning
        feature maps, and the preprocessing mode of
        `keras_compattr.layers.ImagePreprocessing` that its `[0, 1]`
        inputs need (`None` for none) or the given `preprocessing`.
    """
    backbone, own = _build_backbone(recipe, image_shape, weights)
    return backbone, own if preprocessing == "auto" else preprocessing


def _build_backbone(recipe, image_shape, weights):
    if recipe == "resnet18":
        if weights is None:
            # The project's ResNet-18: it rescales [0, 1] inputs itself.
            classifier = networks.build_classifier(
                image_shape, 1, name="resnet18"
            )
            return classifier, None
        if weights != "imagenet":
            raise ValueError(
                "The 'resnet18' recipe takes `weights=None` or "
                f"'imagenet' (from KerasHub). Received: weights={weights!r}"
            )
        keras_hub = import_extra("keras_hub")
        backbone = pretrained(
            recipe,
            weights,
            lambda: keras_hub.models.Backbone.from_preset(
                "resnet_18_imagenet", image_shape=image_shape
            ),
        )
        return backbone, "imagenet"
    applications = keras.applications
    if recipe == "resnet50":
        return (
            pretrained(
                recipe,
                weights,
                lambda: applications.ResNet50(
                    include_top=False, weights=weights, input_shape=image_shape
                ),
            ),
            "caffe",
        )
    constructor = {
        "mobilenet_v3_small": applications.MobileNetV3Small,
        "mobilenet_v3_large": applications.MobileNetV3Large,
        "efficientnet_v2_b0": applications.EfficientNetV2B0,
    }[recipe]
    return (
        pretrained(
            recipe,
            weights,
            lambda: constructor(
                include_top=False,
                weights=weights,
                input_shape=image_shape,
                include_preprocessing=True,
            ),
        ),
        "0_255",
    )


def pretrained(recipe, weights, build):
    """Runs `build`, turning a failed weights download into a clear error.

    Args:
        recipe: str, the recipe name, for the message.
        weights: the weights asked for; `None` never downloads.
        build: a function of no argument that builds the network.

    Returns:
        What `build` returns.

    Raises:
        OSError: the weights could not be downloaded; it says to pass
            `weights=None` offline.
    """
    try:
        return build()
    except Exception as error:
        if weights is None or not _is_download_failure(error):
            raise
        raise OSError(
            f"Could not download the {weights!r} weights of the recipe "
            f"{recipe!r}: {error}. Pretrained weights need network access. "
            "Offline, pass `weights=None` to start from a random "
            "initialisation, or a local weights file."
        ) from error


def _is_download_failure(error):
    if isinstance(error, OSError):
        return True
    text = str(error)
    return any(marker in text for marker in _DOWNLOAD_FAILURES)


# === Optional packages ===


def import_extra(package):
    """Imports `"keras_hub"` or `"keras_cv"`, naming the extra if missing.

    Args:
        package: `"keras_hub"` or `"keras_cv"`.

    Returns:
        The imported module.

    Raises:
        ImportError: naming `pip install "keras-compattr[hub]"` (or
            `[cv]`).
    """
    extra = _EXTRAS[package]
    try:
        return importlib.import_module(package)
    except ImportError as error:
        raise ImportError(
            f"This needs `{package}`, which is not installed. Install it "
            f'with `pip install "keras-compattr[{extra}]"` (or '
            f"`pip install {package.replace('_', '-')}`)."
        ) from error


def network_source(network):
    """Where a network comes from: `"keras_hub"`, `"keras_cv"` or `"keras"`.

    Args:
        network: any object.

    Returns:
        `"keras_hub"` or `"keras_cv"` when a class in its hierarchy is
        defined in that package, `"keras"` otherwise.

    Example:

    >>> import keras
    >>> from keras_compattr.models.recipes import network_source
    >>> network_source(keras.layers.Dense(1))
    'keras'
    """
    for cls in type(network).__mro__:
        module = cls.__module__ or ""
        for package in _EXTRAS:
            if module == package or module.startswith(package + "."):
                return package
    return "keras"


def is_backbone(network, source):
    """Whether `network` is a KerasHub or KerasCV `Backbone`."""
    if source == "keras":
        return False
    module = import_extra(source)
    return isinstance(network, module.models.Backbone)


def is_task(network, source):
    """Whether `network` is a KerasHub or KerasCV task with a backbone."""
    if source == "keras":
        return False
    module = import_extra(source)
    return isinstance(network, module.models.Task) and hasattr(
        network, "backbone"
    )


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
    >>> from keras_compattr.models.recipes import preprocessing_layers
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
