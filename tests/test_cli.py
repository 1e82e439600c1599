import contextlib
import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from keras_compattr.cli import main

# The tiny budgets leave the detector near chance; `fit` says so.
pytestmark = pytest.mark.filterwarnings("ignore:The detector has accuracy")

# `--force`: the tiny budgets leave the detector near chance, where `train`
# stops before COMET unless forced.
TINY_TRAIN = [
    "--force",
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
    """A COMET model trained by `keras-compattr train` (tiny budget).

    Run with the default `--verbose` and stdout written to a file, as in
    `keras-compattr train > log`; the output is in `<folder>.log`.
    """
    output = str(tmp_path_factory.mktemp("train"))
    config = os.path.join(output, "config.json")
    with open(config, "w") as f:
        json.dump({"epochs": 2, "detector-epochs": 1, "monitor_every": 1}, f)
    quiet = TINY_TRAIN.index("--verbose")
    log = io.StringIO()  # Not a terminal.
    with contextlib.redirect_stdout(log):
        code = main(
            ["train", "--dataset", "synthetic", "--output", output,
             "--config", config, "--epochs", "1",
             *TINY_TRAIN[:quiet], *TINY_TRAIN[quiet + 2 :]]
        )  # fmt: skip
    with open(output + ".log", "w") as f:
        f.write(log.getvalue())
    assert code == 0, log.getvalue()
    return output


def test_redirected_output_has_one_line_per_epoch(trained):
    with open(trained + ".log") as f:
        log = f.read()
    # No progress bars: no ANSI escapes, carriage returns or backspaces.
    assert not set("\x1b\r\b") & set(log), repr(log[-500:])
    epoch_lines = re.findall(r"^\d+/\d+ - \d+s .*loss", log, re.MULTILINE)
    # One epoch of the detector, four of the judge's hardening, one of COMET.
    assert len(epoch_lines) == 6
    # The silent first step of COMET is announced before it runs.
    comet = log.index("[2/2] Training COMET")
    notice = log.index("Building and compiling the training step of COMET")
    done = log.index("First step built, compiled and run in", notice)
    assert comet < notice < done < log.index(epoch_lines[-1])


def test_progress_bars_only_on_a_terminal(monkeypatch):
    from keras_compattr.training import fit_verbosity as _fit_verbose

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    assert [_fit_verbose(v) for v in (0, 1, 2)] == [0, 1, 2]
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert [_fit_verbose(v) for v in (0, 1, 2)] == [0, 2, 2]


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
    import keras

    output = os.path.join(tmp_path, "again")
    detector = os.path.join(trained, "detector.keras")
    code = main(
        ["train", "--detector", detector, "--output", output,
         "--epochs", "1", "--monitor-every", "0", "--no-hardening",
         *TINY_TRAIN]
    )  # fmt: skip
    assert code == 0
    assert "comet.keras" in os.listdir(output)
    assert "detector.keras" not in os.listdir(output)
    # The default run judged with a hardened copy; --no-hardening did not.
    default = keras.saving.load_model(os.path.join(trained, "comet.keras"))
    assert default.judge_is_hardened
    plain = keras.saving.load_model(os.path.join(output, "comet.keras"))
    assert plain.hardening is None and plain.judge is plain.detector


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


def test_evaluate_scores_a_learned_mask_of_the_detector(trained, capsys):
    code = main(
        ["evaluate", "--model", os.path.join(trained, "comet.keras"),
         "--dataset", "synthetic", "--max-images", "8",
         "--deletion-steps", "2", "--explainers", "learned_mask",
         "--learned-mask-epochs", "1", "--learned-mask-images", "16"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "Training learned_mask" in printed
    header = next(line for line in printed.splitlines() if "| metric" in line)
    assert "learned_mask (detector)" in header
    pxap = next(line for line in printed.splitlines() if "| PxAP" in line)
    assert len(pxap.split("|")) == 5  # COMET and learned_mask


def _write_class_folder(root, per_class=5):
    """A folder of 32 px synthetic images, one sub-folder per class."""
    import keras

    from keras_compattr.datasets import synthetic

    data = synthetic(4 * per_class, 32, seed=9)
    counts = {}
    for image, label in zip(data["images"], data["labels"]):
        name = data["class_names"][label]
        counts[name] = counts.get(name, 0) + 1
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{counts[name]:03d}.png")
        keras.utils.save_img(path, image)
    return counts


def test_folder_without_splits_validates_and_scores_held_out_images(
    trained, tmp_path, capsys
):
    folder = os.path.join(tmp_path, "photos")
    counts = _write_class_folder(folder)
    assert len(counts) == 4  # The classes of the trained detector.
    name = sorted(counts)[1]
    with open(os.path.join(folder, name, "broken.png"), "w") as f:
        f.write("a text file saved as .png")
    output = os.path.join(tmp_path, "run")
    code = main(
        ["train", "--dataset", f"folder:{folder}", "--output", output,
         "--detector", os.path.join(trained, "detector.keras"), "--force",
         "--epochs", "1", "--monitor-every", "0", "--image-size", "32x32",
         "--batch-size", "16", "--verbose", "0", "--skip-bad-images"]
    )  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    left_out = [
        line for line in captured.err.splitlines() if "Left out" in line
    ]
    assert left_out == [
        "keras-compattr: warning: Left out 1 image file(s) of "
        f"{folder!r} that cannot be decoded, such as "
        f"{os.path.join(name, 'broken.png')!r}."
    ]
    printed = captured.out
    validation = re.search(
        r"validation: 'val', (\d+) images, held out", printed
    )
    assert validation is not None, printed
    with open(os.path.join(output, "history.json")) as f:
        assert "val_loss" in json.load(f)
    model = os.path.join(output, "comet.keras")
    scores = {}
    for split in ("test", "train"):
        code = main(
            ["evaluate", "--model", model, "--dataset", f"folder:{folder}",
             "--split", split, "--max-images", "64", "--deletion-steps", "2",
             "--skip-bad-images"]
        )  # fmt: skip
        assert code == 0
        scores[split] = re.search(
            r"on (\d+) of the (\d+) images of folder:.*, split '(\w+)' "
            r"\(([^)]*)\)",
            capsys.readouterr().out,
        )
    test, train = scores["test"], scores["train"]
    assert test.group(3) == "test" and "held out" in test.group(4)
    assert "never trained on" in test.group(4)
    assert train.group(3) == "train" and "not held out" in train.group(4)
    held_out = int(validation.group(1)) + int(test.group(1))
    assert int(train.group(1)) + held_out == sum(counts.values())


def test_data_source_flags_and_cli_worded_errors(trained, tmp_path, capsys):
    data_dir = str(tmp_path / "tfds")
    model = os.path.join(trained, "comet.keras")
    for argv in (
        ["train", "--output", str(tmp_path / "run")],
        ["evaluate", "--model", model],
    ):
        code = main(
            [*argv, "--dataset", "cifar10", "--data-dir", data_dir,
             "--no-download"]
        )  # fmt: skip
        assert code == 2
        line = _error_line(capsys)
        assert data_dir in line and "(--no-download)" in line
        assert "--data-dir DIR" in line and "tfds build cifar10" in line
        assert "download=" not in line and "data_dir=" not in line


def test_image_size_takes_height_and_width():
    from keras_compattr.cli import build_parser
    from keras_compattr.cli.parser import image_size as _image_size

    parser = build_parser()
    for flag, size in [
        (["32"], (32, 32)),
        (["32", "48"], (32, 48)),
        (["32x48"], (32, 48)),
    ]:
        args = parser.parse_args(["train", "--image-size", *flag])
        assert _image_size(args.image_size) == size
    # Config files give an int, a list or a string.
    assert _image_size(64) == (64, 64)
    assert _image_size([24, 40]) == _image_size("24x40") == (24, 40)
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--image-size", "0x4"])
    with pytest.raises(ValueError, match="--image-size"):
        _image_size([1, 2, 3])


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
    from keras_compattr.cli.train import RECIPES as CLI_RECIPES
    from keras_compattr.models import RECIPES

    assert tuple(RECIPES) == CLI_RECIPES


def test_benchmark_method_names_match_the_benchmark_module():
    from keras_compattr.cli.benchmark import METHODS as CLI_METHODS
    from keras_compattr.evaluation.benchmark import METHODS

    assert CLI_METHODS == METHODS


def test_benchmark_methods_flag_parses_and_refuses_unknown_rows():
    from keras_compattr.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(
        ["benchmark", "--methods", "COMET (default)", "Grad-CAM"]
    )
    assert args.methods == ["COMET (default)", "Grad-CAM"]
    with pytest.raises(SystemExit):
        parser.parse_args(["benchmark", "--methods", "LIME"])


def test_every_command_takes_the_shared_options():
    from keras_compattr.cli import build_parser

    parser = build_parser()
    assert set(parser.commands) == {
        "demo",
        "train",
        "explain",
        "evaluate",
        "benchmark",
    }
    for name, command in parser.commands.items():
        flags = set(command._option_string_actions)
        shared = {"--output", "--seed", "--config", "--verbose"}
        assert shared <= flags, name
    # One definition, per-command defaults.
    defaults = {
        name: command.get_default("batch_size")
        for name, command in parser.commands.items()
    }
    assert defaults == {
        "demo": 64,
        "train": 64,
        "explain": 32,
        "evaluate": 64,
        "benchmark": None,
    }
    args = parser.parse_args(["demo", "--area-budget", "auto"])
    assert args.area_budget == "auto" and args.verbose == 2


def test_commands_load_models_with_the_library_loader(tmp_path, capsys):
    import keras

    classifier = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    path = str(tmp_path / "classifier.keras")
    classifier.save(path)
    assert main(["explain", "--model", path, "x.png"]) == 2
    line = _error_line(capsys)
    assert "not a ComprehensiveAttributionModel" in line, line
    weights = str(tmp_path / "model.weights.h5")
    classifier.save_weights(weights)
    assert main(["evaluate", "--model", weights]) == 2
    assert "weights only" in _error_line(capsys)


def _write_photo_folder(root, classes=("circle", "square", "stripes"), n=6):
    """`n` 32 px PNGs per class, each class a brighter colour channel."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for channel, name in enumerate(classes):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for index in range(n):
            image = rng.integers(0, 60, (32, 32, 3), dtype=np.uint8)
            image[..., channel % 3] += 150
            path = os.path.join(root, name, f"{index:03d}.png")
            Image.fromarray(image).save(path)


def test_folder_data_is_checked_before_any_training(tmp_path, capsys):
    folder = str(tmp_path / "photos")
    _write_photo_folder(folder)
    broken = os.path.join(folder, "square", "broken.png")
    with open(broken, "w") as f:
        f.write("not an image")
    output = str(tmp_path / "run")
    argv = ["train", "--dataset", f"folder:{folder}", "--output", output]
    assert main(argv) == 2
    line = _error_line(capsys)
    assert repr(broken) in line and "--skip-bad-images" in line
    assert not os.path.exists(os.path.join(output, "detector.keras"))
    os.remove(broken)
    # One class, an empty class folder, no epoch: refused at once too.
    assert main([*argv, "--epochs", "0"]) == 2
    assert "--epochs must be positive; got 0" in _error_line(capsys)
    os.makedirs(os.path.join(folder, "triangle"))
    assert main(argv) == 2
    assert "triangle' holds no readable image" in _error_line(capsys)
    lonely = str(tmp_path / "lonely")
    _write_photo_folder(lonely, classes=("circle",))
    assert main([*argv[:2], f"folder:{lonely}", *argv[3:]]) == 2
    assert "at least 2 classes" in _error_line(capsys)
    assert not os.path.exists(output)  # Not even an empty folder.


def test_train_stops_before_comet_when_the_detector_is_near_chance(
    tmp_path, capsys
):
    from keras_compattr.training import small_classifier

    folder = str(tmp_path / "photos")
    _write_photo_folder(folder)
    # An untrained detector: a constant output is at chance on any data.
    detector = small_classifier((32, 32, 3), 3, name="detector")
    detector.layers[-1].kernel.assign(0 * detector.layers[-1].kernel)
    path = str(tmp_path / "untrained.keras")
    detector.save(path)
    output = str(tmp_path / "run")
    code = main(
        ["train", "--dataset", f"folder:{folder}", "--detector", path,
         "--output", output, "--image-size", "32", "--verbose", "0"]
    )  # fmt: skip
    assert code == 2
    printed = capsys.readouterr()
    assert "Detector accuracy in inference mode: 33.3%" in printed.out
    [line] = printed.err.strip().splitlines()
    assert "near chance" in line and "--detector" in line
    assert "--force" in line and "detector.fit" not in line
    assert not os.path.exists(os.path.join(output, "comet.keras"))
    # With another number of classes than the data: one line too.
    small_classifier((32, 32, 3), 4).save(path)
    code = main(
        ["train", "--dataset", f"folder:{folder}", "--detector", path,
         "--output", output, "--image-size", "32", "--verbose", "0"]
    )  # fmt: skip
    assert code == 2
    assert "has 4 outputs, but" in _error_line(capsys)


def test_evaluate_and_explain_check_the_model_against_the_data(
    trained, tmp_path, capsys
):
    model = os.path.join(trained, "comet.keras")
    folder = str(tmp_path / "photos")
    _write_photo_folder(folder)  # 3 classes; the model has 4.
    argv = ["evaluate", "--model", model, "--max-images", "8"]
    assert main([*argv, "--dataset", f"folder:{folder}"]) == 2
    line = _error_line(capsys)
    assert "has 4 classes, but folder:" in line and "has 3" in line
    # As many classes, other names than the model's class_names.json.
    _write_photo_folder(folder, classes=("a", "b", "c", "d"))
    for name in ("circle", "square", "stripes"):
        for file in os.listdir(os.path.join(folder, name)):
            os.remove(os.path.join(folder, name, file))
        os.rmdir(os.path.join(folder, name))
    assert main([*argv, "--dataset", f"folder:{folder}"]) == 2
    line = _error_line(capsys)
    assert "class_names.json" in line and "glyph_" in line
    # explain: a class_names.json of another run, an unreadable image.
    image = os.path.join(folder, "a", "000.png")
    copy = str(tmp_path / "copy")
    os.makedirs(copy)
    import shutil

    shutil.copy(model, copy)
    with open(os.path.join(copy, "class_names.json"), "w") as f:
        json.dump(["a", "b", "c"], f)
    explain = ["explain", "--output", str(tmp_path / "explained")]
    assert (
        main([*explain, "--model", os.path.join(copy, "comet.keras"), image])
        == 2
    )
    assert "names 3 classes, but the model" in _error_line(capsys)
    text = str(tmp_path / "notes.png")
    with open(text, "w") as f:
        f.write("not an image")
    assert main([*explain, "--model", model, text]) == 2
    line = _error_line(capsys)
    assert repr(text) in line and "BytesIO" not in line


def test_resume_and_early_stopping_reach_fit(trained, tmp_path, monkeypatch):
    import shutil

    import keras_compattr.training as training
    from keras_compattr.callbacks import BackupAndRestore

    output = str(tmp_path / "run")
    os.makedirs(os.path.join(output, "backup"))
    shutil.copy(os.path.join(trained, "detector.keras"), output)
    seen = {}

    class Stop(Exception):
        pass

    def train_comet(model, x, callbacks=(), **kwargs):
        seen["callbacks"] = callbacks
        raise Stop

    monkeypatch.setattr(training, "train_comet", train_comet)
    argv = ["train", "--output", output, *TINY_TRAIN, "--early-stopping", "2"]
    with pytest.raises(Stop):
        main([*argv, "--resume"])
    # The detector of the interrupted run is used, not trained again.
    assert not os.path.exists(os.path.join(output, "detector_history.json"))
    [backup] = [c for c in seen["callbacks"] if isinstance(c, BackupAndRestore)]
    assert backup.backup_dir == os.path.join(output, "backup")
    [stopping] = [
        c for c in seen["callbacks"] if type(c).__name__ == "EarlyStopping"
    ]
    assert stopping.patience == 2 and stopping.monitor == "val_loss"
    assert os.path.isdir(os.path.join(output, "backup"))
    # Without --resume, an old backup is dropped: a new run starts anew.
    with pytest.raises(Stop):
        main(argv + ["--detector", os.path.join(trained, "detector.keras")])
    assert not os.path.exists(os.path.join(output, "backup"))
    assert main([*argv, "--early-stopping", "0"]) == 2


def test_help_texts_and_faq_agree_with_the_code():
    import inspect

    from keras_compattr.cli import build_parser
    from keras_compattr.evaluation import run_demo
    from keras_compattr.models import ComprehensiveAttributionModel

    parser = build_parser()
    assert "tensorflow, jax or torch" in " ".join(parser.description.split())
    demo = parser.commands["demo"].parse_args([]).hinge_reduction
    assert (
        demo
        == inspect.signature(run_demo).parameters["hinge_reduction"].default
    )
    model = (
        inspect.signature(ComprehensiveAttributionModel)
        .parameters["hinge_reduction"]
        .default
    )
    assert parser.commands["train"].parse_args([]).hinge_reduction is None
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "docs", "faq.md")) as f:
        faq = " ".join(f.read().split())
    assert demo == model
    assert "`keras-compattr demo` and" in faq
    assert f'keep the model\'s default (`"{model}"`, as `demo --help`' in faq


def test_figures_of_train_show_images_across_classes():
    from keras_compattr.cli.data import shown_examples

    # A validation split read in order: the first batches hold one class.
    labels = np.repeat(np.arange(3), 8)
    images = np.arange(24, dtype="float32")[:, None, None, None] * np.ones(
        (1, 4, 4, 3), "float32"
    )
    batches = [(images[i : i + 4], labels[i : i + 4]) for i in range(0, 24, 4)]
    shown, shown_labels = shown_examples(batches, num_classes=3)
    assert len(shown) == 6
    assert sorted(shown_labels.tolist()) == [0, 0, 1, 1, 2, 2]
    # Each image keeps its own label.
    np.testing.assert_array_equal(
        labels[shown[:, 0, 0, 0].astype(int)], shown_labels
    )
