"""Score any explainer with every metric, and format the results as a table."""

import time

import keras
import numpy as np

# (key, label, better): `better` is "higher", "lower" or "" (neither).
METRICS = (
    ("accuracy", "accuracy", "higher"),
    ("masked_out_accuracy", "detector acc. on masked-out", "lower"),
    ("judge_masked_out_accuracy", "independent judge on masked-out", ""),
    ("area", "selected area (map > 0.5)", ""),
    ("pxap", "PxAP", "higher"),
    ("part_coverage", "part coverage", "higher"),
    ("all_parts_covered", "both parts covered", "higher"),
    ("pointing_game", "pointing game", "higher"),
    ("attribution_mass", "attribution mass", "higher"),
    ("deletion_accuracy_5", "deletion acc. 5%", "lower"),
    ("deletion_accuracy_10", "deletion acc. 10%", "lower"),
    ("deletion_accuracy_20", "deletion acc. 20%", "lower"),
    ("keep_accuracy_50", "keep-50% acc.", "higher"),
    ("deletion_auc", "deletion AUC", "lower"),
    ("insertion_auc", "insertion AUC", "higher"),
    ("robustness_pixel_drop", "robustness, pixel drop", "higher"),
    ("robustness_background_swap", "robustness, background swap", "higher"),
    ("sparseness", "sparseness (Gini)", ""),
    ("images_per_second", "explain speed (images/s)", "higher"),
)
_PERCENT_KEYS = {"pxap", "robustness_pixel_drop", "robustness_background_swap"}
_RAW_KEYS = {"images_per_second"}


def unit_maps(maps):
    """Maps in `[0, 1]`: kept as they are if already there, else rescaled.

    Maps with values outside `[0, 1]` (such as signed integrated
    gradients) are taken in absolute value and divided by their per-image
    maximum, so every metric and threshold sees the same range.

    Args:
        maps: `(N, H, W)` (or `(N, H, W, 1)`) attribution maps.

    Returns:
        A float32 array `(N, H, W)` in `[0, 1]`.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.evaluation import unit_maps
    >>> unit_maps(np.array([[[-2.0, 1.0]]])).tolist()
    [[[1.0, 0.5]]]
    """
    maps = np.asarray(maps, "float32")
    if maps.ndim == 4 and maps.shape[-1] == 1:
        maps = maps[..., 0]
    if maps.size and (maps.min() < 0.0 or maps.max() > 1.0):
        maps = np.abs(maps)
        peak = maps.max(axis=(1, 2), keepdims=True)
        maps = np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)
    return maps


class CompiledClassifier(keras.layers.Layer):
    """Runs a classifier through its compiled predict function.

    The metrics and RISE call `model(images, training=False)` batch after
    batch; on TensorFlow such eager calls are several times slower than
    `model.predict_on_batch`, which this wrapper calls instead. The
    outputs are the same (NumPy arrays).

    Args:
        classifier: a Keras classifier.

    Example:

    ```python
    import numpy as np

    from keras_compattr.evaluation import CompiledClassifier
    from keras_compattr.explainers import RISE
    from keras_compattr.models import build_classifier

    classifier = build_classifier((32, 32, 3), 4, widths=(4, 8))
    rise = RISE(CompiledClassifier(classifier), num_masks=64)  # e.g. 2000
    maps = rise.explain(np.random.rand(2, 32, 32, 3), labels=[0, 1])
    ```
    """

    def __init__(self, classifier, **kwargs):
        super().__init__(name=f"compiled_{classifier.name}", **kwargs)
        self.classifier = classifier

    def __call__(self, images, training=False):
        return self.classifier.predict_on_batch(np.asarray(images, "float32"))


class _CachedExplainer:
    """Returns stored maps for the clean images; explains anything else."""

    def __init__(self, explain_fn, images, maps):
        self.explain_fn = explain_fn
        self.images = images
        self.maps = maps

    def __call__(self, images):
        images = np.asarray(images, "float32")
        if images.shape == self.images.shape and np.array_equal(
            images, self.images
        ):
            return self.maps
        return unit_maps(self.explain_fn(images))


