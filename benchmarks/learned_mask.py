"""LearnedMask against Grad-CAM and RISE, all three on one black box.

Trains the benchmark's black-box classifier on the embedded two-part data
(cached in $CACHE, default /tmp/compattr_learned_mask), then explains its
test images three ways, each for the class the classifier predicts:

- `LearnedMask(classifier).fit(x_train, epochs=EPOCHS)`: the defaults, as
  a user would call it (the selector started from a copy of the
  classifier's layers, `"auto"` area, hardened judge, labels = the
  classifier's predictions, batch size 32);
- `GradCAM(classifier)` (last convolutional stage);
- `RISE` of the classifier (RISE_MASKS masks, fill = the mean colour).

Prints one JSON line per method and a Markdown table:

- `pxap`: PxAP against the evidence tiles (0-100);
- `all_parts_covered`: share of images whose map (> 0.5) covers both
  evidence tiles, each at least half;
- `deletion_accuracy_10`: the *classifier's* accuracy (true labels) once
  the top 10% pixels of its map are set to the mean colour (lower is more
  faithful);
- `deletion_accuracy_10_noisy_fill`: the same with the mean colour plus
  Gaussian noise of the training images' pixel-noise level (the fill
  `LearnedMask` trains with, `fill_noise="auto"`);
- `images_per_second`: one `explain` call over the test images, after a
  warm-up call on one batch.

And it checks that `fit` left every weight of the classifier (batch-norm
statistics included) bit for bit as it was.

    python benchmarks/learned_mask.py
    SEEDS="0 1 2" python benchmarks/learned_mask.py

Environment: SEEDS ("0"), DATA ("two_part", or "silhouettes": the
held-out-like shapes of `benchmarks/silhouettes.py`, 64 px, 5 classes,
which no default was chosen on), SIZE (48; two-part only), NTRAIN (1600),
NTEST (200), EPOCHS (8), RISE_MASKS (500), CACHE; METHODS (all:
"LearnedMask Grad-CAM RISE"); LM, a JSON dict of `LearnedMask` arguments
(`{"area_budget": 0.2}`), plus `"learning_rate"`: AdamW's, decayed to
zero by a cosine (default: `LearnedMask`'s own), `"ctl"`:
`AreaMultiplier` arguments, and `"hardening"` as a dict of
`DetectorHardening` arguments.
"""

import json
import os
import time

import keras
import numpy as np

import keras_compattr as kca
from keras_compattr import metrics
from keras_compattr import training as recipe
from keras_compattr.models import data_statistics

SEEDS = [int(s) for s in os.environ.get("SEEDS", "0").split()]
DATA = os.environ.get("DATA", "two_part")
SIZE = 64 if DATA == "silhouettes" else int(os.environ.get("SIZE", 48))
NTRAIN = int(os.environ.get("NTRAIN", 1600))
NTEST = int(os.environ.get("NTEST", 200))
EPOCHS = int(os.environ.get("EPOCHS", 8))
RISE_MASKS = int(os.environ.get("RISE_MASKS", 500))
CACHE = os.environ.get("CACHE", "/tmp/compattr_learned_mask")
METHODS = os.environ.get("METHODS", "LearnedMask Grad-CAM RISE").split()
LM = json.loads(os.environ.get("LM", "{}"))
SHAPE, K, BATCH = (SIZE, SIZE, 3), 5 if DATA == "silhouettes" else 4, 64
KEYS = ("pxap", "all_parts_covered", "deletion_accuracy_10")


def black_box(train, seed):
    """The benchmark's classifier (8 epochs), trained once per seed."""
    name = "classifier" if DATA == "two_part" else f"classifier_{DATA}"
    path = os.path.join(CACHE, f"{name}_{SIZE}_{NTRAIN}_{seed}.keras")
    if os.path.exists(path):
        return keras.saving.load_model(path)
    keras.utils.set_random_seed(seed)
    classifier = recipe.small_classifier(SHAPE, K, "classifier")
    recipe.train_classifier(
        classifier, train["images"], train["labels"], epochs=8, verbose=0
    )
    classifier.save(path)
    return classifier


