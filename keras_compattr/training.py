"""Training: the recipes the demo, command line and benchmark share.

- `small_classifier`, `small_comet`: narrow networks for small images.
- `train_classifier`, `train_comet`: compile and fit with Adam / AdamW.
- `WarmupStepDecay`: the reference run's learning-rate schedule (a linear
  warm-up, then step decay), for long runs on real data.
- `fit_verbosity`, `first_step_notices`: how `fit` reports its progress.
- `inference_accuracy`, `near_chance`: whether a trained classifier is
  fit to be COMET's detector.

On the embedded 48 x 48 synthetic data this recipe trains a detector to
about 95% test accuracy in 8 epochs and COMET in 10, a few minutes each on
a 2-core CPU: narrow ResNets (`widths=(16, 32, 64)`, one block per stage),
the `"tiny"` selector, Adam / AdamW with a cosine decay to zero.
"""

import math
import sys
import warnings

import keras
import numpy as np

from keras_compattr.api_export import keras_compattr_export

SMALL_WIDTHS = (16, 32, 64)


def small_classifier(input_shape, num_classes, name="classifier"):
    """A narrow ResNet classifier (logits) for small images and CPU runs.

    Args:
        input_shape: `(H, W, C)`.
        num_classes: int.
        name: str, model name.

    Returns:
        A `keras.Model` mapping images in `[0, 1]` to logits `(N, K)`.

    Example:

    >>> from keras_compattr.training import small_classifier
    >>> small_classifier((32, 32, 3), 4).output_shape
    (None, 4)
    """
    from keras_compattr.models import build_classifier

    return build_classifier(
        input_shape,
        num_classes,
        widths=SMALL_WIDTHS,
        blocks_per_stage=1,
        name=name,
    )


def _steps_per_epoch(x, y, batch_size, steps_per_epoch):
    if steps_per_epoch is not None:
        return int(steps_per_epoch)
    if y is not None:
        return math.ceil(len(x) / batch_size)
    cardinality = getattr(x, "cardinality", None)
    if cardinality is not None:
        steps = int(cardinality())
        if steps > 0:
            return steps
    return None


def _learning_rate(learning_rate, epochs, steps_per_epoch):
    # A schedule is the caller's choice. Otherwise, cosine decay to zero:
    # the last epochs barely move the weights, so the batch-norm moving
    # statistics catch up with them. Without a known epoch length the rate
    # stays constant.
    schedules = keras.optimizers.schedules
    if steps_per_epoch is None or isinstance(
        learning_rate, schedules.LearningRateSchedule
    ):
        return learning_rate
    return schedules.CosineDecay(
        learning_rate, max(1, epochs * steps_per_epoch)
    )


@keras_compattr_export("keras_compattr.training.WarmupStepDecay")
class WarmupStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """A linear warm-up, then step decay: the reference run's schedule.

    The rate climbs linearly over the first `warmup_epochs` epochs, from
    `learning_rate / warmup_steps` at the first step to `learning_rate`,
    then is multiplied by `decay_rate` at the start of each epoch in
    `decay_epochs`. The defaults are the reference run's (2 epochs of
    warm-up, x0.2 at epochs 80, 120 and 160 of 200), for the detector's
    SGD and COMET's AdamW alike. Epochs count from 0, as Keras' `fit` logs
    them from 1: the rate of `fit`'s epoch 81 is the first decayed one.

    Args:
        learning_rate: float, the rate after the warm-up.
        steps_per_epoch: int, optimizer steps (batches) per epoch.
        warmup_epochs: number of epochs of linear warm-up (may be a
            fraction; 0 for none).
        decay_epochs: sequence of ints, the epochs at which the rate is
            multiplied by `decay_rate`.
        decay_rate: float, the factor of each decay.

    Returns:
        Called with the optimizer's step, the learning rate (a float
        tensor).

    Reference:
        https://arxiv.org/abs/2407.19308 (the training recipe of COMET).

    Example:

    >>> import keras
    >>> from keras_compattr.training import WarmupStepDecay
    >>> schedule = WarmupStepDecay(5e-4, steps_per_epoch=10)
    >>> [round(float(schedule(step)), 6) for step in (0, 9, 19, 799, 800)]
    [2.5e-05, 0.00025, 0.0005, 0.0005, 0.0001]
    >>> round(float(schedule(1600)), 7)  # after epochs 80, 120 and 160
    4e-06
    >>> optimizer = keras.optimizers.AdamW(schedule, weight_decay=0.03)
    """

    def __init__(
        self,
        learning_rate,
        steps_per_epoch,
        warmup_epochs=2,
        decay_epochs=(80, 120, 160),
        decay_rate=0.2,
        name="WarmupStepDecay",
    ):
        super().__init__()
        if steps_per_epoch is None or int(steps_per_epoch) < 1:
            raise ValueError(
                "`steps_per_epoch` must be a positive int; received "
                f"{steps_per_epoch!r}."
            )
        if warmup_epochs < 0:
            raise ValueError(
                f"`warmup_epochs` must be >= 0; received {warmup_epochs!r}."
            )
        self.learning_rate = float(learning_rate)
        self.steps_per_epoch = int(steps_per_epoch)
        self.warmup_epochs = warmup_epochs
        self.decay_epochs = tuple(int(epoch) for epoch in decay_epochs)
        self.decay_rate = float(decay_rate)
        self.name = name

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        epoch = keras.ops.floor(step / self.steps_per_epoch)
        decays = sum(
            (keras.ops.cast(epoch >= e, "float32") for e in self.decay_epochs),
            keras.ops.zeros(()),
        )
        rate = self.learning_rate * keras.ops.power(self.decay_rate, decays)
        warmup_steps = self.warmup_epochs * self.steps_per_epoch
        if warmup_steps > 0:
            rate = rate * keras.ops.minimum(1.0, (step + 1.0) / warmup_steps)
        return rate

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "steps_per_epoch": self.steps_per_epoch,
            "warmup_epochs": self.warmup_epochs,
            "decay_epochs": list(self.decay_epochs),
            "decay_rate": self.decay_rate,
            "name": self.name,
        }