def evaluate_explanations(
    explain_fn,
    images,
    labels,
    evaluator,
    masks=None,
    part_masks=None,
    swapped_images=None,
    fill=0.5,
    accuracy=None,
    batch_size=64,
    deletion_steps=20,
    robustness_images=None,
    return_maps=False,
):
    """Scores one explanation method with every metric that applies.

    `explain_fn(images) -> (N, H, W)` maps is called once on `images` (and
    timed: the explain speed includes everything it does), then once per
    robustness perturbation. Maps outside `[0, 1]` go through `unit_maps`
    first. Fidelity metrics run `evaluator` on the true `labels`.

    Args:
        explain_fn: callable `images -> maps`, e.g.
            `lambda x: explainer.explain(x, labels)` or `model.explain`;
            or an object with an `explain(images)` method (an explainer
            of `keras_compattr.explainers` such as a fitted `LearnedMask`,
            or a COMET model), called as `explain_fn.explain(images)`:
            post-hoc explainers then explain the predicted class.
        images: `(N, H, W, C)` float images in `[0, 1]`.
        labels: `(N,)` integer labels.
        evaluator: a Keras classifier (or any callable
            `evaluator(images, training=False) -> (N, K)`) scoring the
            perturbed images of the fidelity metrics; better independent
            of the explained model.
        masks: optional `(N, H, W)` ground truth: PxAP, pointing game,
            attribution mass.
        part_masks: optional `(N, P, H, W)` ground truth per part: part
            coverage and both-parts-covered.
        swapped_images: optional images on swapped backgrounds: background
            swap robustness.
        fill: float or per-channel sequence, the value of removed pixels.
        accuracy: optional float, the accuracy of the explained model,
            copied into the results.
        batch_size: int, images per forward pass of the evaluator.
        deletion_steps: int, steps of the insertion and deletion curves.
        robustness_images: int, use only the first this many images for
            robustness (it explains them again); `None` uses all.
        return_maps: bool, also return the maps.

    Returns:
        A dict of floats keyed as in `METRICS` (metrics that need absent
        ground truth are `None`), plus `"curves"`: the mean deletion and
        insertion curves, lists of `deletion_steps + 1` class
        probabilities. With `return_maps=True`, `(results, maps)`.

    Example:

    ```python
    from keras_compattr.datasets import synthetic
    from keras_compattr.evaluation import evaluate_explanations
    from keras_compattr.explainers import GradCAM
    from keras_compattr.models import build_classifier

    test = synthetic(num_images=8, image_size=32, seed=1)
    # (Train the classifier first: the numbers of an untrained one are
    # meaningless.)
    classifier = build_classifier((32, 32, 3), 4, widths=(4, 8))
    grad_cam = GradCAM(classifier)
    results = evaluate_explanations(
        lambda x: grad_cam.explain(x, test["labels"][: len(x)]),
        test["images"], test["labels"], evaluator=classifier,
        masks=test["masks"], part_masks=test["part_masks"],
    )
    ```
    """
    from keras_compattr import metrics

    # An explainer object; a `LearnedMask` is also a model, whose call
    # would return class probabilities rather than maps.
    explain_fn = getattr(explain_fn, "explain", explain_fn)
    images = np.asarray(images, "float32")
    labels = np.asarray(labels)
    start = time.perf_counter()
    maps = unit_maps(explain_fn(images))
    seconds = time.perf_counter() - start
    if maps.shape != images.shape[:3]:
        raise ValueError(
            f"`explain_fn` must return maps of shape {images.shape[:3]}. "
            f"Received shape {maps.shape}."
        )
    results = {key: None for key, _, _ in METRICS}
    results["accuracy"] = None if accuracy is None else float(accuracy)
    results["area"] = float(np.mean(maps > 0.5))
    results["sparseness"] = metrics.sparseness(maps)
    results["images_per_second"] = len(images) / max(seconds, 1e-9)
    if masks is not None:
        results["pxap"] = metrics.pxap(maps, masks)
        results["pointing_game"] = metrics.pointing_game(maps, masks)
        results["attribution_mass"] = metrics.attribution_mass(maps, masks)
    if part_masks is not None:
        covered = metrics.coverage(maps, part_masks)
        results["part_coverage"] = covered["part_coverage"]
        results["all_parts_covered"] = covered["all_parts_covered"]

    common = dict(fill=fill, batch_size=batch_size)
    for percent in (5, 10, 20):
        results[f"deletion_accuracy_{percent}"] = metrics.deletion_accuracy(
            evaluator, images, labels, maps, fraction=percent / 100, **common
        )
    results["keep_accuracy_50"] = metrics.keep_accuracy(
        evaluator, images, labels, maps, fraction=0.5, **common
    )
    curves = {}
    for name, function in (
        ("deletion", metrics.deletion_auc),
        ("insertion", metrics.insertion_auc),
    ):
        auc, per_image = function(
            evaluator,
            images,
            labels,
            maps,
            steps=deletion_steps,
            return_curves=True,
            **common,
        )
        results[f"{name}_auc"] = auc
        curves[name] = per_image.mean(axis=0).tolist()
    results["curves"] = curves

    count = len(images) if robustness_images is None else robustness_images
    subset = slice(0, count)
    cached = _CachedExplainer(explain_fn, images[subset], maps[subset])
    results["robustness_pixel_drop"] = metrics.robustness(
        cached, images[subset], "pixel_drop", fill=fill
    )
    if swapped_images is not None:
        results["robustness_background_swap"] = metrics.robustness(
            cached,
            images[subset],
            "background_swap",
            swapped_images=np.asarray(swapped_images)[subset],
        )
    return (results, maps) if return_maps else results