def timed(explain, images):
    """Maps of `images` and images per second (after a warm-up)."""
    explain(images[:BATCH])
    start = time.perf_counter()
    maps = explain(images)
    return maps, len(images) / (time.perf_counter() - start)


def noisy_deletion(classifier, test, maps, fill, noise, fraction=0.1):
    """Accuracy once the top `fraction` pixels take `fill` plus noise.

    The removal `LearnedMask(fill_noise="auto")` trains with: on images
    with noisy backgrounds a flat hole is a flat shape, which a classifier
    of shapes can read as one (the hole of an erased silhouette is a
    silhouette).
    """
    images = test["images"]
    flat = maps.reshape(len(maps), -1)
    count = int(round(fraction * flat.shape[1]))
    top = np.argsort(-flat, axis=1, kind="stable")[:, :count]
    removed = np.zeros_like(flat, dtype=bool)
    np.put_along_axis(removed, top, True, axis=1)
    removed = removed.reshape(maps.shape)[..., None]
    rng = np.random.default_rng(0)
    filled = fill + noise * rng.standard_normal(images.shape)
    holed = np.where(removed, filled, images).astype("float32")
    predicted = np.concatenate(
        [
            keras.ops.convert_to_numpy(classifier(holed[i : i + BATCH]))
            for i in range(0, len(holed), BATCH)
        ]
    ).argmax(-1)
    return float(np.mean(predicted == test["labels"]))


def scores(maps, test, classifier, fill, speed, noise=0.0):
    maps = kca.evaluation.unit_maps(maps)
    covered = metrics.coverage(maps, test["part_masks"])
    return {
        "pxap": metrics.pxap(maps, test["masks"]),
        "all_parts_covered": covered["all_parts_covered"],
        "part_coverage": covered["part_coverage"],
        "deletion_accuracy_10": metrics.deletion_accuracy(
            classifier,
            test["images"],
            test["labels"],
            maps,
            fraction=0.1,
            fill=fill,
            batch_size=BATCH,
        ),
        "deletion_accuracy_10_noisy_fill": noisy_deletion(
            classifier, test, maps, fill, noise
        ),
        "area": float((maps > 0.5).mean()),
        "images_per_second": speed,
    }


