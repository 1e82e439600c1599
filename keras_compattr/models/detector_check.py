"""The check that the frozen detector was trained before COMET uses it."""

import warnings

import numpy as np

from keras_compattr.models.data_access import first_examples
from keras_compattr.utils.classifiers import model_outputs
from keras_compattr.utils.images import to_unit_range_numpy
from keras_compattr.utils.labels import integer_labels


def detector_accuracy(detector, images, labels, batch_size=32):
    """Accuracy of `detector` on full images, NaN for non-finite outputs.

    The implementation of `ComprehensiveAttributionModel.detector_accuracy`,
    which describes the arguments.
    """
    images = to_unit_range_numpy(images)
    labels = integer_labels(labels, len(images))
    outputs = np.concatenate(
        [
            model_outputs(detector, images[i : i + batch_size])
            for i in range(0, len(images), batch_size)
        ]
    )
    if not np.all(np.isfinite(outputs)):
        return float("nan")
    return float(np.mean(outputs.argmax(axis=-1) == labels))


def warn_if_untrained(detector, num_classes, x, y, batch_size=None):
    """Warns when the detector is near chance on the first training data.

    Args:
        detector: the frozen detector.
        num_classes: int, `K`.
        x: the training data, as `fit` takes it.
        y: the labels for an array `x`, else `None`.
        batch_size: int or `None`, images per forward pass.

    Returns:
        The `x` to train on (a generator is re-wrapped, see
        `keras_compattr.models.data_access.first_examples`).
    """
    images, labels, x = first_examples(x, y)
    if images is None or len(images) == 0 or num_classes < 2:
        return x
    accuracy = detector_accuracy(
        detector, images, labels, batch_size=batch_size or 32
    )
    chance = 1.0 / num_classes
    if np.isnan(accuracy):
        problem = "returns NaN or infinite outputs on the training images"
    elif accuracy <= 1.5 * chance:
        problem = (
            f"has accuracy {accuracy:.0%} on {len(images)} training "
            f"images (chance: {chance:.0%}), so it looks untrained"
        )
    else:
        return x
    warnings.warn(
        f"The detector {problem}. The detector penalty is then "
        "meaningless: the selector is rewarded for hiding evidence from "
        "a network that cannot see it. Train the detector on full "
        "images first (e.g. `detector.fit(images, labels)`), or set "
        "`detector_weight=0.0` for the no-detector ablation.",
        stacklevel=3,
    )
    return x
