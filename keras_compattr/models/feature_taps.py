"""Find a backbone's feature maps by stride, for the selector's head.

The LR-ASPP head of `keras_compattr.models.builders.lraspp_head` combines a
fine feature map (stride 8, or the finest below the coarse one) with a
coarse one (stride 32, or the coarsest up to 32). `pyramid_taps` picks the
two from a KerasHub or KerasCV feature pyramid, `layer_taps` from the
layers of any functional model.
"""

import math
import re

import keras

from keras_compattr.models.shapes import output_shape


def stride_of(image_shape, shape):
    """The power-of-two stride of a feature map over `image_shape` images.

    Args:
        image_shape: `(H, W, C)` of the images.
        shape: the feature map's shape `(N, h, w, C')`.

    Returns:
        The smallest power of two `s` with `h == ceil(H / s)` ("same"
        padding), or `None` when `h` is unknown or none gives it.

    Example:

    >>> from keras_compattr.models.feature_taps import stride_of
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
    >>> from keras_compattr.models.feature_taps import layer_taps
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
