"""The networks COMET is built from, when built from scratch.

- `build_classifier`, `build_predictor`, `build_selector`: the default
  detector, predictor and selector;
- `lraspp_head`: the selector's head over a fine and a coarse feature map,
  which `layer_taps` and `pyramid_taps` find in a backbone by stride;
- `MaskModel`: the selector and mask head as one model, for `explain`.
"""

import math
import re

import keras
from keras import layers
from keras import ops

from keras_compattr.models.checks import output_shape
from keras_compattr.utils.images import to_unit_range

SELECTOR_BACKBONES = ("tiny", "mobilenet_v3_small", "mobilenet_v3_large")

# Batch-norm momentum of the built-in networks. Keras' default (0.99) makes
# the moving statistics lag far behind the weights in short runs: a
# classifier trained for a few hundred steps then scores well in training
# mode and near chance in inference mode.
BATCH_NORM_MOMENTUM = 0.9

# TensorFlow's oneDNN CPU kernels get the weight gradient of a stride-2 1x1
# convolution wrong (a segmentation fault, a hang or wrong values) when its
# input has fewer channels than this, the channel block of the AVX-512
# kernel (8 on AVX2): https://github.com/uxlfoundation/oneDNN/issues/6035.
# `build_classifier` subsamples such inputs first, so that its networks are
# safe even when TensorFlow was imported, oneDNN on, before this package.
ONEDNN_CHANNEL_BLOCK = 16


def _conv_bn(x, filters, kernel_size, strides, name, padding="same"):
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        name=f"{name}_conv",
    )(x)
    return layers.BatchNormalization(
        momentum=BATCH_NORM_MOMENTUM, name=f"{name}_bn"
    )(x)


def _conv_bn_relu(x, filters, kernel_size, strides, name):
    x = _conv_bn(x, filters, kernel_size, strides, name)
    return layers.ReLU(name=f"{name}_relu")(x)


def _basic_block(x, filters, strides, name):
    shortcut = x
    y = _conv_bn_relu(x, filters, 3, strides, f"{name}_1")
    y = _conv_bn(y, filters, 3, 1, f"{name}_2")
    if strides != 1 or shortcut.shape[-1] != filters:
        if strides != 1 and shortcut.shape[-1] < ONEDNN_CHANNEL_BLOCK:
            # The same function as a strided 1x1 convolution, without its
            # oneDNN weight gradient, which crashes on this few channels.
            shortcut = layers.MaxPooling2D(
                1, strides=strides, name=f"{name}_shortcut_subsample"
            )(shortcut)
            strides = 1
        shortcut = _conv_bn(
            shortcut, filters, 1, strides, f"{name}_shortcut", "valid"
        )
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_out")(y)


