"""Re-estimating batch-norm statistics after training.

Batch-norm layers keep moving averages of their inputs' mean and variance
for inference. In COMET the predictor's inputs are masked-in images whose
masks change while the selector learns, so the moving averages lag behind:
a model can score 100% in training mode and chance in inference mode after
a short run. Re-estimating the statistics with the final weights (forward
passes in training mode, no weight update) closes the gap.
"""

import keras
import numpy as np


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


def image_batches(data, batch_size, max_images):
    """NumPy image batches from arrays, datasets or PyDatasets.

    Yields at most `max_images` images; returns without yielding when the
    data cannot be read again without consuming it (a generator).
    """
    if isinstance(data, (tuple, list)) and data and hasattr(data[0], "shape"):
        data = data[0]
    if hasattr(data, "shape") and not hasattr(data, "element_spec"):
        array = np.asarray(data)
        for start in range(0, min(len(array), max_images), batch_size):
            yield array[start : min(start + batch_size, max_images)]
        return
    if isinstance(data, keras.utils.PyDataset):
        batches = (data[i] for i in range(len(data)))
    elif hasattr(data, "element_spec"):
        batches = iter(data)
    else:
        return
    seen = 0
    for batch in batches:
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        batch = keras.ops.convert_to_numpy(batch)
        yield batch[: max_images - seen]
        seen += len(batch)
        if seen >= max_images:
            return