def fit_verbosity(verbose):
    """Keras verbosity of `fit`: progress bars (1) only on a terminal.

    Written to a file or a pipe, Keras' bars are ANSI escapes and carriage
    returns; there, 1 becomes 2 (one line per epoch).

    Args:
        verbose: 0, 1 or 2, as in `keras.Model.fit`.

    Returns:
        The verbosity to pass to `fit`.

    Example:

    >>> from keras_compattr.training import fit_verbosity
    >>> fit_verbosity(0), fit_verbosity(2)
    (0, 2)
    """
    isatty = getattr(sys.stdout, "isatty", None)
    if verbose == 1 and not (isatty is not None and isatty()):
        return 2
    return verbose


def first_step_notices(verbose, what):
    """A `FirstStepNotice` for `fit`'s silent first step (none if quiet).

    Args:
        verbose: the verbosity of `fit`; 0 gives no notice.
        what: str, the model being trained, in words.

    Returns:
        A list of callbacks, empty or holding one
        `keras_compattr.callbacks.FirstStepNotice`.

    Example:

    >>> from keras_compattr.training import first_step_notices
    >>> len(first_step_notices(2, "the detector"))
    1
    """
    if not verbose:
        return []
    from keras_compattr.callbacks import FirstStepNotice

    return [
        FirstStepNotice(
            f"Building and compiling the training step of {what} "
            "(the first step takes longest) ..."
        )
    ]


def _fit(model, x, y, epochs, batch_size, validation_data, callbacks, verbose):
    """`model.fit` on arrays (batched and shuffled here) or a dataset."""
    return model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=batch_size if y is not None else None,
        shuffle=y is not None,  # a dataset shuffles itself
        validation_data=validation_data,
        callbacks=callbacks,
        verbose=verbose,
    )


def _unit_range(data):
    """Arrays, `(images, labels)` tuples and datasets with `[0, 1]` images.

    The rule of `keras_compattr.utils.to_unit_range`, so that a detector
    learns on the images COMET will show it. Other data is returned as it
    is.
    """
    from keras_compattr.utils import images

    if data is None:
        return None
    if isinstance(data, (tuple, list)) and data and hasattr(data[0], "shape"):
        return (_unit_range(data[0]), *data[1:])
    if hasattr(data, "element_spec"):
        return images.to_unit_range_dataset(data)
    if hasattr(data, "shape") and hasattr(data, "dtype"):
        return images.to_unit_range_numpy(data)
    return data


def _host_array(value):
    """A NumPy array of a NumPy, TensorFlow, JAX or (CPU) torch array."""
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        return np.asarray(value.numpy())
    return np.asarray(value)