def _format_value(key, value):
    if value is None:
        return "–"
    if isinstance(value, (tuple, list)):  # (mean, std) over seeds
        mean, std = value
        if key in _RAW_KEYS:
            return f"{mean:.0f} ± {std:.0f}"
        if key in _PERCENT_KEYS:
            return f"{mean:.1f} ± {std:.1f}"
        return f"{100 * mean:.1f} ± {100 * std:.1f}"
    if key in _RAW_KEYS:
        return f"{value:.0f}"
    if key in _PERCENT_KEYS:
        return f"{value:.1f}"
    return f"{100 * value:.1f}"


def format_table(results, metrics=None):
    """A Markdown table: one row per metric, one column per method.

    Fractions (accuracies, coverage, areas, AUCs, Gini) are shown in
    percent; PxAP and robustness are already on a 0-100 scale; speed in
    images per second. An arrow tells which direction is better. A value
    given as `(mean, std)` (several seeds) prints as `mean ± std`.

    Args:
        results: dict `{method name: dict of metrics}` as returned by
            `evaluate_explanations`.
        metrics: optional subset of metric keys, in order.

    Returns:
        A str.

    Example:

    >>> from keras_compattr.evaluation import format_table
    >>> print(format_table({"COMET": {"pxap": 91.23}}, metrics=["pxap"]))
    | metric | COMET |
    |---|---|
    | PxAP ↑ | 91.2 |
    """
    rows = [m for m in METRICS if metrics is None or m[0] in metrics]
    if metrics is not None:
        rows.sort(key=lambda row: list(metrics).index(row[0]))
    names = list(results)
    lines = [
        "| metric | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    arrows = {"higher": " ↑", "lower": " ↓", "": ""}
    for key, label, better in rows:
        values = [_format_value(key, results[n].get(key)) for n in names]
        if all(v == "–" for v in values):
            continue
        lines.append(
            f"| {label}{arrows[better]} | " + " | ".join(values) + " |"
        )
    return "\n".join(lines)
