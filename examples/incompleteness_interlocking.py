"""
Title: Why the detector: incompleteness and interlocking
Author: keras_compattr contributors
Date created: 2026/11/25
Last modified: 2026/11/25
Description: COMET with and without its detector: what the detector fixes.
Accelerator: GPU (optional; about 15 minutes on a 2-core CPU)
"""

"""
## Introduction

Selector/predictor methods (L2X, REAL-X and the like) train a selector to
draw a mask and a predictor to classify the masked-in image. They suffer
two failures that COMET's frozen **detector** is there to fix:

- **Incompleteness.** When an image holds two pieces of evidence, either
  suffices for the predictor, so a small mask covers one and leaves the
  other out. The explanation is then *sufficient* but not *complete*.
- **Interlocking.** Selector and predictor train together, so they can
  agree on a code: the mask's shape or position tells the predictor the
  class, whatever pixels lie under it. Accuracy stays high while the mask
  no longer shows the evidence.

COMET shows the masked-out image to a detector trained on full images and
punishes the selector when the detector still recognises the class there:
every piece of evidence must go into the mask.

This example trains both (`detector_weight=4` and `detector_weight=0`,
the ablation) with the same budget and seed on the embedded two-part
data, where each image holds **two** tiles of its class glyph, and
measures both failures.
"""

"""
## Setup
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # "jax" or "torch"

# keras_compattr first: it turns TensorFlow's oneDNN off before
# TensorFlow loads (see the FAQ); `import keras` first leaves it on.
import keras_compattr as kca
from keras_compattr.evaluation import small_classifier
from keras_compattr.evaluation import small_comet
from keras_compattr.evaluation import train_classifier
from keras_compattr.evaluation import train_comet
from keras_compattr.visualization import plot_comparison

# isort: split
import keras
import matplotlib.pyplot as plt
import numpy as np

TINY = os.environ.get("KERAS_COMPATTR_EXAMPLE_BUDGET") == "tiny"
TRAIN, TEST, SIZE = (48, 16, 32) if TINY else (1600, 300, 48)
DETECTOR_EPOCHS, EPOCHS = (1, 1) if TINY else (8, 10)
shape = (SIZE, SIZE, 3)
train = kca.datasets.synthetic(TRAIN, SIZE, seed=0)
test = kca.datasets.synthetic(TEST, SIZE, seed=1)

"""
## The detector, then two selector/predictor pairs
"""

keras.utils.set_random_seed(0)
detector = small_classifier(shape, 4, name="detector")
train_classifier(
    detector, train["images"], train["labels"], epochs=DETECTOR_EPOCHS
)

models = {}
for name, weight in (("COMET", 4.0), ("no detector", 0.0)):
    keras.utils.set_random_seed(0)  # the same initialisation for both
    models[name] = small_comet(
        shape,
        4,
        detector,
        detector_weight=weight,
        area_budget=0.2,
        hinge_reduction="sample",
    )
    train_comet(models[name], train["images"], train["labels"], epochs=EPOCHS)

"""
## Incompleteness: is every part in the mask?

