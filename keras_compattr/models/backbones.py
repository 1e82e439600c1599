"""Turn the networks users bring into a selector, predictor or detector.

`ComprehensiveAttributionModel` passes its `selector`, `predictor` and
`detector` arguments through `resolve_networks`, so each may be:

- a `keras.Model` that already does the job (used as it is);
- a feature extractor: a KerasHub `Backbone`, a KerasCV `Backbone`, or a
  `keras.applications` model built with `include_top=False`. The selector
  gets an LR-ASPP head over a fine (stride 8) and a coarse (stride 32)
  feature map; the predictor gets global pooling and a `Dense` layer;
- a trained classifier, including a KerasHub or KerasCV `ImageClassifier`
  (as the detector or the predictor), wrapped with the input preprocessing
  it expects;
- a string naming a built-in recipe (`RECIPES`), for the selector and the
  predictor.

Whatever comes in, what comes out is a functional `keras.Model` taking
float images in `[0, 1]`, which is what `ComprehensiveAttributionModel`
stores and serialises. KerasHub and KerasCV are optional: they are imported
only when an object of theirs, or a recipe that needs one, is given.
"""

import importlib
import math
import re

import keras
import numpy as np
from keras import layers
from keras import ops

from keras_compattr.models import builders

RECIPES = (
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "resnet18",
    "resnet50",
    "efficientnet_v2_b0",
)
PREPROCESSING_MODES = ("0_255", "-1_1", "imagenet", "caffe")

_EXTRAS = {"keras_hub": "hub", "keras_cv": "cv"}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_POOLING_LAYERS = (
    layers.GlobalAveragePooling2D,
    layers.GlobalMaxPooling2D,
    layers.GlobalAveragePooling1D,
    layers.GlobalMaxPooling1D,
)


@keras.saving.register_keras_serializable(package="keras_compattr")
class ImagePreprocessing(layers.Layer):
    """Maps images in `[0, 1]` to the input range a network expects.

    Args:
        mode: one of `PREPROCESSING_MODES`:
            `"0_255"` multiplies by 255 (Keras applications with built-in
            preprocessing such as MobileNetV3 and EfficientNetV2, KerasCV
            backbones with `include_rescaling=True`, KerasHub image
            converters); `"-1_1"` maps to `[-1, 1]`; `"imagenet"` subtracts
            the ImageNet mean and divides by its standard deviation, per
            channel, on `[0, 1]` pixels (torchvision and timm weights,
            KerasHub ResNet presets); `"caffe"` flips RGB to BGR and
            subtracts the ImageNet mean from `0..255` pixels
            (`keras.applications.resnet50.preprocess_input`).
        **kwargs: base layer keyword arguments such as `name`.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.models import ImagePreprocessing
    >>> layer = ImagePreprocessing("-1_1")
    >>> float(np.asarray(layer(np.full((1, 2, 2, 3), 0.5, "float32"))).max())
    0.0
    """

    def __init__(self, mode, **kwargs):
        super().__init__(**kwargs)
        if mode not in PREPROCESSING_MODES:
            raise ValueError(
                f"`mode` must be one of {PREPROCESSING_MODES}. "
                f"Received: mode={mode!r}"
            )
        self.mode = mode

    def call(self, images):
        images = ops.cast(images, self.compute_dtype)
        if self.mode == "0_255":
            return images * 255.0
        if self.mode == "-1_1":
            return images * 2.0 - 1.0
        if self.mode == "imagenet":
            mean = ops.convert_to_tensor(_IMAGENET_MEAN, self.compute_dtype)
            std = ops.convert_to_tensor(_IMAGENET_STD, self.compute_dtype)
            return (images - mean) / std
        mean = ops.convert_to_tensor(_CAFFE_MEAN_BGR, self.compute_dtype)
        return ops.flip(images, axis=-1) * 255.0 - mean

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode})
        return config


# === Public resolvers ===


