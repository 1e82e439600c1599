import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_compattr.cli import main

# The tiny budgets leave the detector near chance; `fit` says so.
pytestmark = pytest.mark.filterwarnings("ignore:The detector has accuracy")

TINY_TRAIN = [
    "--image-size", "32",
    "--train-images", "32",
    "--test-images", "16",
    "--batch-size", "16",
    "--verbose", "0",
]  # fmt: skip


def _error_line(capsys):
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("keras-compattr: error: ")
    return lines[0]


def test_demo_with_a_tiny_budget_writes_its_outputs(
    tmp_path, capsys, monkeypatch
):
    import keras_compattr.visualization as visualization

    figures = []

    def plot_explanations(*args, **kwargs):
        figures.append((kwargs, original(*args, **kwargs)))
        return figures[-1][1]

    original = visualization.plot_explanations
    monkeypatch.setattr(visualization, "plot_explanations", plot_explanations)
    output = os.path.join(tmp_path, "demo")
    code = main(
        [
            "demo",
            "--output", output,
            "--epochs", "1",
            "--detector-epochs", "1",
            "--train-images", "48",
            "--test-images", "16",
            "--image-size", "32",
            "--batch-size", "16",
            "--verbose", "0",
        ]
    )  # fmt: skip
    assert code == 0
    for name in ("explanations.png", "comet.keras", "metrics.json"):
        assert os.path.exists(os.path.join(output, name)), name
    with open(os.path.join(output, "metrics.json")) as f:
        results = json.load(f)
    for key in (
        "detector_accuracy",
        "comet_accuracy",
        "mean_mask_area",
        "both_parts_covered",
        "pxap",
    ):
        assert 0.0 <= results[key] <= 100.0
    printed = capsys.readouterr().out
    assert "both parts covered" in printed and "Figure:" in printed
    # The figure outlines the evidence tiles, so that a reader can tell
    # them from the distractors.
    [(kwargs, figure)] = figures
    assert kwargs["gt_masks"].shape == (6, 32, 32)
    assert set(np.unique(kwargs["gt_masks"])) == {0.0, 1.0}
    image_column = figure.axes[0:24:4]
    assert image_column[0].get_title() == "image (evidence outlined)"
    assert all(ax.collections for ax in image_column)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A COMET model trained by `keras-compattr train` (tiny budget)."""
    output = str(tmp_path_factory.mktemp("train"))
    config = os.path.join(output, "config.json")
    with open(config, "w") as f:
        json.dump({"epochs": 2, "detector-epochs": 1, "monitor_every": 1}, f)
    code = main(
        ["train", "--dataset", "synthetic", "--output", output,
         "--config", config, "--epochs", "1", *TINY_TRAIN]
    )  # fmt: skip
    assert code == 0
    return output


def test_train_saves_model_history_and_figures(trained):
    files = set(os.listdir(trained))
    for name in (
        "comet.keras",
        "detector.keras",
        "history.json",
        "history.csv",
        "detector_history.json",
        "detector_history.csv",
        "detector_history.png",
        "history.png",
        "explanations.png",
        "class_names.json",
    ):
        assert name in files, name
    # `--epochs 1` on the command line wins over the config's 2; the
    # config's detector epochs and monitor settings apply.
    with open(os.path.join(trained, "history.json")) as f:
        history = json.load(f)
    for key in ("predictor_loss", "detector_loss", "mask_area", "val_loss"):
        assert len(history[key]) == 1, key
    with open(os.path.join(trained, "detector_history.json")) as f:
        assert len(json.load(f)["loss"]) == 1
    with open(os.path.join(trained, "history.csv")) as f:
        header, row = f.read().splitlines()
    assert header.startswith("epoch,") and "mask_area" in header
    assert row.startswith("1,")
    assert os.listdir(os.path.join(trained, "monitor")) == ["epoch_001.png"]


def test_train_takes_a_trained_detector(trained, tmp_path):
    output = os.path.join(tmp_path, "again")
    detector = os.path.join(trained, "detector.keras")
    code = main(
        ["train", "--detector", detector, "--output", output,
         "--epochs", "1", "--monitor-every", "0", *TINY_TRAIN]
    )  # fmt: skip
    assert code == 0
    assert "comet.keras" in os.listdir(output)
    assert "detector.keras" not in os.listdir(output)


def test_explain_writes_overlays_and_masks(trained, tmp_path, capsys):
    import keras

    from keras_compattr.datasets import synthetic

    folder = os.path.join(tmp_path, "images")
    os.makedirs(folder)
    data = synthetic(2, 32, seed=5)
    for index, image in enumerate(data["images"]):
        keras.utils.save_img(os.path.join(folder, f"img{index}.png"), image)
    output = os.path.join(tmp_path, "explained")
    model = os.path.join(trained, "comet.keras")
    assert main(["explain", "--model", model, folder, "--output", output]) == 0
    files = set(os.listdir(output))
    for stem in ("img0", "img1"):
        assert f"{stem}_explanation.png" in files
        mask = np.load(os.path.join(output, f"{stem}_mask.npy"))
        assert mask.shape == (32, 32)
        assert 0.0 <= mask.min() and mask.max() <= 1.0
    with open(os.path.join(output, "explanations.json")) as f:
        summary = json.load(f)
    assert [s["class_name"] for s in summary][0].startswith("glyph_")
    assert "mask area" in capsys.readouterr().out


def test_evaluate_prints_the_metrics_table(trained, tmp_path, capsys):
    output = os.path.join(tmp_path, "evaluation")
    code = main(
        ["evaluate", "--model", os.path.join(trained, "comet.keras"),
         "--dataset", "synthetic", "--max-images", "8",
         "--deletion-steps", "2", "--explainers", "grad_cam,saliency",
         "--output", output]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    for row in ("| PxAP ↑ |", "| both parts covered ↑ |", "deletion AUC"):
        assert row in printed, row
    assert "grad_cam (detector)" in printed
    with open(os.path.join(output, "evaluation.json")) as f:
        results = json.load(f)
    assert set(results) == {
        "COMET",
        "grad_cam (detector)",
        "saliency (detector)",
    }
    assert 0.0 <= results["COMET"]["pxap"] <= 100.0


def test_missing_files_exit_with_one_clear_line(tmp_path, capsys):
    missing = os.path.join(tmp_path, "nope.keras")
    assert main(["explain", "--model", missing, "x.png"]) == 2
    assert "model file" in _error_line(capsys)
    assert main(["evaluate"]) == 2
    assert "needs --model" in _error_line(capsys)
    assert main(["train", "--detector", missing]) == 2
    assert "detector file" in _error_line(capsys)
    assert main(["train", "--dataset", "folder:/no/such/folder"]) == 2
    assert "does not exist" in _error_line(capsys)
    assert main(["demo", "--config", missing]) == 2
    assert "config file" in _error_line(capsys)


def test_bad_arguments_exit_non_zero(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--epochs", "many"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        main(["no-such-command"])
    assert "invalid choice" in capsys.readouterr().err
    assert main(["train", "--selector", "resnet"]) == 2
    assert "--selector must be one of" in _error_line(capsys)
    assert main(["train", "--area-budget", "1.5"]) == 2
    assert "--area-budget" in _error_line(capsys)
    config = os.path.join(tmp_path, "config.json")
    with open(config, "w") as f:
        json.dump({"epochz": 3}, f)
    assert main(["train", "--config", config]) == 2
    assert "unknown option 'epochz'" in _error_line(capsys)
    with open(config, "w") as f:
        json.dump({"hinge_reduction": "mean"}, f)
    assert main(["train", "--config", config]) == 2
    assert "hinge_reduction must be one of" in _error_line(capsys)
    with open(config, "w") as f:
        f.write("{not json")
    assert main(["train", "--config", config]) == 2
    assert "not valid JSON" in _error_line(capsys)


def test_yaml_config(tmp_path, capsys):
    config = os.path.join(tmp_path, "config.yaml")
    with open(config, "w") as f:
        f.write("epochs: -1\n")
    code = main(["train", "--config", config])
    assert code == 2
    line = _error_line(capsys)
    try:
        import yaml  # noqa: F401
    except ImportError:
        assert "PyYAML" in line
    else:
        # The value was read from the YAML file, then checked.
        assert "--epochs must be positive; got -1" in line


def test_module_entry_point_prints_help():
    result = subprocess.run(
        [sys.executable, "-m", "keras_compattr", "--help"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0
    for command in ("demo", "train", "explain", "evaluate", "benchmark"):
        assert command in result.stdout


def test_recipe_names_match_the_models_module():
    from keras_compattr.cli import _RECIPES
    from keras_compattr.models import RECIPES

    assert tuple(RECIPES) == _RECIPES
