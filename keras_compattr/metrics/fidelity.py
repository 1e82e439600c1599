"""Fidelity metrics: does removing what a map points at change the output?

All functions run a classifier (the "evaluator") on perturbed copies of the
images, in batches of `batch_size` images, so memory stays bounded by one
batch whatever the number of images or steps. Pixels are ranked by
attribution (ties broken at random with a fixed seed) and a removed pixel is
set to the fill value `q` in every channel.

Inputs are checked before any forward pass, as the model checks its own:
images `(N, H, W, C)` with finite pixels, floats in `[0, 1]` (not 0..255)
or integers in `0..255`; labels in `[0, K)` for the evaluator's `K`
classes; `fill` in `[0, 1]`. A mistake raises a `ValueError` or
`TypeError` that names the fix.
"""

import numpy as np
from keras import ops

from keras_compattr.losses.objective import log_probabilities
from keras_compattr.metrics.maps import as_maps
from keras_compattr.utils.argument_checks import check_number
from keras_compattr.utils.classifiers import check_batch_size
from keras_compattr.utils.classifiers import check_images
from keras_compattr.utils.classifiers import class_labels
from keras_compattr.utils.classifiers import fill_values
from keras_compattr.utils.classifiers import input_shape
from keras_compattr.utils.classifiers import model_outputs

OUTPUT_KINDS = ("auto", "logits", "probabilities")


def _prepare(model, images, labels, attributions, fill, batch_size, seed):
    check_number(seed, "seed", low=0, integer=True)
    images = check_images(images, image_shape=input_shape(model))
    maps = as_maps(attributions, "attributions")
    if maps.shape != images.shape[:3]:
        raise ValueError(
            "`attributions` must have shape (N, H, W) matching `images` "
            f"{images.shape}. Received shape {maps.shape}."
        )
    if not np.all(np.isfinite(maps)):
        raise ValueError("`attributions` must be finite.")
    fill = fill_values(fill, images.shape[-1])
    batch_size = check_batch_size(batch_size)
    labels = class_labels(model, images, labels, batch_size)
    return images, labels, maps, fill, batch_size


def _pixel_ranks(maps, seed, first_index):
    """Rank of each pixel, 0 for the most attributed, `(N, H * W)`.

    Ties are broken by noise drawn for each image from `seed` and the
    image's index in the whole array (`first_index` for `maps[0]`), so a
    ranking does not depend on how the images are batched.
    """
    flat = maps.reshape(len(maps), -1)
    tie_break = np.stack(
        [
            np.random.default_rng((seed, first_index + i)).random(flat.shape[1])
            for i in range(len(flat))
        ]
    )
    # np.lexsort sorts by the last key first.
    order = np.lexsort((tie_break, -flat), axis=-1)
    return np.argsort(order, axis=-1)


def _class_probabilities(model, batch, labels, output_kind):
    outputs = model_outputs(model, batch)
    probabilities = ops.convert_to_numpy(
        ops.exp(log_probabilities(outputs, output_kind))
    )
    return probabilities[np.arange(len(labels)), labels]


def _perturb(images, ranks, count, fill, keep):
    """Sets pixels ranked `< count` (or, with `keep`, the others) to fill."""
    top = (ranks < count).reshape(images.shape[:3] + (1,))
    replaced = ~top if keep else top
    return np.where(replaced, fill, images).astype("float32")


def _causal_auc(
    mode,
    model,
    images,
    labels,
    attributions,
    steps,
    fill,
    batch_size,
    output_kind,
    return_curves,
    seed,
):
    """Mean deletion or insertion AUC (`mode`), with the curves if asked."""
    if output_kind not in OUTPUT_KINDS:
        raise ValueError(
            f"`output_kind` must be one of {OUTPUT_KINDS}. "
            f"Received: output_kind={output_kind!r}"
        )
    steps = check_number(steps, "steps", low=1, integer=True)
    images, labels, maps, fill, batch_size = _prepare(
        model, images, labels, attributions, fill, batch_size, seed
    )
    num_pixels = images.shape[1] * images.shape[2]
    counts = np.round(np.linspace(0, num_pixels, steps + 1)).astype(int)
    curves = np.zeros((len(images), len(counts)), "float32")
    for start in range(0, len(images), batch_size):
        stop = start + batch_size
        batch = images[start:stop]
        ranks = _pixel_ranks(maps[start:stop], seed, start)
        for step, count in enumerate(counts):
            # Deletion replaces the top pixels; insertion keeps only them.
            perturbed = _perturb(batch, ranks, count, fill, mode == "insertion")
            curves[start:stop, step] = _class_probabilities(
                model, perturbed, labels[start:stop], output_kind
            )
    fractions = counts / num_pixels
    areas = 0.5 * (curves[:, 1:] + curves[:, :-1]) * np.diff(fractions)
    auc = float(areas.sum(axis=1).mean())
    return (auc, curves) if return_curves else auc


