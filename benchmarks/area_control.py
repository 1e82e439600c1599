"""Area control side by side: COMET's masks against Grad-CAM of the black box.

Trains the benchmark's detector once (cached in $CACHE, default
/tmp/compattr_area), then one COMET model per JSON spec given on the command
line, and prints one JSON line per run: PxAP, pointing game, both-parts
coverage, mean part coverage, selected area, accuracy and the detector's
masked-out accuracy, on the soft masked-out image that training sees
(`masked_out_acc`) and on that of the decision mask `m > 0.5`
(`hard_masked_out_acc`), and the accuracy of an independent judge on the
latter (`judge_masked_out_acc`: `keras_compattr.evaluation.train_judge`,
another architecture and seed trained on randomly masked images, which
COMET never saw; chance is 0.25).

    python benchmarks/area_control.py gradcam '{"area_budget": "auto"}' \\
        '{"area_budget": 0.2, "hinge_reduction": "sample"}'
    EPOCHS=6 python benchmarks/area_control.py '{"lam": 3}' '{"lam": 15}'

A spec holds `ComprehensiveAttributionModel` arguments, plus `"lam"` (a
fixed multiplier: an `AreaMultiplier` with min = max = lam), `"ctl"`
(`AreaMultiplier` arguments), `"width"` (the tiny selector's width) and
`"from_detector"` (true: the selector is `as_selector` of a trainable copy
of the trained detector). Other keys (`"hardening": false`, ...) go to the
model as they are.
Environment: SIZE (48), NTRAIN (1600), EPOCHS (10), VARIANT (two_part or
varied), SEED (0).
"""

import json
import os
import sys
import time

import keras
import numpy as np

import keras_compattr as kca
from keras_compattr import metrics
from keras_compattr import training as recipe

SIZE = int(os.environ.get("SIZE", 48))
NTRAIN = int(os.environ.get("NTRAIN", 1600))
EPOCHS = int(os.environ.get("EPOCHS", 10))
VARIANT = os.environ.get("VARIANT", "two_part")
SEED = int(os.environ.get("SEED", 0))
CACHE = os.environ.get("CACHE", "/tmp/compattr_area")
SHAPE, K = (SIZE, SIZE, 3), 4


def score(test, maps, name, extra, soft=True):
    """Prints one JSON row; coverage and area only for maps in [0, 1]."""
    row = {
        "name": name,
        "pxap": metrics.pxap(maps, test["masks"]),
        "pointing": metrics.pointing_game(maps, test["masks"]),
    }
    if soft:
        covered = metrics.coverage(maps, test["part_masks"])
        row["both"] = covered["all_parts_covered"]
        row["part_coverage"] = covered["part_coverage"]
        row["area"] = float((maps > 0.5).mean())
    row.update(extra)
    print(
        json.dumps(
            {
                k: round(float(v), 4) if isinstance(v, (int, float)) else v
                for k, v in row.items()
            }
        ),
        flush=True,
    )


def partial_evidence_accuracy(network, test, fill):
    """Accuracy with the first evidence part removed, the second kept."""
    return kca.evaluation.masked_out_accuracy(
        network, test["images"], test["labels"], test["part_masks"][:, 0], fill
    )


def independent_judge(train, fill):
    """The benchmark's judge, trained once per data set and seed."""
    path = os.path.join(CACHE, f"judge_{VARIANT}_{SIZE}_{NTRAIN}_{SEED}.keras")
    if os.path.exists(path):
        return keras.saving.load_model(path)
    judge = kca.evaluation.train_judge(
        train["images"], train["labels"], K, fill, seed=SEED + 500
    )
    judge.save(path)
    return judge


