import os

import numpy as np
import pytest
from matplotlib.figure import Figure

from keras_compattr.visualization import ExplanationMonitor
from keras_compattr.visualization import plot_comparison
from keras_compattr.visualization import plot_curves
from keras_compattr.visualization import plot_explanations
from keras_compattr.visualization import plot_history

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == PNG


def test_plot_explanations_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    images = (rng.uniform(0, 1, (3, 32, 32, 3)) * 255).astype("uint8")
    masks = rng.uniform(0, 1, (3, 32, 32))
    path = os.path.join(tmp_path, "grid.png")
    figure = plot_explanations(
        images,
        masks,
        labels=[0, 1, 2],
        predictions=np.eye(3)[[0, 2, 2]] * 0.9 + 0.1 / 3,
        class_names=["a", "b", "c"],
        masked_out_confidence=[0.1, 0.2, 0.3],
        gt_masks=masks > 0.5,
        title="epoch 1",
        save_path=path,
    )
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 3 * 4 + 1  # panels and the colour bar
    assert figure.axes[0].get_ylabel() == "true: a\npred: a (0.93)"
    assert figure.axes[3].get_xlabel() == "detector p(true) 0.10"
    assert _is_png(path)


def _contours(ax):
    from matplotlib.contour import ContourSet

    return [c for c in ax.collections if isinstance(c, ContourSet)]


def test_plot_explanations_outlines_the_evidence(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (3, 16, 16, 3))
    evidence = np.zeros((3, 16, 16, 1))
    evidence[:, 2:6, 2:6] = 1  # one evidence tile per image ...
    evidence[2] = 0  # ... but none in the last one
    figure = plot_explanations(
        images,
        rng.uniform(0, 1, (3, 16, 16)),
        gt_masks=evidence,
        save_path=os.path.join(tmp_path, "grid.png"),
    )
    axes = np.array(figure.axes[:12]).reshape(3, 4)
    assert axes[0, 0].get_title() == "image (evidence outlined)"
    for row in range(2):
        # Outlined on the image and on the mask, nowhere else.
        assert [len(_contours(ax)) for ax in axes[row]] == [1, 1, 0, 0]
        (outline,) = _contours(axes[row, 0])
        assert list(outline.levels) == [0.5]
        assert outline.get_path_effects()  # a dark edge around the line
    assert [len(_contours(ax)) for ax in axes[2]] == [0, 0, 0, 0]
    # Without ground truth: no outline, the plain header.
    plain = plot_explanations(images, rng.uniform(0, 1, (3, 16, 16)))
    assert plain.axes[0].get_title() == "image"
    assert not any(_contours(ax) for ax in plain.axes)
    with pytest.raises(ValueError, match="gt_masks"):
        plot_explanations(images, evidence[..., 0], gt_masks=evidence[:2])


def test_plot_explanations_rejects_mismatched_masks():
    with pytest.raises(ValueError, match="masks"):
        plot_explanations(np.zeros((2, 8, 8, 3)), np.zeros((2, 4, 4)))


def test_plot_comparison_shares_one_colour_scale(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (2, 16, 16, 3))
    signed = rng.normal(0, 5, (2, 16, 16))  # like integrated gradients
    path = os.path.join(tmp_path, "comparison.png")
    figure = plot_comparison(
        images,
        {"COMET": rng.uniform(0, 0.5, (2, 16, 16)), "IG": signed},
        labels=[1, 0],
        class_names=["cat", "dog"],
        gt_masks=np.ones((2, 16, 16)),
        save_path=path,
    )
    panels = [ax for ax in figure.axes if ax.images]
    assert len(panels) == 2 * 3
    maps = [ax.images[-1] for ax in panels if len(ax.images) == 2]
    # Every map is drawn on [0, 1]; a faint map stays faint (not stretched).
    assert all(image.get_clim() == (0.0, 1.0) for image in maps)
    assert maps[0].get_array().max() <= 0.5
    assert np.isclose(maps[1].get_array().max(), 1.0)  # |IG| / max
    assert [ax.get_title() for ax in panels[:3]] == ["image", "COMET", "IG"]
    assert panels[0].get_ylabel() == "dog"
    assert _is_png(path)


def test_plot_comparison_checks_its_inputs():
    images = np.zeros((2, 8, 8, 3))
    with pytest.raises(ValueError, match="dict"):
        plot_comparison(images, np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="'COMET'"):
        plot_comparison(images, {"COMET": np.zeros((2, 4, 4))})


def test_plot_curves_labels_each_method_with_its_auc(tmp_path):
    path = os.path.join(tmp_path, "curves.png")
    figure = plot_curves(
        {
            "A": {"deletion": [1.0, 0.0, 0.0], "insertion": [0.0, 1.0, 1.0]},
            "B": {"deletion": [1.0, 1.0, 1.0], "insertion": [0.0, 0.0, 1.0]},
        },
        save_path=path,
    )
    deletion, insertion = figure.axes
    labels = [t.get_text() for t in deletion.get_legend().get_texts()]
    assert labels == ["A (0.25)", "B (1.00)"]
    labels = [t.get_text() for t in insertion.get_legend().get_texts()]
    assert labels == ["A (0.75)", "B (0.25)"]
    assert _is_png(path)
    # Per-image curves are averaged; arrays need a kind.
    figure = plot_curves({"A": np.array([[1, 0], [0, 0]])}, kind="deletion")
    assert figure.axes[0].get_legend().get_texts()[0].get_text() == "A (0.25)"
    with pytest.raises(ValueError, match="kind"):
        plot_curves({"A": [1.0, 0.0]})