def inference_accuracy(model, x, y=None, batch_size=64, max_images=None):
    """Accuracy of a classifier in inference mode (`training=False`).

    Args:
        model: a Keras classifier returning logits or probabilities.
        x: images `(N, H, W, C)` with labels `y`, or a dataset (or
            `PyDataset`) of `(images, labels)` batches.
        y: labels `(N,)` (or one-hot) for array `x`; `None` for a dataset.
        batch_size: int, images per forward pass for arrays.
        max_images: int, images scored at most; `None` for all.

    Returns:
        `(accuracy, count)`: a float in `[0, 1]` (NaN without an image)
        and the number of images scored.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.training import inference_accuracy
    >>> from keras_compattr.training import small_classifier
    >>> model = small_classifier((32, 32, 3), 2)
    >>> accuracy, count = inference_accuracy(
    ...     model, np.random.rand(4, 32, 32, 3), np.array([0, 1, 0, 1]))
    >>> count, 0.0 <= accuracy <= 1.0
    (4, True)
    """
    if y is not None:
        x, y = np.asarray(x), np.asarray(y)
        batches = (
            (x[i : i + batch_size], y[i : i + batch_size])
            for i in range(0, len(x), batch_size)
        )
    elif isinstance(x, keras.utils.PyDataset):
        batches = (x[i] for i in range(len(x)))
    else:
        batches = iter(x)
    hits, count = 0, 0
    for batch in batches:
        # NumPy first: a tf.data batch goes into a model of any backend.
        images, labels = _host_array(batch[0]), _host_array(batch[1])
        if max_images is not None:
            images, labels = (
                images[: max_images - count],
                labels[: max_images - count],
            )
        outputs = keras.ops.convert_to_numpy(model(images, training=False))
        if labels.ndim == 2:
            labels = labels.argmax(axis=-1)
        hits += int(np.sum(outputs.argmax(axis=-1) == labels.reshape(-1)))
        count += len(labels)
        if max_images is not None and count >= max_images:
            break
    return (hits / count if count else float("nan")), count


def near_chance(accuracy, num_classes):
    """Whether an accuracy is near chance for `num_classes` classes.

    Near chance means not above chance plus a quarter of the way from
    chance to 100% (e.g. 62.5% for 2 classes, 50% for 3, 32.5% for 10);
    NaN counts as near chance.

    Example:

    >>> from keras_compattr.training import near_chance
    >>> near_chance(0.39, 3), near_chance(0.81, 3)
    (True, False)
    """
    chance = 1.0 / max(int(num_classes), 1)
    return not accuracy > chance + 0.25 * (1.0 - chance)


