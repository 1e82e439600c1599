"""A short training run on the embedded data: COMET must actually learn."""

from keras_compattr.evaluation import run_demo


def test_short_run_learns_to_classify_and_to_find_the_evidence(tmp_path):
    results = run_demo(
        output=str(tmp_path),
        image_size=40,
        train_images=1000,
        test_images=200,
        detector_epochs=10,
        epochs=6,
        batch_size=32,
        area_budget=0.3,
        verbose=0,
    )
    # Chance is 25% with four classes.
    assert results["detector_accuracy"] > 0.7, results
    assert results["comet_accuracy"] > 0.6, results
    # The mask holds at least twice as much mass on the evidence as a map
    # spread evenly over the image would.
    assert results["attribution_mass"] > 2 * results["ground_truth_area"], (
        results
    )
    assert results["pxap"] > 100 * results["ground_truth_area"] + 10, results
