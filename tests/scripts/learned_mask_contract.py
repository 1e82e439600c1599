"""`LearnedMask`'s contract, measured on the backend of this process.

Run as `python learned_mask_contract.py SAVED.keras MAPS.npz` with
`KERAS_BACKEND` set (`tests/test_learned_mask.py` runs it on JAX and
torch and checks the JSON line it prints). Its first import is the new
module, before Keras: a fresh process that starts there must work.

- `reloaded_difference`: a `LearnedMask` saved on TensorFlow by the test,
  loaded here, explains the test's images as it did there;
- `unchanged`: after `fit`, every weight of the classifier (batch-norm
  statistics included) is bit for bit what it was;
- `selector_moved`, `judge_moved`: `fit` did train the selector and
  harden the judge (so `unchanged` is not vacuous);
- `labels_are_predictions`: the labels `fit` uses by default are the
  classifier's arg max;
- `shape`, `low`, `high`: the maps of `explain`.
"""

# isort: off
import json
import sys

from keras_compattr.explainers import LearnedMask  # first: before Keras

import keras
import numpy as np

import keras_compattr as kca

# isort: on

SHAPE = (16, 16, 3)


def _numpy(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def main(saved, maps_file):
    stored = np.load(maps_file)
    reloaded = keras.saving.load_model(saved)
    difference = float(
        np.abs(reloaded.explain(stored["images"]) - stored["maps"]).max()
    )

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.random((16, *SHAPE)).astype("float32")
    labels = rng.integers(0, 3, 16)
    classifier = kca.models.build_classifier(
        SHAPE, 3, widths=(4, 8), blocks_per_stage=1, dropout=0.5
    )
    classifier.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    classifier.fit(images, labels, epochs=1, batch_size=16, verbose=0)
    before = _numpy(classifier.weights)
    explainer = LearnedMask(
        classifier,
        hardening=kca.models.DetectorHardening(epochs=1, batch_size=16),
    )
    selector_before = _numpy(explainer.selector.weights)
    judge_before = _numpy(explainer.judge.weights)
    explainer.fit(images, epochs=1, batch_size=16, verbose=0)
    after = _numpy(classifier.weights)
    predictions = np.argmax(classifier.predict(images, verbose=0), axis=-1)
    _, default_labels = explainer._labelled(images, None, 16)
    maps = explainer.explain(images[:3])
    print(
        json.dumps(
            {
                "backend": keras.backend.backend(),
                "reloaded_difference": difference,
                "num_weights": len(before),
                "unchanged": all(
                    np.array_equal(a, b) for a, b in zip(before, after)
                ),
                "selector_moved": any(
                    not np.array_equal(a, b)
                    for a, b in zip(
                        selector_before, _numpy(explainer.selector.weights)
                    )
                ),
                "judge_moved": any(
                    not np.array_equal(a, b)
                    for a, b in zip(
                        judge_before, _numpy(explainer.judge.weights)
                    )
                ),
                "labels_are_predictions": bool(
                    np.array_equal(default_labels, predictions)
                ),
                "shape": list(maps.shape),
                "low": float(maps.min()),
                "high": float(maps.max()),
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:3])
