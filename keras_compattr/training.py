"""Training: the recipes the demo, command line and benchmark share.

- `small_classifier`, `small_comet`: narrow networks for small images.
- `train_classifier`, `train_comet`: compile and fit with Adam / AdamW.
- `WarmupStepDecay`: the reference run's learning-rate schedule (a linear
  warm-up, then step decay), for long runs on real data.
- `fit_verbosity`, `first_step_notices`: how `fit` reports its progress.

On the embedded 48 x 48 synthetic data this recipe trains a detector to
about 95% test accuracy in 8 epochs and COMET in 10, a few minutes each on
a 2-core CPU: narrow ResNets (`widths=(16, 32, 64)`, one block per stage),
the `"tiny"` selector, Adam / AdamW with a cosine decay to zero.
"""

import math
import sys

import keras

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
):
    """Compiles and fits a classifier (logits) with Adam.

    This is how the benchmark and the command line train the detector (the
    black-box classifier).

    Args:
        model: a Keras classifier returning logits.
        x: images `(N, H, W, C)`, or a dataset of `(images, labels)`.
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

    Returns:
        The Keras `History`.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.training import small_classifier
    >>> from keras_compattr.training import train_classifier
    >>> model = small_classifier((32, 32, 3), 2)
    >>> history = train_classifier(model, np.random.rand(8, 32, 32, 3),
    ...                            np.arange(8) % 2, epochs=1, verbose=0)
    >>> sorted(history.history)
    ['accuracy', 'loss']
    """
    steps = _steps_per_epoch(x, y, batch_size, steps_per_epoch)
    model.compile(
        optimizer=keras.optimizers.Adam(
            _learning_rate(learning_rate, epochs, steps)
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return _fit(
        model, x, y, epochs, batch_size, validation_data, callbacks, verbose
    )


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
        x: images `(N, H, W, C)`, or a dataset of `(images, labels)`.
        y: labels `(N,)` for array `x`; `None` for a dataset.
        epochs: int.
        batch_size: int, for array inputs.
        learning_rate: float, the initial AdamW learning rate, decayed to
            zero by a cosine; or a
            `keras.optimizers.schedules.LearningRateSchedule` (such as
            `WarmupStepDecay`), used as it is.
        weight_decay: float.
        validation_data: optional, as in `keras.Model.fit`.
        steps_per_epoch: int, batches per epoch of a dataset of unknown
            length; `None` reads it from `x`.
        callbacks: optional list of Keras callbacks.
        verbose: Keras verbosity of `fit`.

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
