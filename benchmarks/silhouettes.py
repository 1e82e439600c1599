"""Completeness on data the library never trained its recipe on.

Two copies of a class silhouette (disc, square, triangle, cross, ring) per
64 px image, each randomly scaled, coloured and placed, among two random
ellipse distractors on a noisy background. The evidence is a shape, not a
glyph: the case where a detector trained on whole images stops
recognising half-erased evidence. Trains the benchmark's small detector,
then COMET per JSON spec (model arguments, as in `area_control.py`), and
prints one JSON line per run: all parts covered, part coverage, PxAP,
pointing game, accuracy, and the independent judge's accuracy on what the
decision mask leaves out (chance 0.2).

    python benchmarks/silhouettes.py gradcam '{}' '{"hardening": false}'

Environment: SEED (0), EPOCHS (10), NTRAIN (2000).
"""

import json
import os
import sys

import keras
import numpy as np

import keras_compattr as kca
from keras_compattr import metrics
from keras_compattr import training as recipe

SIZE, K = 64, 5
SEED = int(os.environ.get("SEED", 0))
EPOCHS = int(os.environ.get("EPOCHS", 10))
NTRAIN = int(os.environ.get("NTRAIN", 2000))


def _shape(kind, radius):
    """A boolean silhouette of `kind` in a (2r+1)^2 box."""
    r = radius
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1] / max(r, 1)
    if kind == 0:  # disc
        return xx**2 + yy**2 <= 1.0
    if kind == 1:  # square
        return (np.abs(xx) <= 0.8) & (np.abs(yy) <= 0.8)
    if kind == 2:  # triangle
        return (yy <= 0.8) & (yy >= 1.6 * np.abs(xx) - 0.8)
    if kind == 3:  # cross
        return ((np.abs(xx) <= 0.3) | (np.abs(yy) <= 0.3)) & (
            np.maximum(np.abs(xx), np.abs(yy)) <= 0.95
        )
    ring = xx**2 + yy**2
    return (ring <= 1.0) & (ring >= 0.35)


def _ellipse(rng, radius):
    r = radius
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1] / max(r, 1)
    # Clearly elongated, so that no distractor is a disc.
    a, b = rng.permutation([rng.uniform(0.3, 0.55), rng.uniform(0.85, 1.0)])
    return (xx / a) ** 2 + (yy / b) ** 2 <= 1.0


def silhouettes(count, seed):
    """Images, labels, masks `(N, H, W)` and part masks `(N, 2, H, W)`."""
    rng = np.random.default_rng(seed)
    images = np.empty((count, SIZE, SIZE, 3), "float32")
    labels = rng.integers(0, K, count)
    masks = np.zeros((count, SIZE, SIZE), "float32")
    parts = np.zeros((count, 2, SIZE, SIZE), "float32")
    for i in range(count):
        image = rng.uniform(0.2, 0.6, (1, 1, 3)) + rng.normal(
            0, 0.08, (SIZE, SIZE, 3)
        )
        taken = np.zeros((SIZE, SIZE), bool)
        stamps = [
            (_shape(labels[i], int(rng.integers(7, 11))), p) for p in (0, 1)
        ]
        stamps += [
            (_ellipse(rng, int(rng.integers(5, 9))), None) for _ in (0, 1)
        ]
        for stamp, part in stamps:
            side = stamp.shape[0]
            for _ in range(200):
                y, x = rng.integers(0, SIZE - side, 2)
                window = taken[
                    max(y - 2, 0) : y + side + 2, max(x - 2, 0) : x + side + 2
                ]
                if not window.any():
                    break
            region = np.zeros((SIZE, SIZE), bool)
            region[y : y + side, x : x + side] = stamp
            taken |= region
            image[region] = rng.uniform(0.0, 1.0, 3)
            if part is not None:
                parts[i, part] = region
                masks[i] = np.maximum(masks[i], region)
        images[i] = np.clip(image, 0.0, 1.0)
    return {
        "images": images,
        "labels": labels,
        "masks": masks,
        "part_masks": parts,
    }


def row(name, test, maps, judge, fill, extra):
    covered = metrics.coverage(maps, test["part_masks"])
    result = {
        "name": name,
        "both": covered["all_parts_covered"],
        "part_coverage": covered["part_coverage"],
        "pxap": metrics.pxap(maps, test["masks"]),
        "pointing": metrics.pointing_game(maps, test["masks"]),
        "area": float((maps > 0.5).mean()),
        "judge_masked_out_acc": kca.evaluation.masked_out_accuracy(
            judge, test["images"], test["labels"], maps, fill
        ),
        **extra,
    }
    print(
        json.dumps(
            {
                k: round(v, 4) if isinstance(v, float) else v
                for k, v in result.items()
            }
        ),
        flush=True,
    )


def main(specs):
    train, test = silhouettes(NTRAIN, SEED), silhouettes(400, SEED + 1)
    judge_data = silhouettes(NTRAIN, SEED + 2)
    shape = (SIZE, SIZE, 3)
    fill = train["images"].mean(axis=(0, 1, 2))
    keras.utils.set_random_seed(SEED)
    detector = recipe.small_classifier(shape, K, "detector")
    recipe.train_classifier(
        detector, train["images"], train["labels"], epochs=12, verbose=0
    )
    judge = kca.evaluation.train_judge(
        judge_data["images"], judge_data["labels"], K, fill, seed=SEED + 500
    )

    def accuracy(net, x):
        return float(
            np.mean(net.predict(x, verbose=0).argmax(-1) == test["labels"])
        )

    def half(net):
        return kca.evaluation.masked_out_accuracy(
            net, test["images"], test["labels"], test["part_masks"][:, 0], fill
        )

    print(
        json.dumps(
            {
                "detector_acc": accuracy(detector, test["images"]),
                "judge_acc": accuracy(judge, test["images"]),
                "detector_half_acc": half(detector),
                "judge_half_acc": half(judge),
            }
        ),
        flush=True,
    )
    for spec in specs:
        if spec == "gradcam":
            maps = kca.explainers.GradCAM(detector).explain(
                test["images"], test["labels"]
            )
            row(
                "gradcam",
                test,
                maps,
                judge,
                fill,
                {"acc": accuracy(detector, test["images"])},
            )
            continue
        keras.utils.set_random_seed(SEED)
        model = recipe.small_comet(shape, K, detector, **json.loads(spec))
        recipe.train_comet(
            model, train["images"], train["labels"], epochs=EPOCHS, verbose=0
        )
        logs = model.evaluate(
            test["images"], test["labels"], verbose=0, return_dict=True
        )
        maps = model.explain(test["images"], verbose=0)
        row(
            spec,
            test,
            maps,
            judge,
            keras.ops.convert_to_numpy(model.fill),
            {
                "acc": logs["accuracy"],
                "masked_out_acc": logs["masked_out_accuracy"],
                "comet_judge_half_acc": half(model.judge),
            },
        )


if __name__ == "__main__":
    main(sys.argv[1:])
