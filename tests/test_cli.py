import json
import os
import subprocess
import sys

import pytest

from keras_compattr.cli import main


def test_demo_with_a_tiny_budget_writes_its_outputs(tmp_path, capsys):
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


def test_bad_arguments_exit_non_zero():
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--epochs", "many"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        main(["no-such-command"])


def test_module_entry_point_prints_help():
    result = subprocess.run(
        [sys.executable, "-m", "keras_compattr", "--help"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0
    assert "demo" in result.stdout