def as_selector(
    network,
    image_shape=None,
    weights=None,
    preprocessing="auto",
    head_channels=64,
    name="selector",
):
    """Turns a network or a recipe name into a selector.

    A selector maps images in `[0, 1]` to mask logits `(N, h, w, 1)` (or a
    feature map that `ComprehensiveAttributionModel` projects to one
    channel). Feature extractors get the LR-ASPP head of
    `keras_compattr.models.lraspp_head` over a fine (stride 8, or the
    finest below the coarse one) and a coarse (stride 32, or the coarsest
    up to 32) feature map:

    - a KerasHub `Backbone`: the maps of its `pyramid_outputs` (`"P3"`,
      `"P5"`, ...), or of its layers by stride when it has none; a KerasHub
      `ImageClassifier` (or any task with a `backbone`) uses its backbone;
    - a KerasCV `Backbone`: the layers named in `pyramid_level_inputs`;
    - a `keras.Model` that returns class scores `(N, K)`, or a feature map
      with several channels at stride 16 or more (e.g. a
      `keras.applications` model with `include_top=False`): the last layer
      at each stride;
    - a recipe name from `RECIPES`.

    Any other `keras.Model` (one mask channel, or a fine feature map) is
    returned as it is.

    Args:
        network: a `keras.Model`, a KerasHub or KerasCV backbone or task,
            or a recipe name.
        image_shape: `(H, W, C)` of the images. Needed for recipes and for
            networks without a fixed input shape.
        weights: for recipes only: `None` (random initialisation),
            `"imagenet"`, or a weights file for the `keras.applications`
            recipes. Pretrained weights are downloaded: offline this fails
            with an `OSError` that says so, and `None` works.
        preprocessing: how `[0, 1]` images are mapped to the network's
            input range: `"auto"` (the recipe's own; `"0_255"` for KerasCV
            backbones with `include_rescaling=True`; the image converter of
            a KerasHub task; nothing otherwise), `None` (nothing), a mode of
            `ImagePreprocessing`, or a `keras.layers.Layer` applied to the
            `[0, 1]` images (a KerasHub `ImageConverter` gets `0..255`
            pixels, as its presets expect).
        head_channels: int, channels of the LR-ASPP head.
        name: str, name of the returned model.

    Returns:
        A `keras.Model` mapping images in `[0, 1]` to a feature map.

    Example:

    >>> from keras_compattr.models import as_selector
    >>> selector = as_selector("resnet18", (32, 32, 3), head_channels=8)
    >>> selector.output_shape
    (None, 8, 8, 1)

    Reference:
        [Howard et al., 2019](https://arxiv.org/abs/1905.02244)
    """
    if isinstance(network, str):
        return _recipe_selector(
            network, image_shape, weights, preprocessing, head_channels, name
        )
    _check_no_weights(weights)
    network = _check_network(network, "selector")
    source = network_source(network)
    image_shape = _image_shape_for(network, image_shape, "selector")
    chain = _preprocessing_layers(preprocessing, network, image_shape)
    if _is_task(network, source):
        network = network.backbone
    taps = None
    if source == "keras_hub":
        taps = _pyramid_taps(getattr(network, "pyramid_outputs", None))
    elif source == "keras_cv":
        level_names = getattr(network, "pyramid_level_inputs", None) or {}
        taps = _pyramid_taps(
            {
                level: network.get_layer(layer_name).output
                for level, layer_name in level_names.items()
            }
        )
    if taps is None:
        if source == "keras" and not _is_feature_extractor(
            network, image_shape
        ):
            return _with_preprocessing(network, image_shape, chain, name)
        taps = _layer_taps(network, image_shape)
    if taps is None:
        if source == "keras":
            # A coarse map without finer layers: the model projects it.
            return _with_preprocessing(network, image_shape, chain, name)
        raise ValueError(
            f"Cannot find feature maps at two strides in {network.name!r} "
            f"for images of shape {image_shape}: the selector needs "
            "convolutional feature maps (N, h, w, C)."
        )
    return _selector_from_taps(
        network, taps, image_shape, chain, head_channels, name
    )


