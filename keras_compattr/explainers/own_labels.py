"""The explained classifier's own predictions as labels, for every input
Keras' `fit` and `evaluate` take.

`LearnedMask` explains a model, not a data set: where its inputs hold
images alone, each image is labelled with the class the classifier
predicts (arg max). Inputs that hold `(images, labels)` keep their labels.
"""

import types

import keras

from keras_compattr.utils import data_checks
from keras_compattr.utils.images import to_unit_range


def labelled(explainer, x, y, batch_size):
    """`(x, y)` with `explainer`'s classifier's predictions where no
    labels are.

    Args:
        explainer: a `LearnedMask` (its `predictor` is the classifier,
            `predicted_labels` labels arrays).
        x: images as an array, `tf.data` dataset, `PyDataset` or
            generator, alone or with labels.
        y: labels of array `x`, or `None`.
        batch_size: int, for arrays.

    Returns:
        `(x, y)`: arrays with `y` the predictions; a dataset, `PyDataset`
        or generator that yields `(images, labels)` with `y=None`; or the
        input as it is when it already holds labels.
    """
    if y is not None:
        return x, y
    if hasattr(x, "shape") and not data_checks.is_dataset(x):
        images, _ = explainer._validate_inputs(
            x, None, with_labels=False, name="x"
        )
        return x, explainer.predicted_labels(images, batch_size)
    label_batch = _batch_labeller(explainer)
    if data_checks.is_dataset(x):
        spec = x.element_spec
        if isinstance(spec, (tuple, list)) and len(spec) > 1:
            return x, None
        return _labelled_dataset(explainer.predictor, x, label_batch), None
    if isinstance(x, keras.utils.PyDataset):
        first = x[0]
        if isinstance(first, (tuple, list)) and len(first) > 1:
            return x, None
        return _LabelledPyDataset(x, label_batch), None
    if isinstance(x, types.GeneratorType):
        return _labelled_generator(x, label_batch), None
    return x, None


def labelled_validation(explainer, data, batch_size):
    """`validation_data` with the classifier's predictions as labels where
    it holds images alone (see `labelled`)."""
    if isinstance(data, (tuple, list)):
        if len(data) > 1 and data[1] is not None:
            return data
        data = data[0]
    x, y = labelled(explainer, data, None, batch_size)
    return x if y is None else (x, y)


def _batch_labeller(explainer):
    def label_batch(images):
        images = keras.ops.convert_to_numpy(images)
        return images, explainer.predicted_labels(images, len(images))

    return label_batch


def _labelled_generator(generator, label_batch):
    for batch in generator:
        if isinstance(batch, (tuple, list)):
            if len(batch) > 1:
                yield batch
                continue
            batch = batch[0]
        yield label_batch(batch)


def _labelled_dataset(classifier, dataset, label_batch):
    import tensorflow as tf

    if keras.backend.backend() == "tensorflow":
        # In the pipeline's graph: the classifier is a TensorFlow model.
        def label(images):
            scores = classifier(
                tf.cast(to_unit_range(images), "float32"), training=False
            )
            return images, tf.argmax(scores, axis=-1, output_type="int32")

        return dataset.map(label)

    # Other backends run the classifier eagerly, batch by batch.
    def generate():
        for images in dataset.as_numpy_iterator():
            yield label_batch(images)

    return tf.data.Dataset.from_generator(
        generate,
        output_signature=(
            tf.TensorSpec(dataset.element_spec.shape, "float32"),
            tf.TensorSpec((None,), "int32"),
        ),
    )


class _LabelledPyDataset(keras.utils.PyDataset):
    """A `PyDataset` of images, labelled batch by batch."""

    def __init__(self, source, label_batch):
        super().__init__()
        self.source = source
        self.label_batch = label_batch

    @property
    def num_batches(self):
        return self.source.num_batches

    def __len__(self):
        return len(self.source)

    def __getitem__(self, index):
        batch = self.source[index]
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        return self.label_batch(batch)