def learned_mask(train, test, classifier, fast, fill, noise):
    """`LearnedMask(classifier).fit(x_train, epochs=EPOCHS)` and scores."""
    images = test["images"]
    options = dict(LM)
    learning_rate = options.pop("learning_rate", None)
    if "ctl" in options:  # `AreaMultiplier` arguments
        options["area_budget"] = kca.losses.AreaMultiplier(
            K, **options.pop("ctl")
        )
    if isinstance(options.get("hardening"), dict):
        options["hardening"] = kca.models.DetectorHardening(
            **options["hardening"]
        )
    weights = [keras.ops.convert_to_numpy(w).copy() for w in classifier.weights]
    explainer = kca.explainers.LearnedMask(classifier, **options)
    if learning_rate is not None:
        steps = EPOCHS * -(-len(train["images"]) // 32)
        explainer.compile(
            keras.optimizers.AdamW(
                keras.optimizers.schedules.CosineDecay(learning_rate, steps),
                weight_decay=0.03,
            )
        )
    start = time.perf_counter()
    explainer.fit(train["images"], epochs=EPOCHS, verbose=2)
    train_s = time.perf_counter() - start
    unchanged = all(
        np.array_equal(before, keras.ops.convert_to_numpy(after))
        for before, after in zip(weights, classifier.weights)
    )
    maps, speed = timed(
        lambda x: explainer.explain(x, batch_size=BATCH), images
    )
    row = scores(maps, test, fast, fill, speed, noise)
    # The soft mask itself (`output="mask"`, a diagnostic): the same
    # selection, but its sigmoid saturates, so ranking metrics see ties.
    masks = explainer.explain(images, batch_size=BATCH, output="mask")
    soft = scores(masks, test, fast, fill, speed, noise)
    row.update(
        train_s=train_s,
        classifier_unchanged=unchanged,
        masked_out_accuracy=explainer.evaluate(
            images, verbose=0, return_dict=True
        )["masked_out_accuracy"],
        mask_pxap=soft["pxap"],
        mask_deletion_accuracy_10=soft["deletion_accuracy_10"],
    )
    return row


def data(count, seed):
    """`DATA`'s images, labels, masks and part masks."""
    if DATA == "silhouettes":
        from silhouettes import silhouettes  # benchmarks/silhouettes.py

        return silhouettes(count, seed)
    if DATA != "two_part":
        raise ValueError(f"DATA must be two_part or silhouettes: {DATA!r}")
    return kca.datasets.synthetic(count, SIZE, K, seed=seed)


def run(seed):
    train, test = data(NTRAIN, seed), data(NTEST, seed + 1)
    images = test["images"]
    classifier = black_box(train, seed)
    fast = kca.evaluation.CompiledClassifier(classifier)
    accuracy = float(
        np.mean(
            classifier.predict(images, verbose=0).argmax(-1) == test["labels"]
        )
    )
    fill = train["images"].mean(axis=(0, 1, 2))
    # The noise level `fill_noise="auto"` measures.
    noise = data_statistics.pixel_noise(train["images"], 3)
    rows = {}

    if "LearnedMask" in METHODS:
        keras.utils.set_random_seed(seed)
        rows["LearnedMask"] = learned_mask(
            train, test, classifier, fast, fill, noise
        )
    if "Grad-CAM" in METHODS:
        grad_cam = kca.explainers.GradCAM(classifier)
        maps, speed = timed(
            lambda x: grad_cam.explain(x, batch_size=BATCH), images
        )
        rows["Grad-CAM"] = scores(maps, test, fast, fill, speed, noise)
    if "RISE" in METHODS:
        rise = kca.explainers.RISE(
            fast, num_masks=RISE_MASKS, fill=fill, seed=seed
        )
        start = time.perf_counter()
        maps = rise.explain(images, batch_size=100)
        speed = len(images) / (time.perf_counter() - start)
        rows["RISE"] = scores(maps, test, fast, fill, speed, noise)
    for name, row in rows.items():
        print(
            json.dumps(
                {"seed": seed, "method": name, "accuracy": accuracy, **row}
            ),
            flush=True,
        )
    return rows


def table(per_seed):
    labels = {
        "pxap": "PxAP ↑",
        "all_parts_covered": "every part covered (%) ↑",
        "deletion_accuracy_10": "classifier acc. after top-10% removal ↓",
        "deletion_accuracy_10_noisy_fill": "the same, noisy fill ↓",
        "images_per_second": "explain speed (images/s) ↑",
    }
    methods = list(per_seed[0])
    lines = [
        "| metric | " + " | ".join(methods) + " |",
        "|---" * (len(methods) + 1) + "|",
    ]
    for key, label in labels.items():
        cells = []
        for method in methods:
            values = np.array([run[method][key] for run in per_seed])
            if key in (
                "all_parts_covered",
                "deletion_accuracy_10",
                "deletion_accuracy_10_noisy_fill",
            ):
                values = 100 * values
            digits = 0 if key == "images_per_second" else 1
            cell = f"{values.mean():.{digits}f}"
            if len(values) > 1:
                cell += f" ± {values.std():.{digits}f}"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    os.makedirs(CACHE, exist_ok=True)
    print(
        f"backend {keras.backend.backend()}, {DATA} data, seeds {SEEDS}, "
        f"{SIZE} px, "
        f"{NTRAIN} training / {NTEST} test images, {EPOCHS} epochs, "
        f"LearnedMask arguments {LM}",
        flush=True,
    )
    start = time.perf_counter()
    per_seed = [run(seed) for seed in SEEDS]
    print("\n" + table(per_seed))
    print(f"\nwall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
