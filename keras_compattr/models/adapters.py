"""Turn the networks users bring into a selector, predictor or detector.

`ComprehensiveAttributionModel` passes its `selector`, `predictor` and
`detector` arguments through `resolve_networks`, so each may be:

- a `keras.Model` that already does the job (used as it is);
- a feature extractor: a KerasHub `Backbone`, a KerasCV `Backbone`, or a
  `keras.applications` model built with `include_top=False`. The selector
  gets an LR-ASPP head over a fine (stride 8) and a coarse (stride 32)
  feature map (`keras_compattr.models.networks`); the predictor gets
  global pooling and a `Dense` layer;
- a trained classifier, including a KerasHub or KerasCV `ImageClassifier`
  (as the detector or the predictor), wrapped with the input preprocessing
  it expects (`keras_compattr.models.recipes`);
- a string naming a built-in recipe (`keras_compattr.models.recipes`), for
  the selector and the predictor.

`selector_from_classifier` builds `LearnedMask`'s default selector: the
same LR-ASPP head over a trainable copy of the explained classifier.

Whatever comes in, what comes out is a functional `keras.Model` taking
float images in `[0, 1]`, which is what `ComprehensiveAttributionModel`
stores and serialises. KerasHub and KerasCV are optional: they are imported
only when an object of theirs, or a recipe that needs one, is given.
"""

import keras
from keras import layers

from keras_compattr.models import networks
from keras_compattr.models import recipes
from keras_compattr.models.checks import input_channels
from keras_compattr.models.checks import output_shape
from keras_compattr.models.checks import static_input_shape
from keras_compattr.models.hardening import copy_network
from keras_compattr.models.networks import layer_taps
from keras_compattr.models.networks import pyramid_taps
from keras_compattr.models.networks import stride_of
from keras_compattr.models.recipes import apply_layers
from keras_compattr.models.recipes import preprocessing_layers
from keras_compattr.models.recipes import with_preprocessing

_POOLING_LAYERS = (
    layers.GlobalAveragePooling2D,
    layers.GlobalMaxPooling2D,
    layers.GlobalAveragePooling1D,
    layers.GlobalMaxPooling1D,
)

# Layers that may sit before a backbone nested in the classifier.
_PREPROCESSING = (
    layers.Rescaling,
    layers.Normalization,
    layers.Resizing,
)


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
    `keras_compattr.models.networks.lraspp_head` over a fine (stride 8, or the
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
    - a recipe name from `keras_compattr.models.RECIPES`.

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
        recipe = network
        image_shape = recipes.check_recipe(recipe, image_shape)
        if recipe.startswith("mobilenet_v3") and preprocessing == "auto":
            # The reference selector: LR-ASPP over MobileNetV3.
            return recipes.pretrained(
                recipe,
                weights,
                lambda: networks.build_selector(
                    image_shape,
                    backbone=recipe,
                    weights=weights,
                    head_channels=head_channels,
                    name=name,
                ),
            )
    network, source, image_shape, chain = _prepare(
        network, image_shape, preprocessing, "selector", weights
    )
    if recipes.is_task(network, source):
        network = network.backbone
    taps = None
    if source == "keras_hub":
        taps = pyramid_taps(getattr(network, "pyramid_outputs", None))
    elif source == "keras_cv":
        level_names = getattr(network, "pyramid_level_inputs", None) or {}
        taps = pyramid_taps(
            {
                level: network.get_layer(layer_name).output
                for level, layer_name in level_names.items()
            }
        )
    if taps is None:
        if source == "keras" and not _is_feature_extractor(
            network, image_shape
        ):
            return with_preprocessing(network, image_shape, chain, name)
        taps = layer_taps(network, image_shape)
    if taps is None:
        if source == "keras":
            # A coarse map without finer layers: the model projects it.
            return with_preprocessing(network, image_shape, chain, name)
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
            classifier, or a recipe name from
            `keras_compattr.models.RECIPES`.
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
        image_shape = recipes.check_recipe(network, image_shape)
        if num_classes is None:
            raise ValueError(
                f"`num_classes` is required to build a predictor from the "
                f"recipe {network!r}."
            )
        if network == "resnet18" and weights is None:
            return networks.build_predictor(
                image_shape, int(num_classes), dropout=dropout, name=name
            )
    network, source, image_shape, chain = _prepare(
        network, image_shape, preprocessing, "predictor", weights
    )
    if recipes.is_backbone(network, source) or _returns_features(
        network, image_shape
    ):
        return _classifier_from_backbone(
            network, image_shape, num_classes, chain, dropout, name
        )
    return with_preprocessing(network, image_shape, chain, name)


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
    source = recipes.network_source(network)
    if recipes.is_backbone(network, source):
        raise ValueError(
            f"The detector {network.name!r} is a backbone without a "
            "classification head. Pass a classifier trained on full images, "
            "e.g. a fitted `keras_hub.models.ImageClassifier`."
        )
    chain = preprocessing_layers(preprocessing, network, image_shape)
    if not chain:
        return network
    if image_shape is None:
        image_shape = static_input_shape(network) or (
            None,
            None,
            input_channels(network),
        )
    return with_preprocessing(network, image_shape, chain, network.name)


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
            static_input_shape(network)
            for network in (selector, predictor, detector)
            if isinstance(network, keras.Model)
        }
        shapes.discard(None)
        if len(shapes) == 1:
            image_shape = shapes.pop()
    if detector is not None:
        detector = as_detector(detector, image_shape)
        if num_classes is None:
            shape = output_shape(detector, image_shape)
            if shape is not None and len(shape) == 2:
                num_classes = shape[-1]
    if selector is not None:
        selector = as_selector(selector, image_shape)
    if predictor is not None:
        predictor = as_predictor(predictor, image_shape, num_classes)
    check_no_shared_weights(
        {"selector": selector, "predictor": predictor, "detector": detector}
    )
    return selector, predictor, detector


