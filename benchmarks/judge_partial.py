"""The detector against its hardened copy on partial evidence.

Loads (or trains) the benchmark's detector of `area_control.py`, hardens a
copy with the model's default `DetectorHardening`, and prints the accuracy
of both on the test images: whole; with every evidence tile half erased
(a random half of its pixels, in 4 x 4 blocks, set to the fill value);
with the evidence fully erased (chance is 0.25); and under the random cell
masks of the independent judge (`train_judge`'s family).

    VARIANT=two_part SEED=0 python benchmarks/judge_partial.py
    HARDENING='{"epochs": 10}' python benchmarks/judge_partial.py

`HARDENING` holds `DetectorHardening` arguments (default: none).
"""

import json
import os

import keras
import numpy as np

import keras_compattr as kca
from keras_compattr import training as recipe
from keras_compattr.models.hardening import copy_network

SIZE = int(os.environ.get("SIZE", 48))
VARIANT = os.environ.get("VARIANT", "two_part")
SEED = int(os.environ.get("SEED", 0))
CACHE = os.environ.get("CACHE", "/tmp/compattr_area")
SHAPE, K = (SIZE, SIZE, 3), 4


def erased(images, masks, fill, share, rng, block=4):
    """`images` with a random `share` of the evidence blocks filled."""
    keep = rng.random((len(images), SIZE // block, SIZE // block)) >= share
    keep = np.kron(keep, np.ones((block, block)))
    removed = masks * (1.0 - keep)
    return images * (1.0 - removed[..., None]) + removed[..., None] * fill


def main():
    train = kca.datasets.synthetic(1600, SIZE, K, VARIANT, seed=SEED)
    test = kca.datasets.synthetic(300, SIZE, K, VARIANT, seed=SEED + 1)
    path = os.path.join(CACHE, f"detector_{VARIANT}_{SIZE}_1600_{SEED}.keras")
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
    hardening.harden(judge, train["images"], train["labels"], fill, verbose=0)
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
