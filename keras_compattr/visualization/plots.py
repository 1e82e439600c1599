"""Matplotlib figures of attribution masks."""

import numpy as np

from keras_compattr.utils.images import to_unit_range_numpy
from keras_compattr.visualization.figures import image_maps
from keras_compattr.visualization.figures import label_name
from keras_compattr.visualization.figures import new_figure


def _outline(ax, mask):
    """Outlines where `mask >= 0.5`: cyan on a dark edge, seen on any image."""
    if not mask.min() < 0.5 <= mask.max():
        return None  # nothing (or everything) to outline
    from matplotlib import patheffects

    contours = ax.contour(mask, levels=[0.5], colors="cyan", linewidths=1.2)
    contours.set_path_effects(
        [patheffects.withStroke(linewidth=2.6, foreground="black")]
    )
    return contours


def plot_explanations(
    images,
    masks,
    labels=None,
    predictions=None,
    class_names=None,
    fill_value=0.5,
    masked_out_confidence=None,
    gt_masks=None,
    max_images=8,
    title=None,
    save_path=None,
):
    """A grid with, per image: the image, the mask, masked-in, masked-out.

    Args:
        images: `(N, H, W, C)` images (float in `[0, 1]` or `uint8`).
        masks: `(N, H, W)` masks in `[0, 1]`.
        labels: optional `(N,)` true classes.
        predictions: optional `(N,)` predicted classes or `(N, K)` class
            probabilities.
        class_names: optional list of class names.
        fill_value: float or per-channel values for removed pixels.
        masked_out_confidence: optional `(N,)` detector probability of the
            true class on the masked-out image (low means the mask left no
            evidence out).
        gt_masks: optional `(N, H, W)` ground truth (the class evidence),
            outlined in cyan on the image and on the mask, so that a reader
            can tell the evidence from distractors and see whether the
            mask covers it. The image column is then headed "image
            (evidence outlined)".
        max_images: int, at most this many rows.
        title: optional str, written above the grid.
        save_path: optional path; the figure is written there as PNG.

    Returns:
        The matplotlib `Figure`.

    Example:

    The embedded data brings its evidence masks; a mask that keeps every
    pixel stands in for a model's here:

    >>> from keras_compattr.datasets import synthetic
    >>> from keras_compattr.visualization import plot_explanations
    >>> data = synthetic(num_images=2, image_size=32, seed=0)
    >>> figure = plot_explanations(data["images"], data["masks"] * 0 + 1,
    ...                            gt_masks=data["masks"])
    >>> len(figure.axes)  # 2 rows x 4 panels + colour bar
    9
    >>> figure.axes[0].get_title()
    'image (evidence outlined)'
    """
    images = to_unit_range_numpy(images)[:max_images]
    masks = image_maps(masks, images, "`masks`")
    evidence = None
    if gt_masks is not None:
        evidence = image_maps(gt_masks, images, "`gt_masks`")
    confidences = None
    if predictions is not None:
        predictions = np.asarray(predictions)
        if predictions.ndim == 2:
            confidences = predictions.max(axis=-1)
            predictions = predictions.argmax(axis=-1)
    fill = np.broadcast_to(
        np.asarray(fill_value, "float32"), (images.shape[-1],)
    )
    m = masks[..., None]
    masked_in = m * images + (1 - m) * fill
    masked_out = (1 - m) * images + m * fill

    rows = len(images)
    figure = new_figure(
        (8.4, 2.05 * rows + (0.7 if title else 0.4)), layout="constrained"
    )
    axes = figure.subplots(rows, 4, squeeze=False)
    headers = (
        "image" if evidence is None else "image (evidence outlined)",
        "mask",
        "masked-in",
        "masked-out",
    )
    for row in range(rows):
        panels = (images[row], None, masked_in[row], masked_out[row])
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 1:
                ax.imshow(images[row].mean(axis=-1), cmap="gray")
                shown = ax.imshow(
                    masks[row], cmap="inferno", vmin=0, vmax=1, alpha=0.75
                )
            else:
                ax.imshow(np.clip(panel, 0, 1).squeeze())
            if col in (0, 1) and evidence is not None:
                _outline(ax, evidence[row])
            if row == 0:
                ax.set_title(headers[col], fontsize=10)
        text = []
        if labels is not None:
            text.append(f"true: {label_name(labels[row], class_names)}")
        if predictions is not None:
            predicted = f"pred: {label_name(predictions[row], class_names)}"
            if confidences is not None:
                predicted += f" ({confidences[row]:.2f})"
            text.append(predicted)
        axes[row, 0].set_ylabel("\n".join(text), fontsize=9)
        axes[row, 1].set_xlabel(f"area {masks[row].mean():.2f}", fontsize=9)
        if masked_out_confidence is not None:
            axes[row, 3].set_xlabel(
                f"detector p(true) {float(masked_out_confidence[row]):.2f}",
                fontsize=9,
            )
    colorbar = figure.colorbar(
        shown, ax=axes.ravel().tolist(), shrink=min(1.0, 3.0 / rows), pad=0.01
    )
    colorbar.set_label("mask value")
    if title is not None:
        figure.suptitle(title, fontsize=11)
    if save_path is not None:
        figure.savefig(save_path, dpi=110, bbox_inches="tight")
    return figure