def deletion_auc(
    model,
    images,
    labels,
    attributions,
    steps=20,
    fill=0.5,
    batch_size=32,
    output_kind="auto",
    return_curves=False,
    seed=0,
):
    """Area under the class-score curve as the top pixels are removed.

    The most attributed pixels are set to `fill` in `steps` equal steps,
    from none (the image) to all (a blank image). At each step the
    evaluator's probability of the label is recorded; the curve is
    integrated with the trapezoid rule over the removed fraction in
    `[0, 1]`. A faithful map removes the evidence first, so the score drops
    early: **lower is better**.

    Args:
        model: a Keras classifier (the evaluator) mapping images to `(N, K)`
            logits or probabilities.
        images: `(N, H, W, C)` images, float in `[0, 1]` or integer `0..255`.
        labels: `(N,)` integer or `(N, K)` one-hot labels; `None` uses the
            evaluator's prediction on the clean images.
        attributions: `(N, H, W)` maps; higher means more important.
        steps: int, number of steps; curves have `steps + 1` points.
        fill: float or per-channel sequence in `[0, 1]`, the value `q` of a
            removed pixel.
        batch_size: int, images perturbed and evaluated at a time (one
            forward pass of `batch_size` images per step).
        output_kind: `"auto"` (softmax of logits; rows already in `[0, 1]`
            that sum to one are used as probabilities), `"logits"` or
            `"probabilities"`.
        return_curves: bool, also return the per-image curves.
        seed: non-negative int, seed of the random tie-breaking between
            equal scores (drawn per image from the seed and the image's
            index, so results do not depend on `batch_size`).

    Returns:
        The mean AUC over images as a Python float in `[0, 1]`; with
        `return_curves=True`, a tuple `(auc, curves)` where `curves` is a
        float32 array `(N, steps + 1)`.

    Example:

    >>> import keras, numpy as np
    >>> from keras_compattr.metrics import deletion_auc
    >>> model = keras.Sequential(
    ...     [keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...      keras.layers.Dense(2)])
    >>> images = np.random.rand(2, 8, 8, 3).astype("float32")
    >>> auc = deletion_auc(model, images, [0, 1], images.mean(-1), steps=4)
    >>> 0.0 <= auc <= 1.0
    True

    Reference:
        [Petsiuk et al., 2018](https://arxiv.org/abs/1806.07421) (RISE),
        as in Xplique `Deletion`. Deviations: the score is the softmax
        probability (Xplique uses the raw output unless told otherwise),
        step sizes are rounded rather than floored, and ties in the map are
        broken at random rather than by pixel index.
    """
    arguments = (model, images, labels, attributions, steps, fill, batch_size)
    return _causal_auc("deletion", *arguments, output_kind, return_curves, seed)


def insertion_auc(
    model,
    images,
    labels,
    attributions,
    steps=20,
    fill=0.5,
    batch_size=32,
    output_kind="auto",
    return_curves=False,
    seed=0,
):
    """Area under the class-score curve as the top pixels are inserted.

    Starts from a blank image (every pixel set to `fill`) and restores the
    most attributed pixels first, in `steps` equal steps, up to the whole
    image; trapezoid AUC over the inserted fraction in `[0, 1]`. A faithful
    map restores the evidence first: **higher is better**.

    Args:
        model, images, labels, attributions, steps, batch_size,
            output_kind, return_curves, seed: as for
            `keras_compattr.metrics.deletion_auc`.
        fill: float or per-channel sequence in `[0, 1]`, the value of a
            missing pixel (the whole start image).

    Returns:
        The mean AUC as a Python float in `[0, 1]`; with
        `return_curves=True`, `(auc, curves)` with `curves` `(N, steps + 1)`,
        from the blank image (first point) to the full image (last).

    Example:

    A classifier that returns probabilities, and the curves themselves:

    >>> import keras, numpy as np
    >>> from keras_compattr.metrics import insertion_auc
    >>> inputs = keras.Input((8, 8, 3))
    >>> pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    >>> probabilities = keras.layers.Dense(2, activation="softmax")(pooled)
    >>> evaluator = keras.Model(inputs, probabilities)
    >>> batch = np.random.rand(2, 8, 8, 3).astype("float32")
    >>> auc, curves = insertion_auc(
    ...     evaluator, batch, [0, 1], batch.max(-1), steps=4,
    ...     output_kind="probabilities", return_curves=True)
    >>> curves.shape
    (2, 5)

    Reference:
        [Petsiuk et al., 2018](https://arxiv.org/abs/1806.07421) (RISE),
        as in Xplique `Insertion`. Deviations: the start image is the
        constant `fill` (the paper uses a blurred image; Xplique a constant
        baseline too), the score is the softmax probability, and ties are
        broken at random.
    """
    arguments = (model, images, labels, attributions, steps, fill, batch_size)
    return _causal_auc(
        "insertion", *arguments, output_kind, return_curves, seed
    )


