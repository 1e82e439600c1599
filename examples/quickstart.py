"""
Title: Quick start: an image classifier that shows the pixels it used
Author: keras_compattr contributors
Date created: 2026/11/25
Last modified: 2026/11/25
Description: Train COMET on the embedded synthetic data and look at its masks.
Accelerator: GPU (optional; runs in a few minutes on a CPU)
"""

"""
## Introduction

COMET (Zhang, Lee and Wang, ECCV 2024, https://arxiv.org/abs/2407.19308)
trains a **selector** that draws a soft mask over the image and a
**predictor** that classifies only the masked-in pixels, while a frozen
**detector** checks that no evidence of the class is left in the
masked-out pixels. The mask is the explanation of every prediction.

This example trains the detector, then COMET, on data that ships with
`keras_compattr`: each image holds two tiles of its class glyph among
distractor tiles, with exact ground-truth masks.
"""

"""
## Setup
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # "jax" or "torch"

# keras_compattr first: it turns TensorFlow's oneDNN off before
# TensorFlow loads (see the FAQ); `import keras` first leaves it on.
import keras_compattr as kca

# isort: split
import keras

# A tiny budget for the test suite; the full one gives the README's figure.
TINY = os.environ.get("KERAS_COMPATTR_EXAMPLE_BUDGET") == "tiny"
NUM_IMAGES, EPOCHS = (64, 1) if TINY else (1600, 10)
SHAPE, CLASSES = (48, 48, 3), 4

"""
## Data

`kca.datasets.synthetic` returns images in `[0, 1]`, labels, the union
mask of the evidence and one mask per evidence part.
"""

train = kca.datasets.synthetic(num_images=NUM_IMAGES, image_size=48, seed=0)
test = kca.datasets.synthetic(num_images=200, image_size=48, seed=1)

"""
## The detector

Any classifier trained on full images can be the detector. Here, a small
ResNet.
"""

detector = kca.models.build_classifier(SHAPE, CLASSES, widths=(16, 32, 64))
detector.compile(
    optimizer="adam",
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
detector.fit(train["images"], train["labels"], epochs=EPOCHS, batch_size=64)

"""
## COMET

The area budget is the share of the image the mask may cover for free: the
evidence here covers about 9% of each image.
"""

model = kca.ComprehensiveAttributionModel(
    selector=kca.models.build_selector(SHAPE, backbone="tiny"),
    predictor=kca.models.build_predictor(SHAPE, CLASSES, widths=(16, 32, 64)),
    detector=detector,
    area_budget=0.2,
    hinge_reduction="sample",
)
model.compile(optimizer=keras.optimizers.AdamW(2e-3, weight_decay=0.03))
model.fit(train["images"], train["labels"], epochs=EPOCHS, batch_size=64)

"""
## Explanations

`explain` runs the selector alone and returns one mask per image.
"""

masks = model.explain(test["images"])
print("mean mask area:", masks.mean())
print("PxAP:", kca.metrics.pxap(masks, test["masks"]))
print(
    "both parts covered:",
    kca.metrics.coverage(masks, test["part_masks"])["all_parts_covered"],
)

from keras_compattr.visualization import plot_explanations

plot_explanations(
    test["images"][:4],
    masks[:4],
    labels=test["labels"][:4],
    predictions=model.predict(test["images"][:4]),
    class_names=test["class_names"],
    save_path="quickstart_explanations.png",
)
