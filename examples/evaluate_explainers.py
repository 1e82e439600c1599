"""
Title: Scoring any explainer with the paper's metrics
Author: keras_compattr contributors
Date created: 2026/11/25
Last modified: 2026/11/25
Description: Score Grad-CAM, Saliency, IG, RISE and your own explainer alike.
Accelerator: None (runs in a few minutes on a CPU)
"""

"""
## Introduction

`keras_compattr.metrics` scores attribution maps from **any** method: maps
are NumPy arrays `(N, H, W)`, and the metrics that need a model take any
Keras classifier. This example trains an ordinary classifier on the
embedded two-part data (each image holds two tiles of its class glyph,
with exact masks of each tile), explains it with the four post-hoc
explainers of `keras_compattr.explainers` and with a hand-written one, and
compares them with `evaluate_explanations`, which runs every metric at
once.
"""

"""
## Setup
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # "jax" or "torch"

# keras_compattr first: it turns TensorFlow's oneDNN off before
# TensorFlow loads (see the FAQ); `import keras` first leaves it on.
import keras_compattr as kca
from keras_compattr.evaluation import evaluate_explanations
from keras_compattr.evaluation import format_table
from keras_compattr.evaluation import small_classifier
from keras_compattr.evaluation import train_classifier
from keras_compattr.visualization import plot_comparison
from keras_compattr.visualization import plot_curves

# isort: split
import keras
import numpy as np

TINY = os.environ.get("KERAS_COMPATTR_EXAMPLE_BUDGET") == "tiny"
TRAIN, TEST, EPOCHS, SIZE = (48, 8, 1, 32) if TINY else (1600, 200, 8, 48)
keras.utils.set_random_seed(0)

"""
## A classifier to explain, and an evaluator

Fidelity metrics (deletion, insertion, keep accuracy) ask a classifier how
much the pixels a map points at matter. Use a classifier **other** than the
explained one where you can (here: another initialisation and other
training images), so a map is not rewarded for exploiting one network's
quirks.
"""

shape = (SIZE, SIZE, 3)
train = kca.datasets.synthetic(TRAIN, SIZE, seed=0)
test = kca.datasets.synthetic(TEST, SIZE, background_swap=True, seed=1)
other = kca.datasets.synthetic(TRAIN, SIZE, seed=2)

classifier = small_classifier(shape, 4, name="classifier")
train_classifier(classifier, train["images"], train["labels"], epochs=EPOCHS)
evaluator = small_classifier(shape, 4, name="evaluator")
train_classifier(evaluator, other["images"], other["labels"], epochs=EPOCHS)

"""
## Explainers

Each explainer has `.explain(images, labels)`; we explain the true class.
Any function from images to maps works too, such as this "centre prior"
that ignores the image: a useful floor for every metric.
"""

images, labels = test["images"], test["labels"]
explainers = {
    "Grad-CAM": kca.explainers.GradCAM(classifier),
    "Saliency": kca.explainers.Saliency(classifier),
    "IntegratedGradients": kca.explainers.IntegratedGradients(
        classifier, steps=4 if TINY else 16
    ),
    "RISE": kca.explainers.RISE(classifier, num_masks=16 if TINY else 500),
}


def centre_prior(x):
    rows, cols = np.mgrid[: x.shape[1], : x.shape[2]] / (x.shape[1] - 1)
    prior = 1.0 - np.hypot(rows - 0.5, cols - 0.5)
    return np.broadcast_to(prior, x.shape[:3]).astype("float32")


explain_fns = {
    name: (lambda x, e=e: e.explain(x, labels[: len(x)]))
    for name, e in explainers.items()
}
explain_fns["centre prior"] = centre_prior

"""
## Every metric at once

`evaluate_explanations` returns a dict per method; `format_table` prints
them side by side (percentages, with an arrow for the better direction).
"""

fill = train["images"].mean(axis=(0, 1, 2))
results, maps = {}, {}
for name, explain in explain_fns.items():
    results[name], maps[name] = evaluate_explanations(
        explain,
        images,
        labels,
        evaluator,
        masks=test["masks"],
        part_masks=test["part_masks"],
        swapped_images=test["swapped_images"],
        fill=fill,
        deletion_steps=4 if TINY else 20,
        return_maps=True,
    )
print(format_table(results))

"""
Read the columns together. The centre prior covers both parts of most
images only because it selects most of the image (see the selected area),
and it is perfectly robust because it ignores the image: robustness and
coverage mean something only next to localisation (PxAP, pointing game,
attribution mass) and fidelity (deletion and keep accuracy).
"""

"""
## Single metrics

Each metric is also a plain function, for your own loops:
"""

grad_cam = maps["Grad-CAM"]
print("PxAP", kca.metrics.pxap(grad_cam, test["masks"]))
print("pointing game", kca.metrics.pointing_game(grad_cam, test["masks"]))
covered = kca.metrics.coverage(grad_cam, test["part_masks"])
print("part coverage", covered["part_coverage"])
print("both parts covered", covered["all_parts_covered"])

"""
## Figures

The same colour scale for every method, with the evidence tiles outlined.
(A notebook shows the figure a cell ends with; the functions of
`keras_compattr.visualization` also save it to `save_path`.)
"""

plot_comparison(
    images[:4],
    {name: m[:4] for name, m in maps.items()},
    labels=labels[:4],
    class_names=test["class_names"],
    gt_masks=test["masks"][:4],
    save_path="explainers_comparison.png",
)

"""
The insertion and deletion curves behind the AUCs.
"""

plot_curves(
    {name: r["curves"] for name, r in results.items()},
    save_path="explainers_curves.png",
)
