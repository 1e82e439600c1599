"""The small-network training recipe shared by the demo, CLI and benchmark.

On the embedded 48 x 48 synthetic data this recipe trains a detector to
about 95% test accuracy in 8 epochs and COMET in 10, a few minutes each on
a 2-core CPU: narrow ResNets (`widths=(16, 32, 64)`, one block per stage),
the `"tiny"` selector, Adam / AdamW with a cosine decay to zero.
"""

import math

import keras

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

    >>> from keras_compattr.evaluation import small_classifier
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
    # Cosine decay to zero: the last epochs barely move the weights, so the
    # batch-norm moving statistics catch up with them. Without a known
    # epoch length the rate stays constant.
    if steps_per_epoch is None:
        return learning_rate
    return keras.optimizers.schedules.CosineDecay(
        learning_rate, max(1, epochs * steps_per_epoch)
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
    """Compiles and fits a classifier (logits) with Adam and cosine decay.

    This is how the benchmark and the command line train the detector (the
    black-box classifier).

    Args:
        model: a Keras classifier returning logits.
        x: images `(N, H, W, C)`, or a dataset of `(images, labels)`.
        y: labels `(N,)` for array `x`; `None` for a dataset.
        epochs: int.
        batch_size: int, for array inputs.
        learning_rate: float, initial Adam learning rate.
        validation_data: optional, as in `keras.Model.fit`.
        steps_per_epoch: int, batches per epoch of a dataset whose length
            is unknown (for the schedule); `None` reads it from `x`.
        callbacks: optional list of Keras callbacks.
        verbose: Keras verbosity of `fit`.

    Returns:
        The Keras `History`.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.evaluation import small_classifier
    >>> from keras_compattr.evaluation import train_classifier
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
    """Compiles and fits COMET with AdamW and cosine decay.

    Args:
        model: a `ComprehensiveAttributionModel`.
        x: images `(N, H, W, C)`, or a dataset of `(images, labels)`.
        y: labels `(N,)` for array `x`; `None` for a dataset.
        epochs: int.
        batch_size: int, for array inputs.
        learning_rate: float, initial AdamW learning rate.
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