def main(specs):
    os.makedirs(CACHE, exist_ok=True)
    train = kca.datasets.synthetic(NTRAIN, SIZE, K, VARIANT, seed=SEED)
    test = kca.datasets.synthetic(300, SIZE, K, VARIANT, seed=SEED + 1)
    path = os.path.join(
        CACHE, f"detector_{VARIANT}_{SIZE}_{NTRAIN}_{SEED}.keras"
    )
    if os.path.exists(path):
        detector = keras.saving.load_model(path)
    else:
        keras.utils.set_random_seed(SEED)
        detector = recipe.small_classifier(SHAPE, K, "detector")
        recipe.train_classifier(
            detector, train["images"], train["labels"], epochs=8, verbose=0
        )
        detector.save(path)
    outputs = detector.predict(test["images"], verbose=0)
    accuracy = float(np.mean(outputs.argmax(-1) == test["labels"]))
    fill = train["images"].mean(axis=(0, 1, 2))
    judge = independent_judge(train, fill)
    judge_accuracy = float(
        np.mean(
            judge.predict(test["images"], verbose=0).argmax(-1)
            == test["labels"]
        )
    )
    print(
        json.dumps(
            {
                "detector_acc": accuracy,
                "judge_acc": judge_accuracy,
                "detector_half_acc": partial_evidence_accuracy(
                    detector, test, fill
                ),
                "judge_half_acc": partial_evidence_accuracy(judge, test, fill),
            }
        ),
        flush=True,
    )
    for spec in specs:
        if spec == "gradcam":
            maps = kca.explainers.GradCAM(detector).explain(
                test["images"], test["labels"]
            )
            extra = {"acc": accuracy}
            for threshold in (0.5, float(np.quantile(maps, 0.8))):
                key = "judge_masked_out_acc" + (
                    "" if threshold == 0.5 else "_top20"
                )
                extra[key] = kca.evaluation.masked_out_accuracy(
                    judge,
                    test["images"],
                    test["labels"],
                    maps,
                    fill,
                    threshold,
                )
            score(test, maps, "gradcam", extra)
            continue
        if spec == "rise":
            maps = kca.explainers.RISE(
                detector, num_masks=500, fill=fill, seed=SEED
            ).explain(test["images"], test["labels"])
            maps = kca.evaluation.unit_maps(maps)
            extra = {"acc": accuracy}
            extra["judge_masked_out_acc"] = kca.evaluation.masked_out_accuracy(
                judge, test["images"], test["labels"], maps, fill
            )
            score(test, maps, "rise", extra)
            continue
        kwargs = json.loads(spec)
        if "lam" in kwargs:
            lam = kwargs.pop("lam")
            kwargs["area_budget"] = kca.losses.AreaMultiplier(
                K,
                initial_multiplier=lam,
                min_multiplier=lam,
                max_multiplier=lam,
            )
        if "width" in kwargs:
            kwargs["selector"] = kca.models.build_selector(
                SHAPE, backbone="tiny", width=kwargs.pop("width")
            )
        from_detector = kwargs.pop("from_detector", False)
        if from_detector:
            copy = keras.models.clone_model(detector)
            copy.set_weights(detector.get_weights())
            if from_detector == "frozen":
                copy.trainable = False
            kwargs["selector"] = kca.models.as_selector(copy, SHAPE)
        if "ctl" in kwargs:
            kwargs["area_budget"] = kca.losses.AreaMultiplier(
                K, **kwargs.pop("ctl")
            )
        keras.utils.set_random_seed(SEED)
        model = recipe.small_comet(SHAPE, K, detector, **kwargs)
        start = time.time()
        history = recipe.train_comet(
            model, train["images"], train["labels"], epochs=EPOCHS, verbose=0
        )
        logs = model.evaluate(
            test["images"], test["labels"], verbose=0, return_dict=True
        )
        extra = {
            "acc": logs["accuracy"],
            "masked_out_acc": logs["masked_out_accuracy"],
            "train_s": time.time() - start,
            "area_multiplier": history.history.get("area_multiplier", [None])[
                -1
            ],
        }
        masks = model.explain(test["images"], verbose=0)
        model_fill = keras.ops.convert_to_numpy(model.fill)
        extra["comet_judge_half_acc"] = partial_evidence_accuracy(
            model.judge, test, model_fill
        )
        for key, network in (
            ("hard_masked_out_acc", detector),
            ("judge_masked_out_acc", judge),
        ):
            extra[key] = kca.evaluation.masked_out_accuracy(
                network, test["images"], test["labels"], masks, model_fill
            )
        score(test, masks, spec, extra)
        logits = model.explain(test["images"], verbose=0, output="logits")
        score(test, logits, spec + " (logits)", extra, soft=False)


if __name__ == "__main__":
    main(sys.argv[1:])