def test_plot_history_draws_the_named_terms(tmp_path):
    history = {
        "loss": [3.0, 2.0],
        "predictor_loss": [1.2, 0.9],
        "detector_loss": [1.0, 1.4],
        "area_penalty": [0.1, 0.0],
        "mask_area": [0.5, 0.25],
        "accuracy": [0.4, 0.8],
        "masked_out_accuracy": [0.6, 0.3],
        "val_accuracy": [0.5, 0.7],
    }
    path = os.path.join(tmp_path, "history.png")
    figure = plot_history(history, area_budget=0.2, save_path=path)
    loss, entropies, area, accuracy = figure.axes
    assert [line.get_label() for line in entropies.lines] == [
        "L_P: predictor, masked-in",
        "L_D: detector, masked-out",
    ]
    assert len(loss.lines) == 1
    assert [line.get_label() for line in accuracy.lines] == [
        "predictor (masked-in)",
        "predictor (masked-in), val.",
        "detector (masked-out)",
    ]
    assert area.lines[-1].get_label() == "area budget"
    assert _is_png(path)
    # A plain classifier's history: one panel per metric.
    figure = plot_history({"loss": [1.0, 0.5], "accuracy": [0.5, 0.9]})
    assert [ax.get_title() for ax in figure.axes] == ["loss", "accuracy"]
    assert figure.axes[1].lines[0].get_label() == "accuracy"
    with pytest.raises(ValueError, match="History"):
        plot_history({})


def test_plot_history_keeps_a_mask_area_scale_with_the_auto_budget():
    history = {
        "loss": [3.0, 2.0],
        "mask_area": [0.5, 0.25],
        "accuracy": [0.4, 0.8],
        "area_multiplier": [0.5, 2.0],
    }
    figure = plot_history(history, area_budget="auto")
    area = figure.axes[1]
    assert area.get_title() == "mask area (budget auto)"
    # A numeric axis from 0 to 1: "auto" drawn as a line would have made
    # it a categorical axis with the one tick "auto".
    assert area.get_ylim() == pytest.approx((0.0, 1.02))
    ticks = [float(t) for t in area.get_yticks() if 0 <= t <= 1.02]
    assert len(ticks) >= 3 and ticks[0] == 0.0
    assert all(line.get_label() != "area budget" for line in area.lines)


@pytest.mark.filterwarnings("ignore:The detector")
def test_explanation_monitor_saves_masks_every_epoch(tmp_path, data):
    from tests.conftest import tiny_model

    model = tiny_model(area_budget=0.3)
    model.compile()
    path = os.path.join(tmp_path, "monitor")
    log_dir = os.path.join(tmp_path, "logs")
    monitor = ExplanationMonitor(
        data["images"][:2],
        every=2,
        path=path,
        labels=data["labels"][:2],
        save_masks=True,
        log_dir=log_dir,
    )
    model.fit(
        data["images"][:8],
        data["labels"][:8],
        epochs=3,
        batch_size=8,
        callbacks=[monitor],
        verbose=0,
        # The monitor sees the model before `fit` refreshes batch norm.
        refresh_batch_norm=False,
    )
    # Every 2nd epoch, and the last one.
    assert sorted(monitor.masks) == [2, 3]
    assert sorted(os.listdir(path)) == [
        "epoch_002.npy",
        "epoch_002.png",
        "epoch_003.npy",
        "epoch_003.png",
    ]
    masks = np.load(os.path.join(path, "epoch_003.npy"))
    np.testing.assert_allclose(
        masks, model.explain(data["images"][:2], verbose=0), atol=1e-6
    )
    _check_image_summaries(os.path.join(log_dir, "explanations"))


def _check_image_summaries(folder):
    import tensorflow as tf

    (event_file,) = os.listdir(folder)
    records = []
    for record in tf.data.TFRecordDataset(os.path.join(folder, event_file)):
        event = tf.compat.v1.Event.FromString(record.numpy())
        for value in event.summary.value:
            records.append((event.step, value))
    assert sorted((step, v.tag) for step, v in records) == [
        (2, "masked_in"),
        (2, "masks"),
        (3, "masked_in"),
        (3, "masks"),
    ]
    value = records[0][1]
    assert value.metadata.plugin_data.plugin_name == "images"
    strings = tf.make_ndarray(value.tensor)
    assert strings[:2].tolist() == [b"32", b"32"]  # width, height
    assert len(strings) == 2 + 2 and strings[2][:8] == PNG


def test_explanation_monitor_needs_an_explaining_model(data):
    import keras

    from tests.conftest import tiny_classifier

    model = tiny_classifier()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    monitor = ExplanationMonitor(data["images"][:2])
    with pytest.raises(ValueError, match="explain"):
        model.fit(
            data["images"][:4],
            data["labels"][:4],
            epochs=1,
            callbacks=[monitor],
            verbose=0,
        )
    with pytest.raises(ValueError, match="every"):
        ExplanationMonitor(data["images"][:2], every=0)
    del keras
