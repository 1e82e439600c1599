"""Re-estimating batch-norm statistics after training.

Batch-norm layers keep moving averages of their inputs' mean and variance
for inference. In COMET the predictor's inputs are masked-in images whose
masks change while the selector learns, so the moving averages lag behind:
a model can score 100% in training mode and chance in inference mode after
a short run. Re-estimating the statistics with the final weights (forward
passes in training mode, no weight update) closes the gap.
"""

import warnings

import keras

from keras_compattr.models.data_access import can_read_again
from keras_compattr.models.data_access import image_batches
from keras_compattr.utils.images import to_unit_range_numpy


def batch_norm_layers(model):
    """Every `BatchNormalization` layer of `model`, nested models included.

    Args:
        model: a Keras layer or model.

    Returns:
        A list of layers, each once, in depth-first order.
    """
    found, seen = [], set()

    def visit(layer):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        for child in getattr(layer, "layers", None) or ():
            visit(child)

    visit(model)
    return found


class exact_average:
    """Context: batch-norm layers average their batch statistics exactly.

    Inside the context, the k-th call in training mode of each layer sets
    its moving statistics to the mean of the k batch statistics seen so far
    (momentum `(k - 1) / k`), so the first batch replaces the stale values.
    The layers' momenta are restored on exit.
    """

    def __init__(self, layers):
        self.layers = list(layers)
        self.count = 0

    def __enter__(self):
        self.momenta = [layer.momentum for layer in self.layers]
        return self

    def step(self):
        """Sets the momenta for the next batch."""
        self.count += 1
        for layer in self.layers:
            layer.momentum = (self.count - 1) / self.count

    def __exit__(self, *exc):
        for layer, momentum in zip(self.layers, self.momenta):
            layer.momentum = momentum
        return False


def refresh(model, images, batch_size=32, max_images=2048, warn=False):
    """Re-estimates the batch-norm statistics of a COMET model's networks.

    The implementation of `ComprehensiveAttributionModel.refresh_batch_norm`
    (`model`), which describes the other arguments and the result.
    """
    # Frozen layers are skipped: a frozen network (`LearnedMask`'s
    # classifier) keeps its statistics bit for bit.
    layers_by_network = [
        [layer for layer in batch_norm_layers(network) if layer.trainable]
        for network in (model.selector, model.predictor)
    ]
    if not any(layers_by_network):
        return 0
    used = 0
    for network, bn_layers in enumerate(layers_by_network):
        if not bn_layers:
            continue
        if not can_read_again(images):
            break
        used = 0
        with exact_average(bn_layers) as average:
            for batch in image_batches(images, batch_size, max_images):
                used += len(batch)
                batch = keras.ops.convert_to_tensor(to_unit_range_numpy(batch))
                average.step()
                if network == 0:
                    model.selector(batch, training=True)
                else:
                    masks = model.compute_masks(batch, training=False)
                    masked_in, _ = model.apply_masks(batch, masks)
                    model.predictor(masked_in, training=True)
    if used == 0 and warn:
        warnings.warn(
            "The batch-norm statistics were not refreshed after `fit`: "
            "the training data is a generator and cannot be read again. "
            "Call `model.refresh_batch_norm(images)` with training images "
            "before `evaluate` or `predict`.",
            stacklevel=4,
        )
    return used


def refresh_classifier(model, data, max_images=2048):
    """Re-estimates the batch-norm statistics of a plain classifier.

    The classifier is run in training mode (no weight update) on up to
    `max_images` images of `data`, fed as `fit` feeds them, and each
    batch-norm layer's moving statistics become the exact average of the
    batch statistics seen. A short training run leaves the moving averages
    far from the weights' statistics (momentum 0.99 needs hundreds of
    steps), so a classifier can score well in training mode and near
    chance in inference mode; this closes that gap.

    Args:
        model: a Keras classifier.
        data: images (an array), or a dataset or `PyDataset` of
            `(images, labels)` batches.
        max_images: int, images read at most.

    Returns:
        int, the number of images used (0 when the model has no batch
        norm or `data` cannot be read again).
    """
    layers = batch_norm_layers(model)
    if not layers or not can_read_again(data):
        return 0
    used = 0
    with exact_average(layers) as average:
        for batch in image_batches(data, 64, max_images):
            used += len(batch)
            average.step()
            model(keras.ops.convert_to_tensor(batch), training=True)
    return used