def as_predictor(
    network,
    image_shape=None,
    num_classes=None,
    weights=None,
    preprocessing="auto",
    dropout=0.0,
    name="predictor",
):
    """Turns a network or a recipe name into a predictor.

    A predictor maps images in `[0, 1]` to class scores `(N, K)`. A
    feature extractor gets global average pooling and a
    `Dense(num_classes)` layer returning logits: a KerasHub or KerasCV
    `Backbone`, or a `keras.Model` returning a feature map (rank 3 or 4) or
    ending in a global pooling layer (`keras.applications` with
    `include_top=False`, with or without `pooling`). A classifier (a
    `keras.Model` returning `(N, K)`, a KerasHub or KerasCV
    `ImageClassifier`) is kept and wrapped with its preprocessing.

    Args:
        network: a `keras.Model`, a KerasHub or KerasCV backbone or
            classifier, or a recipe name from `RECIPES`.
        image_shape: `(H, W, C)`; needed for recipes and for networks
            without a fixed input shape.
        num_classes: int, number of classes; required when a head is added.
        weights: for recipes only, as in `as_selector`. Only the backbone
            is pretrained; the head starts at random.
        preprocessing: as in `as_selector`.
        dropout: float, dropout rate before the added `Dense` layer.
        name: str, name of the returned model.

    Returns:
        A `keras.Model` mapping images in `[0, 1]` to `(N, K)` scores.

    Example:

    >>> from keras_compattr.models import as_predictor
    >>> predictor = as_predictor("resnet18", (32, 32, 3), num_classes=4)
    >>> predictor.output_shape
    (None, 4)
    """
    if isinstance(network, str):
        return _recipe_predictor(
            network,
            image_shape,
            num_classes,
            weights,
            preprocessing,
            dropout,
            name,
        )
    _check_no_weights(weights)
    network = _check_network(network, "predictor")
    source = network_source(network)
    image_shape = _image_shape_for(network, image_shape, "predictor")
    chain = _preprocessing_layers(preprocessing, network, image_shape)
    if _is_backbone(network, source) or _returns_features(network, image_shape):
        return _classifier_from_backbone(
            network, image_shape, num_classes, chain, dropout, name
        )
    return _with_preprocessing(network, image_shape, chain, name)


def as_detector(network, image_shape=None, preprocessing="auto"):
    """Checks a trained classifier and wraps it with its preprocessing.

    The detector must already be trained on full images: a recipe or a
    backbone without a trained head is refused. A KerasHub
    `ImageClassifier` with a preprocessor is wrapped with its image
    converter (fed `0..255` pixels); a KerasCV `ImageClassifier` whose
    backbone has `include_rescaling=True` gets `0..255` pixels. Any other
    classifier receives the `[0, 1]` images as they are, unless
    `preprocessing` says otherwise.

    Args:
        network: a trained classifier mapping images to `(N, K)` logits or
            probabilities.
        image_shape: `(H, W, C)`, the shape of the wrapper's input when a
            preprocessing is added; defaults to the network's.
        preprocessing: as in `as_selector`.

    Returns:
        The network itself when nothing is added, otherwise a functional
        `keras.Model` named after it that applies the preprocessing and
        then the network.

    Example:

    >>> from keras_compattr.models import as_detector, build_classifier
    >>> classifier = build_classifier((32, 32, 3), 4, widths=(8,))
    >>> as_detector(classifier) is classifier
    True
    """
    if isinstance(network, str):
        raise ValueError(
            f"The detector cannot be a recipe name (received {network!r}): "
            "it must be a classifier already trained on full images. Train "
            "one first, e.g. `as_predictor(...)` compiled and fitted on "
            "your data, and pass it."
        )
    network = _check_network(network, "detector")
    source = network_source(network)
    if _is_backbone(network, source):
        raise ValueError(
            f"The detector {network.name!r} is a backbone without a "
            "classification head. Pass a classifier trained on full images, "
            "e.g. a fitted `keras_hub.models.ImageClassifier`."
        )
    chain = _preprocessing_layers(preprocessing, network, image_shape)
    if not chain:
        return network
    if image_shape is None:
        image_shape = _static_input_shape(network) or (
            None,
            None,
            _channels(network),
        )
    return _with_preprocessing(network, image_shape, chain, network.name)


