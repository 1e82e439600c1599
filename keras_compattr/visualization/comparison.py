"""Figures that compare methods: maps side by side, fidelity curves."""

import numpy as np

from keras_compattr.utils.images import to_unit_range_numpy
from keras_compattr.visualization.figures import image_maps
from keras_compattr.visualization.figures import label_name
from keras_compattr.visualization.figures import new_figure

MAP_CMAP = "inferno"


def _wrap(title, width=12):
    """Puts a long method name's parenthesis on a second line."""
    if len(title) > width and " (" in title:
        return title.replace(" (", "\n(", 1)
    return title


def plot_comparison(
    images,
    maps,
    labels=None,
    class_names=None,
    gt_masks=None,
    max_images=6,
    normalize=True,
    cmap=MAP_CMAP,
    save_path=None,
):
    """Maps of several methods side by side, on one colour scale.

    One row per image: the image, then one panel per method with its map
    over a grey copy of the image. Every panel uses the colour scale
    `[0, 1]`, so a faint map looks faint.

    Args:
        images: `(N, H, W, C)` images (float in `[0, 1]` or `uint8`).
        maps: dict `{method name: (N, H, W) maps}`, in column order.
        labels: optional `(N,)` true classes, shown on the left.
        class_names: optional list of class names.
        gt_masks: optional `(N, H, W)` ground truth, outlined in cyan on
            the image panel.
        max_images: int, at most this many rows.
        normalize: bool, pass maps outside `[0, 1]` through
            `keras_compattr.evaluation.unit_maps` (absolute value divided by
            the per-image maximum); maps already in `[0, 1]` are unchanged.
        cmap: str, matplotlib colour map of the maps.
        save_path: optional path; the figure is written there as PNG.

    Returns:
        The matplotlib `Figure`.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.visualization import plot_comparison
    >>> images = np.random.rand(2, 32, 32, 3)
    >>> figure = plot_comparison(
    ...     images, {"COMET": np.random.rand(2, 32, 32),
    ...              "Grad-CAM": np.random.rand(2, 32, 32)})
    >>> len(figure.axes)  # 2 rows x 3 panels + colour bar
    7
    """
    from keras_compattr.evaluation.report import unit_maps

    if not isinstance(maps, dict) or not maps:
        raise ValueError(
            "`maps` must be a non-empty dict {method name: (N, H, W) maps}."
        )
    images = to_unit_range_numpy(images)[:max_images]
    if images.ndim != 4:
        raise ValueError(
            f"`images` must have shape (N, H, W, C). Received {images.shape}."
        )
    shown_maps = {}
    for method, method_maps in maps.items():
        method_maps = image_maps(method_maps, images, f"The maps of {method!r}")
        shown_maps[method] = (
            unit_maps(method_maps) if normalize else method_maps
        )

    rows, cols = len(images), len(shown_maps) + 1
    figure = new_figure(
        (1.6 * cols + 0.9, 1.6 * rows + 0.5), layout="constrained"
    )
    axes = figure.subplots(rows, cols, squeeze=False)
    shown = None
    for row in range(rows):
        gray = images[row].mean(axis=-1)
        ax = axes[row, 0]
        ax.imshow(np.clip(images[row], 0, 1).squeeze())
        if gt_masks is not None:
            ax.contour(
                np.asarray(gt_masks)[row], levels=[0.5], colors="cyan",
                linewidths=1.0,
            )  # fmt: skip
        if labels is not None:
            ax.set_ylabel(label_name(labels[row], class_names), fontsize=9)
        for col, (method, method_maps) in enumerate(shown_maps.items(), 1):
            ax = axes[row, col]
            ax.imshow(gray, cmap="gray", vmin=0, vmax=1)
            shown = ax.imshow(
                method_maps[row], cmap=cmap, vmin=0, vmax=1, alpha=0.8
            )
            if row == 0:
                ax.set_title(_wrap(method), fontsize=8.5)
        if row == 0:
            axes[0, 0].set_title("image", fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    colorbar = figure.colorbar(
        shown, ax=axes.ravel().tolist(), shrink=min(1.0, 3.0 / rows), pad=0.01
    )
    colorbar.set_label("attribution (scaled to [0, 1])", fontsize=9)
    if save_path is not None:
        figure.savefig(save_path, dpi=110, bbox_inches="tight")
    return figure


def plot_curves(curves, kind=None, save_path=None):
    """Insertion and / or deletion curves, one line per method.

    Args:
        curves: dict `{method name: curves}` where `curves` is either a
            dict `{"deletion": curve, "insertion": curve}` (as in the
            `"curves"` entry of
            `keras_compattr.evaluation.evaluate_explanations`) or one
            curve. A curve is a sequence of class probabilities from 0% to
            100% of the pixels (or an `(N, steps + 1)` array of per-image
            curves, averaged here).
        kind: `"deletion"` or `"insertion"` to label a plot of single
            curves; `None` for dicts (one panel per kind found).
        save_path: optional path; the figure is written there as PNG.

    Returns:
        The matplotlib `Figure`.

    Example:

    >>> from keras_compattr.visualization import plot_curves
    >>> figure = plot_curves(
    ...     {"COMET": {"deletion": [0.9, 0.3, 0.2], "insertion": [0.2, 0.8,
    ...      0.9]}, "Saliency": {"deletion": [0.9, 0.7, 0.2],
    ...      "insertion": [0.2, 0.4, 0.9]}})
    >>> [ax.get_title() for ax in figure.axes]
    ['deletion (lower AUC is better)', 'insertion (higher AUC is better)']
    """
    if not isinstance(curves, dict) or not curves:
        raise ValueError("`curves` must be a non-empty dict {method: curves}.")
    if kind is not None and kind not in ("deletion", "insertion"):
        raise ValueError(
            "`kind` must be 'deletion', 'insertion' or None. "
            f"Received {kind!r}."
        )
    per_kind = {}
    for method, value in curves.items():
        if isinstance(value, dict):
            items = value.items()
        else:
            if kind is None:
                raise ValueError(
                    "Pass `kind='deletion'` or `kind='insertion'` for curves "
                    "given as arrays."
                )
            items = [(kind, value)]
        for curve_kind, curve in items:
            curve = np.asarray(curve, "float64")
            if curve.ndim == 2:
                curve = curve.mean(axis=0)
            if curve.ndim != 1 or len(curve) < 2:
                raise ValueError(
                    f"The {curve_kind} curve of {method!r} must have at "
                    f"least 2 points. Received shape {curve.shape}."
                )
            per_kind.setdefault(curve_kind, {})[method] = curve
    kinds = [k for k in ("deletion", "insertion") if k in per_kind]
    if not kinds:
        raise ValueError("No 'deletion' or 'insertion' curve in `curves`.")

    figure = new_figure((4.8 * len(kinds), 4.6))
    axes = figure.subplots(1, len(kinds), squeeze=False)[0]
    better = {"deletion": "lower", "insertion": "higher"}
    for ax, curve_kind in zip(axes, kinds):
        for method, curve in per_kind[curve_kind].items():
            fractions = np.linspace(0.0, 1.0, len(curve))
            area = float(
                np.sum(0.5 * (curve[1:] + curve[:-1]) * np.diff(fractions))
            )
            ax.plot(
                100 * fractions, curve, label=f"{method} ({area:.2f})", lw=1.6
            )
        ax.set_title(
            f"{curve_kind} ({better[curve_kind]} AUC is better)", fontsize=10
        )
        verb = "removed" if curve_kind == "deletion" else "inserted"
        ax.set_xlabel(f"% of most attributed pixels {verb}", fontsize=9)
        ax.set_ylabel("probability of the true class", fontsize=9)
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(
            fontsize=7.5,
            title="method (AUC)",
            title_fontsize=8,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.2),
            borderaxespad=0.0,
            ncol=2 if len(per_kind[curve_kind]) > 4 else 1,
        )
    # Room below the axes for the legends (tight_layout ignores them).
    figure.subplots_adjust(
        left=0.08, right=0.98, top=0.93, bottom=0.42, wspace=0.28
    )
    if save_path is not None:
        figure.savefig(save_path, dpi=110, bbox_inches="tight")
    return figure
