"""Training figures: the named loss terms and mask area over epochs."""

import numpy as np

from keras_compattr.visualization.figures import new_figure

# (panel title, keys of the COMET logs shown there, y label).
_PANELS = (
    ("selector loss", ("loss",), "L_P + a * hinge + b * R"),
    (
        "cross-entropies",
        ("predictor_loss", "detector_loss"),
        "cross-entropy",
    ),
    ("mask area", ("mask_area", "area_penalty"), "share of the image"),
    ("accuracy", ("accuracy", "masked_out_accuracy"), "accuracy"),
    ("area multiplier", ("area_multiplier",), "lambda (log scale)"),
)
_LABELS = {
    "loss": "selector loss",
    "predictor_loss": "L_P: predictor, masked-in",
    "detector_loss": "L_D: detector, masked-out",
    "area_penalty": "R: area penalty",
    "mask_area": "mask area",
    "accuracy": "predictor (masked-in)",
    "masked_out_accuracy": "detector (masked-out)",
    "area_multiplier": "lambda, end of epoch",
}


def _as_dict(history):
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or not logs:
        raise ValueError(
            "`history` must be a Keras `History` or a non-empty dict "
            "{metric name: list of per-epoch values}."
        )
    return {k: np.asarray(v, "float64").reshape(-1) for k, v in logs.items()}


def _is_number(value):
    return isinstance(value, (int, float, np.number)) and not isinstance(
        value, bool
    )


def plot_history(history, area_budget=None, save_path=None):
    """The named loss terms, mask area and accuracies over epochs.

    For a COMET history (from `ComprehensiveAttributionModel.fit`) the
    figure has up to five panels: the selector loss; the two
    cross-entropies, `L_P` of the predictor on the masked-in image and
    `L_D` of the detector on the masked-out one; the mean mask area with
    the area penalty `R` on a `[0, 1]` scale (and a numeric area budget
    as a dotted line; `"auto"` named in the title); the two
    accuracies; and, with `area_budget="auto"`, the area multiplier
    `lambda` that the dual ascent reached at the end of each epoch.
    Validation values (`val_*`) are dashed. Any other history
    (e.g. a plain classifier's) gets one panel per metric name.

    Args:
        history: a Keras `History` or its `.history` dict.
        area_budget: optional float, drawn on the mask-area panel as a
            dotted line; `"auto"` (or another setting) is named in the
            panel's title instead.
        save_path: optional path; the figure is written there as PNG.

    Returns:
        The matplotlib `Figure`.

    Example:

    >>> from keras_compattr.visualization import plot_history
    >>> figure = plot_history({"loss": [2.0, 1.0], "mask_area": [0.5, 0.3],
    ...                        "accuracy": [0.4, 0.8]})
    >>> [ax.get_title() for ax in figure.axes]
    ['selector loss', 'mask area', 'accuracy']
    """
    logs = _as_dict(history)
    names = [k for k in logs if not k.startswith("val_")]
    comet = "mask_area" in logs
    if comet:
        panels = [
            (title, [k for k in keys if k in logs], ylabel)
            for title, keys, ylabel in _PANELS
        ]
        panels = [p for p in panels if p[1]]
    else:
        panels = [(name, [name], name) for name in names]
    epochs = max(len(v) for v in logs.values())
    figure = new_figure((3.6 * len(panels), 3.4), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    x = np.arange(1, epochs + 1)
    for ax, (title, keys, ylabel) in zip(axes, panels):
        for index, key in enumerate(keys):
            color = f"C{index}"
            label = _LABELS.get(key, key) if comet else key
            ax.plot(
                x[: len(logs[key])],
                logs[key],
                color=color,
                marker="o",
                markersize=3,
                label=label,
            )
            if f"val_{key}" in logs:
                values = logs[f"val_{key}"]
                ax.plot(
                    x[: len(values)],
                    values,
                    color=color,
                    linestyle="--",
                    marker="o",
                    markersize=3,
                    label=f"{label}, val.",
                )
        if title == "mask area" and _is_number(area_budget):
            ax.axhline(
                area_budget, color="gray", linestyle=":", label="area budget"
            )
        elif title == "mask area" and area_budget is not None:
            # "auto" has no budget line: a string on the y axis would
            # make matplotlib read it as a category and drop the scale.
            title = f"mask area (budget {area_budget})"
        if title.startswith("mask area") or title == "accuracy":
            ax.set_ylim(0, 1.02)
        elif title == "area multiplier":
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch", fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.grid(alpha=0.3)
        if epochs <= 12:
            ax.set_xticks(x)
        ax.legend(fontsize=7)
    if save_path is not None:
        figure.savefig(save_path, dpi=110, bbox_inches="tight")
    return figure