def resolve_networks(
    selector=None,
    predictor=None,
    detector=None,
    input_shape=None,
    num_classes=None,
):
    """Resolves the three networks of `ComprehensiveAttributionModel`.

    Applies `as_detector`, `as_selector` and `as_predictor` (with their
    defaults) to the networks that are not `None`. The image shape is
    `input_shape`, or the fixed input shape the networks agree on; the
    number of classes for a predictor head is `num_classes`, or the
    detector's.

    Args:
        selector: `None` or anything `as_selector` accepts.
        predictor: `None` or anything `as_predictor` accepts.
        detector: `None` or anything `as_detector` accepts.
        input_shape: `(H, W, C)` or `None`.
        num_classes: int or `None`.

    Returns:
        The tuple `(selector, predictor, detector)`.
    """
    if selector is not None and selector is predictor:
        raise ValueError(
            "`selector` and `predictor` are the same object. They must be "
            "two networks with their own weights: build the backbone twice."
        )
    image_shape = tuple(input_shape) if input_shape is not None else None
    if image_shape is None:
        shapes = {
            _static_input_shape(network)
            for network in (selector, predictor, detector)
            if isinstance(network, keras.Model)
        }
        shapes.discard(None)
        if len(shapes) == 1:
            image_shape = shapes.pop()
    if detector is not None:
        detector = as_detector(detector, image_shape)
        if num_classes is None:
            shape = _output_shape(detector, image_shape)
            if shape is not None and len(shape) == 2:
                num_classes = shape[-1]
    if selector is not None:
        selector = as_selector(selector, image_shape)
    if predictor is not None:
        predictor = as_predictor(predictor, image_shape, num_classes)
    return selector, predictor, detector


def network_source(network):
    """Where a network comes from: `"keras_hub"`, `"keras_cv"` or `"keras"`.

    Args:
        network: any object.

    Returns:
        `"keras_hub"` or `"keras_cv"` when a class in its hierarchy is
        defined in that package, `"keras"` otherwise.
    """
    for cls in type(network).__mro__:
        module = cls.__module__ or ""
        for package in _EXTRAS:
            if module == package or module.startswith(package + "."):
                return package
    return "keras"


# === Recipes ===


def _check_recipe(recipe, image_shape):
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


def _recipe_selector(
    recipe, image_shape, weights, preprocessing, head_channels, name
):
    image_shape = _check_recipe(recipe, image_shape)
    if recipe.startswith("mobilenet_v3") and preprocessing == "auto":
        return _pretrained(
            recipe,
            weights,
            lambda: builders.build_selector(
                image_shape,
                backbone=recipe,
                weights=weights,
                head_channels=head_channels,
                name=name,
            ),
        )
    backbone, own_preprocessing = _recipe_backbone(recipe, image_shape, weights)
    if preprocessing == "auto":
        preprocessing = own_preprocessing
    return as_selector(
        backbone,
        image_shape,
        preprocessing=preprocessing,
        head_channels=head_channels,
        name=name,
    )