def _top_fraction_accuracy(
    model, images, labels, attributions, fraction, fill, batch_size, keep, seed
):
    fraction = check_number(fraction, "fraction", 0.0, 1.0)
    images, labels, maps, fill, batch_size = _prepare(
        model, images, labels, attributions, fill, batch_size, seed
    )
    count = int(round(fraction * images.shape[1] * images.shape[2]))
    correct = 0
    for start in range(0, len(images), batch_size):
        stop = start + batch_size
        ranks = _pixel_ranks(maps[start:stop], seed, start)
        perturbed = _perturb(images[start:stop], ranks, count, fill, keep)
        predictions = model_outputs(model, perturbed).argmax(axis=-1)
        correct += int(np.sum(predictions == labels[start:stop]))
    return correct / len(images)


def deletion_accuracy(
    model,
    images,
    labels,
    attributions,
    fraction=0.1,
    fill=0.5,
    batch_size=32,
    seed=0,
):
    """Evaluator accuracy after removing the top `fraction` of pixels.

    The `round(fraction * H * W)` most attributed pixels of each image are
    set to `fill`; the evaluator then classifies the result. A faithful map
    removes the evidence, so accuracy falls: **lower is better**. The paper
    reports `fraction` in `{0.05, 0.1, 0.2}`.

    Args:
        model, images, labels, attributions, fill, seed: as for
            `keras_compattr.metrics.deletion_auc`.
        fraction: float in `[0, 1]`, share of pixels removed.
        batch_size: int, images evaluated at a time.

    Returns:
        A Python float in `[0, 1]`.

    Example:

    Without labels, the evaluator's own predictions on the clean images
    are the labels:

    >>> import keras, numpy as np
    >>> from keras_compattr.metrics import deletion_accuracy
    >>> evaluator = keras.Sequential(
    ...     [keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 8)])
    >>> evaluator.add(keras.layers.Flatten())
    >>> batch = np.random.rand(4, 8, 8, 3).astype("float32")
    >>> accuracy = deletion_accuracy(
    ...     evaluator, batch, None, batch.std(-1), fraction=0.2)
    >>> accuracy in (0.0, 0.25, 0.5, 0.75, 1.0)
    True

    Reference:
        COMET, [Zhang et al., 2024](https://arxiv.org/abs/2407.19308),
        fidelity protocol (top-p pixels set to `q`).
    """
    arguments = (model, images, labels, attributions, fraction, fill)
    return _top_fraction_accuracy(*arguments, batch_size, False, seed)


def keep_accuracy(
    model,
    images,
    labels,
    attributions,
    fraction=0.5,
    fill=0.5,
    batch_size=32,
    seed=0,
):
    """Evaluator accuracy when only the top `fraction` of pixels is kept.

    Every pixel outside the `round(fraction * H * W)` most attributed ones
    is set to `fill` ("mask-in" accuracy). A faithful map keeps the
    evidence: **higher is better**.

    Args:
        model, images, labels, attributions, fill, batch_size, seed: as
            for `keras_compattr.metrics.deletion_accuracy`.
        fraction: float in `[0, 1]`, share of pixels kept.

    Returns:
        A Python float in `[0, 1]`.

    Example:

    Keeping every pixel leaves the evaluator's accuracy as it is:

    >>> import numpy as np
    >>> from keras_compattr.metrics import keep_accuracy
    >>> from keras_compattr.models import build_classifier
    >>> classifier = build_classifier((16, 16, 3), 3, widths=(4,))
    >>> images = np.random.rand(6, 16, 16, 3).astype("float32")
    >>> labels = classifier.predict(images, verbose=0).argmax(-1)
    >>> keep_accuracy(classifier, images, labels, images[..., 0], fraction=1.0)
    1.0

    Reference:
        COMET, [Zhang et al., 2024](https://arxiv.org/abs/2407.19308),
        keep-top-50% ("mask-in") accuracy.
    """
    arguments = (model, images, labels, attributions, fraction, fill)
    return _top_fraction_accuracy(*arguments, batch_size, True, seed)