`coverage` binarises each mask at 0.5 and reports, per evidence tile, the
share of its pixels inside; an image counts as complete when both tiles
are at least half covered. The detector's accuracy on the masked-out image
says the same from the other side: near chance (25%) means no evidence was
left out.
"""


def follows_the_mask(model, images, labels, seed=0):
    """How often the predictor follows the mask rather than the pixels.

    Each image `j` is shown to the predictor through the mask of an image
    `i` of another class: `x = m_i * x_j + (1 - m_i) * q`. A predictor that
    reads the pixels predicts `y_j`; one that decodes a class code in the
    mask's shape or position predicts `y_i`. Returns the fraction of `y_i`
    predictions (chance: 1 / 4).
    """
    rng = np.random.default_rng(seed)
    masks = model.explain(images, verbose=0)[..., None]
    fill = keras.ops.convert_to_numpy(model.fill)
    donors = np.array(
        [rng.choice(np.flatnonzero(labels != label)) for label in labels]
    )
    mixed = masks[donors] * images + (1 - masks[donors]) * fill
    predicted = model.predictor.predict(mixed, verbose=0).argmax(-1)
    return float(np.mean(predicted == labels[donors]))


def binarised_mask_accuracy(model, images, labels):
    """Predictor accuracy when only the pixels the mask shows are kept.

    The mask a reader sees is, in effect, its pixels above 0.5. Keeping
    exactly those (`x = [m > 0.5] * x + (1 - [m > 0.5]) * q`) tests whether
    the prediction rests on what the explanation shows, or on faint
    leftovers of a soft mask that the predictor learned to read.
    """
    hard = (model.explain(images, verbose=0) > 0.5)[..., None]
    fill = keras.ops.convert_to_numpy(model.fill)
    shown = np.where(hard, images, fill).astype("float32")
    predicted = model.predictor.predict(shown, verbose=0).argmax(-1)
    return float(np.mean(predicted == labels))


rows = {}
masks = {}
for name, model in models.items():
    logs = model.evaluate(
        test["images"], test["labels"], verbose=0, return_dict=True
    )
    masks[name] = model.explain(test["images"], verbose=0)
    covered = kca.metrics.coverage(masks[name], test["part_masks"])
    rows[name] = {
        "accuracy": logs["accuracy"],
        "detector on masked-out": logs["masked_out_accuracy"],
        "both parts covered": covered["all_parts_covered"],
        "part coverage": covered["part_coverage"],
        "PxAP / 100": kca.metrics.pxap(masks[name], test["masks"]) / 100,
        "acc. on binarised mask": binarised_mask_accuracy(
            model, test["images"], test["labels"]
        ),
        "follows the mask": follows_the_mask(
            model, test["images"], test["labels"]
        ),
    }
for name, row in rows.items():
    print(name, {k: round(float(v), 3) for k, v in row.items()})

"""
## Interlocking: does the predictor read what the mask shows?

Two tests, for two ways selector and predictor can collude.

- **Accuracy on the binarised mask** keeps only the pixels the mask shows
  (above 0.5). If the predictor's accuracy collapses there, it was reading
  faint leftovers of a soft mask: the explanation a reader sees is not
  what the prediction rests on.
- **Follows the mask** puts each image behind another class's mask. A
  predictor that decodes a class code in the mask's shape or position
  follows the mask's class (well above the 25% of chance); one that reads
  the evidence follows the pixels.

On the embedded data, with the full budget, the run behind the
documentation's benchmark gave: COMET 98.7% accuracy, 100% of images with
both parts covered, the detector at chance (25%) on the masked-out image;
the ablation 92.3% accuracy with a faint mask (part coverage 0.8%) that
leaves the evidence for the detector to find in 94% of the masked-out
images. Keeping only the pixels each mask shows, COMET's predictor still
scores 92%, the ablation's 31% (chance: 25%): the ablation's predictor
reads the faint leftovers of a mask that shows the reader almost nothing.
Neither followed the other class's mask more often than chance (COMET
23%, ablation 11%): on this data the collusion is a mask that hides
nothing from the predictor, not a shape code.

## Figures
"""

plot_comparison(
    test["images"][:6],
    {name: m[:6] for name, m in masks.items()},
    labels=test["labels"][:6],
    class_names=test["class_names"],
    gt_masks=test["masks"][:6],
    save_path="ablation_masks.png",
)

"""
The metrics of both models side by side.
"""

figure, ax = plt.subplots(figsize=(7.5, 3.4))
metrics = list(next(iter(rows.values())))
width = 0.38
for k, (name, row) in enumerate(rows.items()):
    positions = np.arange(len(metrics)) + (k - 0.5) * width
    bars = ax.bar(positions, [100 * row[m] for m in metrics], width, label=name)
    ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
ax.set_xticks(np.arange(len(metrics)), metrics, rotation=20, ha="right")
ax.set_ylabel("%")
ax.set_ylim(0, 112)
ax.legend(fontsize=8, loc="upper right")
ax.set_title("COMET vs. the no-detector ablation (test split)", fontsize=10)
figure.tight_layout()
figure.savefig("ablation_metrics.png", dpi=110)