def _recipe_predictor(
    recipe, image_shape, num_classes, weights, preprocessing, dropout, name
):
    image_shape = _check_recipe(recipe, image_shape)
    if num_classes is None:
        raise ValueError(
            f"`num_classes` is required to build a predictor from the "
            f"recipe {recipe!r}."
        )
    if recipe == "resnet18" and weights is None:
        return builders.build_predictor(
            image_shape, int(num_classes), dropout=dropout, name=name
        )
    backbone, own_preprocessing = _recipe_backbone(recipe, image_shape, weights)
    if preprocessing == "auto":
        preprocessing = own_preprocessing
    return as_predictor(
        backbone,
        image_shape,
        num_classes,
        preprocessing=preprocessing,
        dropout=dropout,
        name=name,
    )


def _recipe_backbone(recipe, image_shape, weights):
    """Returns `(feature extractor, preprocessing mode)` for a recipe."""
    if recipe == "resnet18":
        if weights is None:
            # The project's ResNet-18: it rescales [0, 1] inputs itself.
            classifier = builders.build_classifier(
                image_shape, 1, name="resnet18"
            )
            return classifier, None
        if weights != "imagenet":
            raise ValueError(
                "The 'resnet18' recipe takes `weights=None` or "
                f"'imagenet' (from KerasHub). Received: weights={weights!r}"
            )
        keras_hub = import_extra("keras_hub")
        backbone = _pretrained(
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
            _pretrained(
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
        _pretrained(
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


def _pretrained(recipe, weights, build):
    """Runs `build`, turning a failed weights download into a clear error."""
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
    return any(
        marker in text
        for marker in (
            "URL fetch failure",
            "Failed to resolve",
            "Max retries exceeded",
            "Name or service not known",
            "Connection",
        )
    )


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


def _is_backbone(network, source):
    if source == "keras":
        return False
    module = import_extra(source)
    return isinstance(network, module.models.Backbone)


def _is_task(network, source):
    if source == "keras":
        return False
    module = import_extra(source)
    return isinstance(network, module.models.Task) and hasattr(
        network, "backbone"
    )


# === Preprocessing ===


def _preprocessing_layers(preprocessing, network, image_shape):
    """The list of layers mapping `[0, 1]` images to the network's input."""
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


def _with_preprocessing(network, image_shape, chain, name):
    if not chain:
        return network
    inputs = keras.Input(shape=image_shape, name="images")
    x = inputs
    for layer in chain:
        x = layer(x)
    return keras.Model(inputs, network(x), name=name)


# === Heads ===


def _selector_from_taps(network, taps, image_shape, chain, channels, name):
    low, high = taps
    extractor = keras.Model(
        network.inputs, [low, high], name=f"{network.name}_features"
    )
    inputs = keras.Input(shape=image_shape, name="images")
    x = inputs
    for layer in chain:
        x = layer(x)
    low, high = extractor(x)
    logits = builders.lraspp_head(low, high, head_channels=channels)
    return keras.Model(inputs, logits, name=name)


def _classifier_from_backbone(
    network, image_shape, num_classes, chain, dropout, name
):
    if num_classes is None:
        raise ValueError(
            f"`num_classes` is required: the predictor {network.name!r} is "
            "a feature extractor and gets a new classification head."
        )
    inputs = keras.Input(shape=image_shape, name="images")
    x = inputs
    for layer in chain:
        x = layer(x)
    x = network(x)
    if len(x.shape) == 4:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif len(x.shape) == 3:
        x = layers.GlobalAveragePooling1D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(int(num_classes), name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


# === Feature maps by stride ===


def _pyramid_taps(pyramid):
    """`(low, high)` feature maps from a `{"P3": tensor, ...}` pyramid."""
    by_stride = {}
    for level, tensor in (pyramid or {}).items():
        match = re.fullmatch(r"P(\d+)", str(level))
        if match:
            by_stride[2 ** int(match.group(1))] = tensor
    return _choose_taps(by_stride)


def _choose_taps(by_stride, high_stride=None):
    """Picks a coarse map (stride 32 or below) and a finer one (stride 8)."""
    strides = sorted(by_stride)
    if high_stride is None:
        coarse = [s for s in strides if s <= 32]
        if not coarse:
            return None
        high_stride = coarse[-1]
    fine = [s for s in strides if s <= min(8, high_stride // 2)]
    if not fine:
        return None
    return by_stride[fine[-1]], by_stride[high_stride]


def _layer_taps(network, image_shape):
    """`(low, high)` from the last layer of `network` at each stride."""
    outputs = []
    for layer in network.layers:
        try:
            output = layer.output
        except (AttributeError, ValueError):
            continue
        if isinstance(output, keras.KerasTensor) and len(output.shape) == 4:
            outputs.append(output)
    if not outputs:
        return None
    probe = keras.Model(network.inputs, outputs)
    specs = probe.compute_output_spec(
        keras.KerasTensor((1, *image_shape), dtype="float32")
    )
    by_stride = {}
    for output, spec in zip(outputs, specs):
        stride = _stride(image_shape, spec.shape)
        if stride is not None:
            by_stride[stride] = output
    high_stride = None
    final = network.outputs[0] if len(network.outputs) == 1 else None
    if final is not None and len(final.shape) == 4:
        high_stride = _stride(image_shape, _output_shape(network, image_shape))
        if high_stride is not None:
            by_stride[high_stride] = final
    return _choose_taps(by_stride, high_stride)


def _stride(image_shape, shape):
    height = shape[1]
    if height is None or height < 1:
        return None
    stride = 2 ** round(math.log2(max(image_shape[0] / height, 1)))
    if math.ceil(image_shape[0] / stride) != height:
        return None
    return stride


def _is_feature_extractor(network, image_shape):
    """A class-score output, or a coarse map with several channels."""
    shape = _output_shape(network, image_shape)
    if shape is None:
        return False
    if len(shape) == 2:
        return True
    if len(shape) != 4 or shape[-1] == 1:
        return False
    stride = _stride(image_shape, shape)
    return stride is not None and stride >= 16


def _returns_features(network, image_shape):
    shape = _output_shape(network, image_shape)
    if shape is not None and len(shape) in (3, 4):
        return True
    model_layers = getattr(network, "layers", None)
    return bool(model_layers) and isinstance(model_layers[-1], _POOLING_LAYERS)


# === Shapes ===


def _check_network(network, role):
    if not isinstance(network, keras.Model):
        raise TypeError(
            f"The {role} must be a `keras.Model` (including KerasHub and "
            f"KerasCV models) or a recipe name from {RECIPES}. Received: "
            f"{type(network).__name__}"
        )
    return network


def _check_no_weights(weights):
    if weights is not None:
        raise ValueError(
            "`weights` applies to recipe names only. Load weights into "
            "your network before passing it."
        )


def _static_input_shape(network):
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


def _channels(network):
    try:
        return network.inputs[0].shape[-1]
    except (AttributeError, IndexError, TypeError):
        return 3


def _image_shape_for(network, image_shape, role):
    fixed = _static_input_shape(network)
    if image_shape is None:
        if fixed is None:
            raise ValueError(
                f"The {role} {network.name!r} has no fixed input shape: "
                "pass `input_shape=(height, width, channels)` to the model."
            )
        return fixed
    image_shape = tuple(int(d) for d in image_shape)
    if fixed is not None and fixed != image_shape:
        raise ValueError(
            f"The {role} {network.name!r} takes images of shape {fixed}, "
            f"not {image_shape}."
        )
    return image_shape


def _output_shape(network, image_shape):
    outputs = getattr(network, "outputs", None)
    if outputs and len(outputs) == 1:
        shape = tuple(outputs[0].shape)
        if all(d is not None for d in shape[1:]) or image_shape is None:
            return shape
    if image_shape is None or any(d is None for d in image_shape):
        return None
    spec = network.compute_output_spec(
        keras.KerasTensor((1, *image_shape), dtype="float32")
    )
    if isinstance(spec, (list, tuple)):
        return None
    return (None, *spec.shape[1:])