def train_classifier(
    model,
    x,
    y=None,
    epochs=8,
    batch_size=64,
    learning_rate=2e-3,
    validation_data=None,
    steps_per_epoch=None,
    callbacks=None,
    verbose=2,
    refresh_batch_norm=True,
):
    """Compiles and fits a classifier (logits) with Adam, then checks it.

    This is how the benchmark and the command line train the detector (the
    black-box classifier). Images are fed as `ComprehensiveAttributionModel`
    reads them (`keras_compattr.utils.to_unit_range`): arrays and
    `tf.data` datasets of `uint8` images or of floats in `0..255` (such
    as `keras.utils.image_dataset_from_directory` yields) are divided by
    255, so the detector learns on the `[0, 1]` images COMET shows it.
    After `fit`, the batch-norm statistics are
    re-estimated on the training data
    (`keras_compattr.models.data_statistics.refresh_classifier`: a short run
    leaves them far from the weights', and the classifier near chance in
    inference mode), then the accuracy in inference mode is measured on
    `validation_data` (else on the training data) and stored as
    `history.inference_accuracy`; a warning says when it is near chance
    (see `near_chance`), as a detector is then useless to COMET.

    Args:
        model: a Keras classifier returning logits.
        x: images `(N, H, W, C)`, or a dataset of `(images, labels)`:
            pixels in `[0, 1]`, `0..255` integers or `0..255` floats.
        y: labels `(N,)` for array `x`; `None` for a dataset.
        epochs: int.
        batch_size: int, for array inputs.
        learning_rate: float, the initial Adam learning rate, decayed to
            zero by a cosine; or a
            `keras.optimizers.schedules.LearningRateSchedule` (such as
            `WarmupStepDecay`), used as it is.
        validation_data: optional, as in `keras.Model.fit`.
        steps_per_epoch: int, batches per epoch of a dataset whose length
            is unknown (for the schedule); `None` reads it from `x`.
        callbacks: optional list of Keras callbacks.
        verbose: Keras verbosity of `fit`.
        refresh_batch_norm: bool, re-estimate the batch-norm statistics
            on (up to 2048 images of) `x` after `fit`.

    Returns:
        The Keras `History`, with the attributes `inference_accuracy`
        (float, NaN when no data could be read again),
        `inference_images` (the images it was measured on) and
        `inference_split` (`"validation"` or `"training"`).

    Example:

    >>> import numpy as np
    >>> from keras_compattr.training import small_classifier
    >>> from keras_compattr.training import train_classifier
    >>> model = small_classifier((32, 32, 3), 2)
    >>> history = train_classifier(model, np.random.rand(8, 32, 32, 3),
    ...                            np.arange(8) % 2, epochs=1, verbose=0)
    >>> sorted(history.history), history.inference_split
    (['accuracy', 'loss'], 'training')
    """
    from keras_compattr.models.data_statistics import refresh_classifier

    x, validation_data = _unit_range(x), _unit_range(validation_data)
    steps = _steps_per_epoch(x, y, batch_size, steps_per_epoch)
    model.compile(
        optimizer=keras.optimizers.Adam(
            _learning_rate(learning_rate, epochs, steps)
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = _fit(
        model, x, y, epochs, batch_size, validation_data, callbacks, verbose
    )
    if refresh_batch_norm:
        refresh_classifier(model, x)
    data, labels, split = x, y, "training"
    if isinstance(validation_data, (tuple, list)):
        data, labels, split = (
            validation_data[0],
            validation_data[1],
            ("validation"),
        )
    elif validation_data is not None:
        data, labels, split = validation_data, None, "validation"
    accuracy, count = float("nan"), 0
    if labels is not None or not isinstance(data, type(iter(()))):
        accuracy, count = inference_accuracy(
            model, data, labels, batch_size=batch_size, max_images=4096
        )
    history.inference_accuracy = accuracy
    history.inference_images = count
    history.inference_split = split
    num_classes = model.output_shape[-1]
    if count and near_chance(accuracy, num_classes):
        warnings.warn(
            f"The classifier has accuracy {accuracy:.0%} in inference mode "
            f"on {count} {split} images, near chance "
            f"({1 / num_classes:.0%} for {num_classes} classes): as "
            "COMET's detector it would make the detector term meaningless. "
            "Train it for more epochs, on more images, or with another "
            "learning rate.",
            stacklevel=2,
        )
    return history


def small_comet(
    input_shape, num_classes, detector, selector=None, predictor=None, **kwargs
):
    """COMET with the `"tiny"` selector and a narrow ResNet predictor.

    Args:
        input_shape: `(H, W, C)`.
        num_classes: int.
        detector: the trained classifier.
        selector: optional selector model (default: `"tiny"`, width 8).
        predictor: optional predictor model (default: `small_classifier`).
        **kwargs: `ComprehensiveAttributionModel` arguments such as
            `area_budget`, `hinge_reduction` or `detector_weight`.

    Returns:
        An uncompiled `keras_compattr.ComprehensiveAttributionModel`.
    """
    from keras_compattr.models import ComprehensiveAttributionModel
    from keras_compattr.models import build_selector

    if selector is None:
        selector = build_selector(input_shape, backbone="tiny", width=8)
    if predictor is None:
        predictor = small_classifier(input_shape, num_classes, "predictor")
    return ComprehensiveAttributionModel(
        selector=selector, predictor=predictor, detector=detector, **kwargs
    )


def train_comet(
    model,
    x,
    y=None,
    epochs=10,
    batch_size=64,
    learning_rate=2e-3,
    weight_decay=0.03,
    validation_data=None,
    steps_per_epoch=None,
    callbacks=None,
    verbose=2,
):
    """Compiles and fits COMET with AdamW.

    Args:
        model: a `ComprehensiveAttributionModel`.
        x, y, epochs, batch_size, validation_data, steps_per_epoch,
            callbacks, verbose: as for `train_classifier`.
        learning_rate: float, the initial AdamW learning rate, or a
            schedule, as for `train_classifier`.
        weight_decay: float, AdamW's weight decay.

    Returns:
        The Keras `History`; its keys are the named loss terms
        (`loss`, `predictor_loss`, `detector_loss`, `area_penalty`,
        `mask_area`, `accuracy`, `masked_out_accuracy`, and `val_*`).
    """
    steps = _steps_per_epoch(x, y, batch_size, steps_per_epoch)
    model.compile(
        optimizer=keras.optimizers.AdamW(
            _learning_rate(learning_rate, epochs, steps),
            weight_decay=weight_decay,
        )
    )
    return _fit(
        model, x, y, epochs, batch_size, validation_data, callbacks, verbose
    )