def check_no_shared_weights(networks):
    """Refuses networks that share a layer's weights.

    The three networks play different parts: the detector is frozen (so a
    layer it shares would be frozen in the selector or predictor too), and
    the selector and predictor are trained on different losses (a shared
    layer would get the sum of both gradients on some backends, one of
    them on others). Each network needs its own layers: build the network
    again, or copy it with `keras.models.clone_model` and `set_weights`.

    Args:
        networks: dict of name -> `keras.Model` or `None`.

    Raises:
        ValueError: two networks share a weight; names the layer.
    """
    owner = {}
    for name, network in networks.items():
        if network is None:
            continue
        for variable in network.weights:
            other = owner.setdefault(id(variable), name)
            if other != name:
                layer = variable.path.rpartition("/")[0] or variable.path
                raise ValueError(
                    f"The {other} and the {name} share the layer "
                    f"{layer!r} (weight {variable.path!r}). Each network "
                    "needs its own layers: the detector is frozen, and the "
                    "selector and predictor train on different losses. "
                    "Build the network again, or copy it with "
                    "`keras.models.clone_model(network)` and "
                    "`copy.set_weights(network.get_weights())`."
                )


# === Heads ===


def _selector_from_taps(network, taps, image_shape, chain, channels, name):
    low, high = taps
    extractor = keras.Model(
        network.inputs, [low, high], name=f"{network.name}_features"
    )
    inputs = keras.Input(shape=image_shape, name="images")
    low, high = extractor(apply_layers(inputs, chain))
    logits = networks.lraspp_head(low, high, head_channels=channels)
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
    x = network(apply_layers(inputs, chain))
    if len(x.shape) == 4:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif len(x.shape) == 3:
        x = layers.GlobalAveragePooling1D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(int(num_classes), name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


# === What a network returns ===


def _is_feature_extractor(network, image_shape):
    """A class-score output, or a coarse map with several channels."""
    shape = output_shape(network, image_shape)
    if shape is None:
        return False
    if len(shape) == 2:
        return True
    if len(shape) != 4 or shape[-1] == 1:
        return False
    stride = stride_of(image_shape, shape)
    return stride is not None and stride >= 16


def _returns_features(network, image_shape):
    shape = output_shape(network, image_shape)
    if shape is not None and len(shape) in (3, 4):
        return True
    model_layers = getattr(network, "layers", None)
    return bool(model_layers) and isinstance(model_layers[-1], _POOLING_LAYERS)


def selector_from_classifier(classifier, input_shape):
    """LR-ASPP over a trainable copy of `classifier`'s feature maps.

    `keras_compattr.explainers.LearnedMask`'s default selector: it begins
    with the features of the model it explains.

    Args:
        classifier: a `keras.Model` on `[0, 1]` images.
        input_shape: `(H, W, C)`, fully known.

    Returns:
        `as_selector` of a copy of the classifier (trainable, its weights
        copied, none shared) when its own layers hold feature maps at two
        strides; else of a copy of the one backbone nested in it behind
        preprocessing layers only (a `keras.applications` model after
        `Rescaling(255)`), those layers running first; else `None`.
    """
    try:
        features = copy_network(classifier, name=f"{classifier.name}_features")
        features.trainable = True
        if layer_taps(features, input_shape) is not None:
            return as_selector(features, input_shape, name="selector")
        preprocessing, backbone = _nested_backbone(features)
        if backbone is None or layer_taps(backbone, input_shape) is None:
            return None
        return as_selector(
            backbone, input_shape, preprocessing=preprocessing, name="selector"
        )
    except (AttributeError, TypeError, ValueError):  # not functional
        return None


def _nested_backbone(network):
    """`(preprocessing, backbone)`: the one `keras.Model` among `network`'s
    layers and a `Sequential` of the preprocessing layers before it (or
    `None`), or `(None, None)` when other layers come before it."""
    models = [
        layer for layer in network.layers if isinstance(layer, keras.Model)
    ]
    if len(models) != 1:
        return None, None
    before = network.layers[: network.layers.index(models[0])]
    before = [
        layer
        for layer in before
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    if not all(isinstance(layer, _PREPROCESSING) for layer in before):
        return None, None
    return (keras.Sequential(before) if before else None), models[0]


# === Checks ===


def _prepare(network, image_shape, preprocessing, role, weights):
    """`(network, source, image_shape, preprocessing layers)`, checked.

    A recipe name (checked by the caller) becomes its backbone, with
    `weights`; other networks take no `weights`.
    """
    if isinstance(network, str):
        network, preprocessing = recipes.recipe_backbone(
            network, image_shape, weights, preprocessing
        )
    else:
        _check_no_weights(weights)
    _check_network(network, role)
    image_shape = _image_shape_for(network, image_shape, role)
    chain = preprocessing_layers(preprocessing, network, image_shape)
    return network, recipes.network_source(network), image_shape, chain


def _check_network(network, role):
    if not isinstance(network, keras.Model):
        raise TypeError(
            f"The {role} must be a `keras.Model` (including KerasHub and "
            f"KerasCV models) or a recipe name from {recipes.RECIPES}. "
            f"Received: {type(network).__name__}"
        )
    return network


def _check_no_weights(weights):
    if weights is not None:
        raise ValueError(
            "`weights` applies to recipe names only. Load weights into "
            "your network before passing it."
        )


def _image_shape_for(network, image_shape, role):
    fixed = static_input_shape(network)
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
