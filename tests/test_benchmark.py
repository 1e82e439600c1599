import json
import os

import numpy as np
import pytest

from keras_compattr.evaluation import evaluate_explanations
from keras_compattr.evaluation import format_table
from keras_compattr.evaluation import unit_maps
from keras_compattr.evaluation.benchmark import COMET_VARIANTS
from keras_compattr.evaluation.benchmark import METHODS
from keras_compattr.evaluation.benchmark import _aggregate


def _patch_data(num=6, size=8):
    """Black images with a 2x2 white patch; class 1 iff the patch is there."""
    rng = np.random.default_rng(0)
    images = np.zeros((num, size, size, 3), "float32")
    masks = np.zeros((num, size, size), "float32")
    for i in range(num):
        r, c = rng.integers(0, size - 1, 2)
        images[i, r : r + 2, c : c + 2] = 1.0
        masks[i, r : r + 2, c : c + 2] = 1.0
    return images, np.ones(num, "int32"), masks


def _evaluator(images, training=False):
    # Logit of class 1 grows with the brightness summed over the image: it
    # needs at least 2 of the 4 patch pixels.
    total = np.asarray(images).sum(axis=(1, 2, 3)) / 3.0
    return np.stack([np.zeros_like(total), 10.0 * (total - 1.5)], axis=-1)


def test_evaluate_explanations_scores_an_oracle_and_its_inverse():
    images, labels, masks = _patch_data()
    common = dict(
        masks=masks,
        part_masks=masks[:, None],
        swapped_images=images,
        fill=0.0,
        deletion_steps=4,
    )
    oracle = evaluate_explanations(
        lambda x: masks[: len(x)], images, labels, _evaluator, **common
    )
    assert oracle["pxap"] == pytest.approx(100.0)
    assert oracle["pointing_game"] == oracle["attribution_mass"] == 1.0
    assert oracle["part_coverage"] == oracle["all_parts_covered"] == 1.0
    assert oracle["area"] == pytest.approx(4 / 64)
    # Deleting 10% (6 pixels) of the most attributed removes the patch.
    assert oracle["deletion_accuracy_10"] == 0.0
    assert oracle["deletion_accuracy_20"] == 0.0
    assert oracle["keep_accuracy_50"] == 1.0
    assert oracle["robustness_pixel_drop"] == pytest.approx(100.0)
    assert oracle["robustness_background_swap"] == pytest.approx(100.0)
    assert oracle["images_per_second"] > 0
    assert len(oracle["curves"]["deletion"]) == 5

    inverse = evaluate_explanations(
        lambda x: 1.0 - masks[: len(x)], images, labels, _evaluator, **common
    )
    assert inverse["pointing_game"] == inverse["attribution_mass"] == 0.0
    assert inverse["all_parts_covered"] == 0.0
    assert inverse["deletion_accuracy_20"] == 1.0
    assert inverse["keep_accuracy_50"] == 0.0
    assert inverse["deletion_auc"] > oracle["deletion_auc"]
    assert inverse["insertion_auc"] < oracle["insertion_auc"]
    assert inverse["pxap"] < 10.0


def test_evaluate_explanations_leaves_out_what_needs_ground_truth():
    images, labels, _ = _patch_data()
    results = evaluate_explanations(
        lambda x: np.random.default_rng(1).random(x.shape[:3]),
        images,
        labels,
        _evaluator,
        deletion_steps=2,
        robustness_images=3,
    )
    for key in ("pxap", "part_coverage", "robustness_background_swap"):
        assert results[key] is None, key
    assert results["robustness_pixel_drop"] is not None
    with pytest.raises(ValueError, match="shape"):
        evaluate_explanations(
            lambda x: np.zeros((len(x), 4, 4)), images, labels, _evaluator
        )


def test_unit_maps_keeps_masks_and_rescales_signed_maps():
    masks = np.random.default_rng(0).uniform(0, 0.5, (2, 4, 4))
    np.testing.assert_array_equal(unit_maps(masks), masks.astype("float32"))
    signed = np.array([[[-4.0, 2.0], [0.0, 1.0]]])
    np.testing.assert_allclose(unit_maps(signed), [[[1, 0.5], [0, 0.25]]])
    np.testing.assert_array_equal(unit_maps(np.full((1, 2, 2), -3.0)), 1.0)


def test_format_table_and_seed_aggregation():
    runs = [
        {"A": {"pxap": 80.0, "accuracy": 0.9, "sparseness": None,
               "curves": {"deletion": [1.0, 0.0]}}},
        {"A": {"pxap": 90.0, "accuracy": 0.7, "sparseness": None,
               "curves": {"deletion": [1.0, 1.0]}}},
    ]  # fmt: skip
    combined = _aggregate(runs)
    assert combined["A"]["pxap"] == (85.0, 5.0)
    assert combined["A"]["curves"]["deletion"] == [1.0, 0.5]
    table = format_table(combined)
    assert "| PxAP ↑ | 85.0 ± 5.0 |" in table
    assert "| accuracy ↑ | 80.0 ± 10.0 |" in table
    assert "sparseness" not in table  # no value in any column


# The default suite runs three rows, one of each kind (COMET, a gradient
# map, a perturbation map); --run-large runs every row (about 4 minutes on
# 2 loaded cores).
THREE_ROWS = ("COMET (default)", "Grad-CAM", "RISE")


@pytest.mark.filterwarnings("ignore:The detector has accuracy")
@pytest.mark.parametrize(
    "methods",
    [THREE_ROWS, pytest.param(METHODS, marks=pytest.mark.large)],
    ids=["three_rows", "every_row"],
)
def test_quick_benchmark_from_the_command_line(tmp_path, capsys, methods):
    from keras_compattr.cli import main

    output = os.path.join(tmp_path, "bench")
    arguments = ["benchmark", "--quick", "--output", output]
    if methods != METHODS:
        arguments += ["--methods", *methods]
    assert main(arguments) == 0
    with open(os.path.join(output, "benchmark.json")) as f:
        report = json.load(f)
    assert list(report["results"]) == list(methods)
    for name, results in report["results"].items():
        assert 0.0 <= results["pxap"] <= 100.0, name
        assert 0.0 <= results["all_parts_covered"] <= 1.0, name
        assert 0.0 <= results["deletion_accuracy_5"] <= 1.0, name
        assert results["robustness_background_swap"] is not None, name
        assert results["images_per_second"] > 0, name
        assert 0.0 <= results["judge_masked_out_accuracy"] <= 1.0, name
    for name, _ in COMET_VARIANTS:
        if name in methods:
            assert report["results"][name]["masked_out_accuracy"] is not None
    assert report["config"]["quick"] is True
    assert report["config"]["methods"] == list(methods)
    with open(os.path.join(output, "benchmark.md")) as f:
        table = f.read()
    assert table.startswith("| metric | COMET (default) |")
    assert table.strip() in capsys.readouterr().out
    for figure in ("comparison_seed0.png", "curves_seed0.png"):
        assert os.path.getsize(os.path.join(output, figure)) > 1000
    with np.load(os.path.join(output, "maps_seed0.npz")) as saved:
        assert set(methods) <= set(saved.files)
        assert saved["RISE"].shape == saved["gt_masks"].shape
