"""The detector against its hardened copy on partial evidence.

Loads (or trains) the benchmark's detector of `area_control.py`, hardens a
copy with the model's default `DetectorHardening`, and prints the accuracy
of both on the test images: whole; with every evidence tile half erased
(a random half of its pixels, in 4 x 4 blocks, set to the fill value);
with the evidence fully erased (chance is 0.25); and under the random cell
masks of the independent judge (`train_judge`'s family).

    VARIANT=two_part SEED=0 python benchmarks/judge_partial.py
    HARDENING='{"epochs": 10}' python benchmarks/judge_partial.py
    VARIANT=silhouettes HARDENING='{"epochs": 12, "learning_rate": 1e-3,
        "blob_fraction": 0.5}' python benchmarks/judge_partial.py

`HARDENING` holds `DetectorHardening` arguments (default: none).
`VARIANT=silhouettes` takes the shapes of `silhouettes.py` (64 px, 5
classes, chance 0.2) and the black box of `learned_mask.py`
(`DATA=silhouettes`, cached in /tmp/compattr_learned_mask), adds the
accuracy with one silhouette erased and with one erased and half of the
other, and labels the hardening with the black box's predictions, as
`LearnedMask` does.
"""

import json
import os

import keras
import numpy as np

import keras_compattr as kca
from keras_compattr import training as recipe
from keras_compattr.models.hardening import copy_network

VARIANT = os.environ.get("VARIANT", "two_part")
SHAPES = VARIANT == "silhouettes"
SIZE = 64 if SHAPES else int(os.environ.get("SIZE", 48))
SEED = int(os.environ.get("SEED", 0))
CACHE = os.environ.get(
    "CACHE", "/tmp/compattr_learned_mask" if SHAPES else "/tmp/compattr_area"
)
SHAPE, K = (SIZE, SIZE, 3), 5 if SHAPES else 4


def erased(images, masks, fill, share, rng, block=4):
    """`images` with a random `share` of the evidence blocks filled."""
    keep = rng.random((len(images), SIZE // block, SIZE // block)) >= share
    keep = np.kron(keep, np.ones((block, block)))
    removed = masks * (1.0 - keep)
    return images * (1.0 - removed[..., None]) + removed[..., None] * fill


def shapes_cases(test, fill, rng):
    """One silhouette erased; one erased and a half of the other."""
    parts = test["part_masks"]
    half = parts[:, 1].copy()
    for image in half:
        rows, cols = np.nonzero(image)
        if rng.random() < 0.5:
            image[:, np.arange(SIZE) > np.median(cols)] = 0.0
        else:
            image[np.arange(SIZE) > np.median(rows)] = 0.0

    def erase(masks):
        return (
            test["images"] * (1.0 - masks[..., None]) + masks[..., None] * fill
        )

    return {
        "one silhouette erased": erase(parts[:, 0]),
        "one erased, half of the other": erase(np.maximum(parts[:, 0], half)),
    }


def data():
    if SHAPES:
        from silhouettes import silhouettes  # benchmarks/silhouettes.py

        return silhouettes(1600, SEED), silhouettes(300, SEED + 1)
    return (
        kca.datasets.synthetic(1600, SIZE, K, VARIANT, seed=SEED),
        kca.datasets.synthetic(300, SIZE, K, VARIANT, seed=SEED + 1),
    )


def main():
    train, test = data()
    name = f"detector_{VARIANT}_{SIZE}_1600_{SEED}.keras"
    if SHAPES:
        name = f"classifier_silhouettes_{SIZE}_1600_{SEED}.keras"
    path = os.path.join(CACHE, name)
    if os.path.exists(path):
        detector = keras.saving.load_model(path)
    else:
        keras.utils.set_random_seed(SEED)
        detector = recipe.small_classifier(SHAPE, K, "detector")
        recipe.train_classifier(
            detector, train["images"], train["labels"], epochs=8, verbose=0
        )
    fill = train["images"].mean(axis=(0, 1, 2))
    settings = json.loads(os.environ.get("HARDENING", "{}"))
    hardening = kca.models.DetectorHardening(seed=SEED, **settings)
    keras.utils.set_random_seed(SEED)
    judge = copy_network(detector)
    labels = train["labels"]
    if SHAPES:  # the black box's predictions, as `LearnedMask` labels
        labels = detector.predict(train["images"], verbose=0).argmax(-1)
    hardening.harden(judge, train["images"], labels, fill, verbose=0)
    rng = np.random.default_rng(SEED)
    cells = kca.layers.RandomCellMask(
        fill, min_cells=3, max_cells=12, fade_fraction=0.0, seed=SEED + 7
    )
    inputs = {
        "whole": test["images"],
        "evidence half erased": erased(
            test["images"], test["masks"], fill, 0.5, rng
        ),
        "evidence erased": erased(
            test["images"], test["masks"], fill, 1.0, rng
        ),
        "random cells": keras.ops.convert_to_numpy(
            cells(test["images"], training=True)
        ),
    }
    if SHAPES:
        inputs.update(shapes_cases(test, fill, rng))
    for name, network in (("detector", detector), ("hardened copy", judge)):
        row = {"network": name, "variant": VARIANT, "seed": SEED}
        if network is judge:
            row["hardening"] = settings
        for key, images in inputs.items():
            predictions = network.predict(images, verbose=0).argmax(-1)
            row[key] = round(float(np.mean(predictions == test["labels"])), 4)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