def build_classifier(
    input_shape,
    num_classes,
    widths=(64, 128, 256, 512),
    blocks_per_stage=2,
    stem="auto",
    dropout=0.0,
    name="classifier",
):
    """A ResNet-18-like image classifier returning logits.

    With the default `widths` and two blocks per stage this is ResNet-18
    (11M parameters). Narrower `widths` give fast networks for small images
    and CPU runs. Use it as the detector (train it as a plain classifier on
    full images first) or as the predictor.

    Args:
        input_shape: `(H, W, C)` of float images in `[0, 1]`.
        num_classes: int, number of classes.
        widths: filters of each stage; each stage after the first halves
            the resolution.
        blocks_per_stage: int, residual blocks per stage.
        stem: `"imagenet"` (7x7 stride-2 convolution and max pooling, for
            large images), `"small"` (one 3x3 convolution, for images below
            128 px), or `"auto"` to pick by image size.
        dropout: float, dropout rate before the classification layer.
        name: str, model name.

    Returns:
        A functional `keras.Model` mapping images to `(N, num_classes)`
        logits.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.models import build_classifier
    >>> model = build_classifier((32, 32, 3), num_classes=4, widths=(8, 16))
    >>> tuple(model(np.zeros((2, 32, 32, 3), "float32")).shape)
    (2, 4)
    """
    if stem == "auto":
        stem = "imagenet" if min(input_shape[:2]) >= 128 else "small"
    if stem not in ("imagenet", "small"):
        raise ValueError(
            f"`stem` must be 'imagenet', 'small' or 'auto'. Received: {stem!r}"
        )
    inputs = keras.Input(shape=input_shape, name="images")
    x = layers.Rescaling(2.0, offset=-1.0, name="rescale")(inputs)
    if stem == "imagenet":
        x = _conv_bn_relu(x, widths[0], 7, 2, "stem")
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool")(x)
    else:
        x = _conv_bn_relu(x, widths[0], 3, 1, "stem")
    for stage, filters in enumerate(widths):
        for block in range(blocks_per_stage):
            strides = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(x, filters, strides, f"stage{stage}_{block}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def build_predictor(input_shape, num_classes, **kwargs):
    """The default predictor: `build_classifier` named `"predictor"`.

    Args:
        input_shape: `(H, W, C)`.
        num_classes: int.
        **kwargs: passed to `build_classifier`.

    Returns:
        A `keras.Model` mapping images to logits.

    Example:

    >>> from keras_compattr.models import build_predictor
    >>> build_predictor((32, 32, 3), 4, widths=(8, 16)).output_shape
    (None, 4)
    """
    kwargs.setdefault("name", "predictor")
    return build_classifier(input_shape, num_classes, **kwargs)


def _tiny_backbone(inputs, width):
    """A small conv net; returns features at strides 2 and 4."""
    x = layers.Rescaling(2.0, offset=-1.0, name="rescale")(inputs)
    x = _conv_bn_relu(x, width, 3, 1, "tiny_0")
    x = _conv_bn_relu(x, width * 2, 3, 2, "tiny_1")
    low = _conv_bn_relu(x, width * 2, 3, 1, "tiny_2")
    x = _conv_bn_relu(low, width * 4, 3, 2, "tiny_3")
    high = _conv_bn_relu(x, width * 4, 3, 1, "tiny_4")
    return low, high


def _mobilenet_backbone(inputs, backbone, weights, input_shape):
    constructor = {
        "mobilenet_v3_small": keras.applications.MobileNetV3Small,
        "mobilenet_v3_large": keras.applications.MobileNetV3Large,
    }[backbone]
    # Keras' MobileNetV3 rescales 0..255 inputs itself.
    model = constructor(
        input_shape=input_shape,
        include_top=False,
        weights=weights,
        include_preprocessing=True,
    )
    # Features at strides 8 and 32, as in the reference.
    taps = layer_taps(model, input_shape)
    if taps is None:
        raise ValueError(
            f"The backbone {backbone!r} has no feature maps at two strides "
            f"for images of shape {input_shape}: use larger images."
        )
    extractor = keras.Model(
        model.inputs, list(taps), name=f"{backbone}_features"
    )
    scaled = layers.Rescaling(255.0, name="to_0_255")(inputs)
    return extractor(scaled)


def build_selector(
    input_shape,
    backbone="mobilenet_v3_small",
    weights=None,
    head_channels=64,
    width=16,
    name="selector",
):
    """The default selector: an LR-ASPP head over a light backbone.

    LR-ASPP (Howard et al., 2019) combines a low-level feature map with a
    high-level one gated by global context, and returns one mask-logit
    channel at the low-level resolution. `ComprehensiveAttributionModel`
    upsamples it to the image size.

    Args:
        input_shape: `(H, W, C)` of float images in `[0, 1]`.
        backbone: `"mobilenet_v3_small"` or `"mobilenet_v3_large"` (from
            `keras.applications`; features at strides 8 and 32, as the
            reference uses MobileNetV3), or `"tiny"`, a five-layer conv net
            with features at strides 2 and 4 for small images and CPU runs.
        weights: `None` (random initialisation) or `"imagenet"` for the
            MobileNetV3 backbones; the reference starts from ImageNet
            weights. Downloading them needs network access.
        head_channels: int, channels of the LR-ASPP head.
        width: int, base width of the `"tiny"` backbone.
        name: str, model name.

    Returns:
        A functional `keras.Model` mapping images to `(N, h, w, 1)` mask
        logits.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.models import build_selector
    >>> selector = build_selector((32, 32, 3), backbone="tiny", width=4)
    >>> tuple(selector(np.zeros((1, 32, 32, 3), "float32")).shape)
    (1, 16, 16, 1)

    Reference:
        [Howard et al., 2019](https://arxiv.org/abs/1905.02244)
    """
    if backbone not in SELECTOR_BACKBONES:
        raise ValueError(
            f"`backbone` must be one of {SELECTOR_BACKBONES}. "
            f"Received: backbone={backbone!r}"
        )
    if backbone == "tiny" and weights is not None:
        raise ValueError("The 'tiny' backbone has no pretrained weights.")
    inputs = keras.Input(shape=input_shape, name="images")
    if backbone == "tiny":
        low, high = _tiny_backbone(inputs, width)
    else:
        low, high = _mobilenet_backbone(inputs, backbone, weights, input_shape)

    logits = lraspp_head(low, high, head_channels=head_channels)
    return keras.Model(inputs, logits, name=name)


def lraspp_head(low, high, head_channels=64, name="head"):
    """The LR-ASPP segmentation head on two feature maps.

    The high-level map goes through a 1x1 convolution, is gated by a
    sigmoid of its own global average (the "context"), upsampled
    bilinearly to the low-level map's size and projected to one logit
    channel; the low-level map is projected to one logit channel too, and
    the two are added. The result has the low-level map's resolution;
    `ComprehensiveAttributionModel` resizes it to the image size.

    Args:
        low: symbolic feature map `(N, h, w, C1)` at a fine stride
            (typically 8).
        high: symbolic feature map `(N, h', w', C2)` at a coarse stride
            (typically 32). Both need static spatial sizes.
        head_channels: int, channels of the gated context branch.
        name: str, prefix of the head's layer names.

    Returns:
        A symbolic tensor `(N, h, w, 1)` of mask logits, from a layer named
        `"mask_logits"`.

    Example:

    >>> import keras
    >>> from keras_compattr.models.networks import lraspp_head
    >>> low = keras.Input((8, 8, 16))
    >>> high = keras.Input((2, 2, 32))
    >>> lraspp_head(low, high, head_channels=8).shape
    (None, 8, 8, 1)

    Reference:
        [Howard et al., 2019](https://arxiv.org/abs/1905.02244)
    """
    if low.shape[1] is None or low.shape[2] is None:
        raise ValueError(
            "`lraspp_head` needs a low-level feature map with a static "
            f"spatial size. Received shape {tuple(low.shape)}."
        )
    context = _conv_bn_relu(high, head_channels, 1, 1, f"{name}_context")
    gate = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(
        high
    )
    gate = layers.Conv2D(
        head_channels, 1, activation="sigmoid", name=f"{name}_gate"
    )(gate)
    context = layers.Multiply(name=f"{name}_gated")([context, gate])
    context = layers.Resizing(
        low.shape[1],
        low.shape[2],
        interpolation="bilinear",
        name=f"{name}_up",
    )(context)
    high_logits = layers.Conv2D(1, 1, name=f"{name}_high_logits")(context)
    low_logits = layers.Conv2D(1, 1, name=f"{name}_low_logits")(low)
    return layers.Add(name="mask_logits")([high_logits, low_logits])


def stride_of(image_shape, shape):
    """The power-of-two stride of a feature map over `image_shape` images.

    Args:
        image_shape: `(H, W, C)` of the images.
        shape: the feature map's shape `(N, h, w, C')`.

    Returns:
        The smallest power of two `s` with `h == ceil(H / s)` ("same"
        padding), or `None` when `h` is unknown or none gives it.

    Example:

    >>> from keras_compattr.models.networks import stride_of
    >>> stride_of((32, 32, 3), (None, 4, 4, 16))
    8
    >>> stride_of((40, 40, 3), (None, 2, 2, 16))
    32
    """
    height = shape[1]
    if height is None or height < 1:
        return None
    for exponent in range(max(image_shape[0], 1).bit_length() + 1):
        stride = 2**exponent
        if math.ceil(image_shape[0] / stride) == height:
            return stride
    return None


def pyramid_taps(pyramid):
    """`(fine, coarse)` feature maps of a `{"P3": tensor, ...}` pyramid.

    Args:
        pyramid: a dict from level names `"P<k>"` (stride `2**k`) to
            symbolic feature maps, or `None`.

    Returns:
        A pair of symbolic tensors, or `None` without two usable levels.
    """
    by_stride = {}
    for level, tensor in (pyramid or {}).items():
        match = re.fullmatch(r"P(\d+)", str(level))
        if match:
            by_stride[2 ** int(match.group(1))] = tensor
    return _choose_taps(by_stride)


def layer_taps(network, image_shape):
    """`(fine, coarse)` outputs of the last layer of `network` per stride.

    The network's own output, when it is a feature map, is the coarse one.

    Args:
        network: a functional `keras.Model` taking `image_shape` images.
        image_shape: `(H, W, C)`, fully known.

    Returns:
        A pair of symbolic tensors of `network`'s graph, or `None` when it
        has no feature maps at two suitable strides.

    Example:

    >>> import keras
    >>> from keras_compattr.models.networks import layer_taps
    >>> inputs = keras.Input((32, 32, 3))
    >>> x = keras.layers.Conv2D(4, 3, strides=8, padding="same")(inputs)
    >>> x = keras.layers.Conv2D(8, 3, strides=4, padding="same")(x)
    >>> fine, coarse = layer_taps(keras.Model(inputs, x), (32, 32, 3))
    >>> fine.shape, coarse.shape
    ((None, 4, 4, 4), (None, 1, 1, 8))
    """
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
        stride = stride_of(image_shape, spec.shape)
        if stride is not None:
            by_stride[stride] = output
    high_stride = None
    final = network.outputs[0] if len(network.outputs) == 1 else None
    if final is not None and len(final.shape) == 4:
        high_stride = stride_of(image_shape, output_shape(network, image_shape))
        if high_stride is not None:
            by_stride[high_stride] = final
    return _choose_taps(by_stride, high_stride)


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


class MaskModel(keras.Model):
    """Selector plus mask head: images to mask logits `(N, H, W)`.

    `ComprehensiveAttributionModel.explain` runs it with `predict`, which
    batches arrays, datasets and generators. It shares the selector's and
    mask head's variables and is not saved on its own (no `get_config`).

    Args:
        selector: the selector network.
        mask_head: the `keras_compattr.layers.MaskHead`.
        **kwargs: base model keyword arguments such as `name`.
    """

    def __init__(self, selector, mask_head, **kwargs):
        super().__init__(**kwargs)
        self.selector = selector
        self.mask_head = mask_head

    def call(self, images):
        features = self.selector(to_unit_range(images), training=False)
        return ops.squeeze(self.mask_head.logits(features), axis=-1)
