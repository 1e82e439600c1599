"""A layer mapping `[0, 1]` images to the input range of a network."""

from keras import layers
from keras import ops

from keras_compattr.api_export import keras_compattr_export

PREPROCESSING_MODES = ("0_255", "-1_1", "imagenet", "caffe")

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@keras_compattr_export("keras_compattr.layers.ImagePreprocessing")
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
    >>> from keras_compattr.layers import ImagePreprocessing
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
