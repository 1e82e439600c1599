"""
Title: Explaining a classifier you already have with LearnedMask
Author: keras_compattr contributors
Date created: 2027/01/05
Last modified: 2027/01/05
Description: A learned, comprehensive mask of a frozen keras.applications model.
Accelerator: None (a few CPU minutes; a GPU for ImageNet-sized images)
Tested: offline only (random MobileNetV3 weights instead of ImageNet's)
"""

"""
## Introduction

Most users who need explanations already have a trained classifier and
will not retrain it inside COMET. `kca.explainers.LearnedMask` explains
*that* classifier:

- it keeps your classifier **frozen** (its weights, batch-norm statistics
  included, never change) and trains only a **selector** network that
  draws a soft mask `m` over the image, started from a copy of your
  classifier's own feature maps (here the MobileNetV3 behind the
  `Rescaling` layer), so it begins with the features your model uses;
- the mask must keep what your classifier needs to predict its class from
  the masked-in image `m * x + (1 - m) * q`, and leave nothing from which
  a copy of the classifier, hardened on partly erased images, can still
  recognise the class in the masked-out image `(1 - m) * x + m * q`:
  COMET's objective (Zhang, Lee and Wang, ECCV 2024), so the mask covers
  *all* the evidence, not only its strongest part;
- it needs **no labels**: it explains the class your classifier predicts;
- once fitted, `explain` is one forward pass of the selector: your
  classifier's layers forward once, where Grad-CAM runs them forward and
  back.

Here the "existing classifier" is a `keras.applications` MobileNetV3-Small,
started from ImageNet weights and fine-tuned on the embedded two-part data
(each image holds two tiles of its class glyph, with exact masks of each
tile), so that we can check the explanations against the ground truth.

**What was tested.** The test suite runs this script offline, with
`KERAS_COMPATTR_EXAMPLE_BUDGET=tiny`: the MobileNetV3 then starts from
random weights (no download) and trains on a few dozen images, so its
numbers mean nothing. The default budget downloads the ImageNet weights.
"""

"""
## Setup
"""

import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # "jax" or "torch"

# keras_compattr first: it turns TensorFlow's oneDNN off before
# TensorFlow loads (see the FAQ); `import keras` first leaves it on.
import keras_compattr as kca
from keras_compattr.evaluation import format_table
from keras_compattr.visualization import plot_comparison

# isort: split
import keras
import numpy as np

TINY = os.environ.get("KERAS_COMPATTR_EXAMPLE_BUDGET") == "tiny"
TRAIN, TEST, EPOCHS, SIZE = (32, 8, 1, 32) if TINY else (1600, 200, 8, 96)
# The documented path: ImageNet weights (a download). Offline: random.
WEIGHTS = None if TINY else "imagenet"
keras.utils.set_random_seed(0)

"""
## The classifier you already have

keras_compattr feeds networks images in `[0, 1]`; `keras.applications`
MobileNetV3 expects `0..255` (it normalises inside), so a `Rescaling`
layer goes in front. Any preprocessing your classifier needs belongs
inside the model in the same way.
"""

shape = (SIZE, SIZE, 3)
train = kca.datasets.synthetic(TRAIN, SIZE, seed=0)
test = kca.datasets.synthetic(TEST, SIZE, seed=1)

inputs = keras.Input(shape)
x = keras.layers.Rescaling(255.0)(inputs)  # [0, 1] -> 0..255
backbone = keras.applications.MobileNetV3Small(
    input_shape=shape, include_top=False, weights=WEIGHTS, pooling="avg"
)
x = backbone(x)
outputs = keras.layers.Dense(4)(x)  # logits
classifier = keras.Model(inputs, outputs, name="classifier")
classifier.compile(
    keras.optimizers.Adam(1e-3),
    keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
classifier.fit(
    train["images"], train["labels"], epochs=EPOCHS, batch_size=32, verbose=2
)
print(classifier.evaluate(test["images"], test["labels"], verbose=0))

"""
A classifier straight from ImageNet works the same way, with no data set
of your own labels: `LearnedMask` labels every image with the class the
classifier predicts.

```python
imagenet = keras.applications.MobileNetV3Small(weights="imagenet")
classifier = keras.Sequential(
    [keras.Input((224, 224, 3)), keras.layers.Rescaling(255.0), imagenet]
)
explainer = kca.explainers.LearnedMask(classifier)
explainer.fit(your_photos, epochs=8)  # (N, 224, 224, 3), no labels
```

A KerasHub `ImageClassifier` (e.g.
`keras_hub.models.ImageClassifier.from_preset("resnet_50_imagenet")`) can
be passed as it is: it is wrapped with its own preprocessing.
"""

"""
## Fitting the explainer

`fit` is Keras' `fit` (callbacks, `validation_data`, datasets). Before
training it hardens a copy of the classifier on images with random parts
removed (the judge of the masked-out image), then trains the selector.
Your classifier is the predictor of the masked-in image, frozen. We check
that it is left bit for bit as it was.
"""

before = [keras.ops.convert_to_numpy(w).copy() for w in classifier.weights]
explainer = kca.explainers.LearnedMask(classifier)
explainer.fit(train["images"], epochs=EPOCHS, batch_size=32, verbose=2)
unchanged = all(
    np.array_equal(b, keras.ops.convert_to_numpy(w))
    for b, w in zip(before, classifier.weights)
)
print("classifier unchanged:", unchanged)
assert unchanged

"""
`explainer.evaluate` reports how well the mask does its two jobs: the
classifier's agreement with its own prediction on the masked-in image
(`accuracy`) and the judge's accuracy on the masked-out image
(`masked_out_accuracy`; chance is 25% here), with the mask's area.
"""

print(explainer.evaluate(test["images"], verbose=0, return_dict=True))

"""
## LearnedMask beside Grad-CAM, on the same classifier

Both explain the class the classifier predicts, and the classifier itself
judges fidelity: its accuracy once the top 10% pixels of a map are set to
the mean colour (lower: the map found what the classifier uses). "Every
part covered" is the share of images whose map (above 0.5) covers both
evidence tiles; `kca.evaluation.evaluate_explanations(explainer, ...)`
runs every other metric too.
"""

explainers = {
    "LearnedMask": explainer,
    "Grad-CAM": kca.explainers.GradCAM(classifier),
}
fill = train["images"].mean(axis=(0, 1, 2))
results, maps = {}, {}
for name, method in explainers.items():
    start = time.perf_counter()
    maps[name] = method.explain(test["images"])
    seconds = time.perf_counter() - start
    results[name] = {
        "pxap": kca.metrics.pxap(maps[name], test["masks"]),
        "all_parts_covered": kca.metrics.coverage(
            maps[name], test["part_masks"]
        )["all_parts_covered"],
        "deletion_accuracy_10": kca.metrics.deletion_accuracy(
            classifier,
            test["images"],
            test["labels"],
            maps[name],
            fraction=0.1,
            fill=fill,
        ),
        "images_per_second": len(test["images"]) / seconds,
    }
print(format_table(results))

plot_comparison(
    test["images"][:4],
    {name: m[:4] for name, m in maps.items()},
    labels=test["labels"][:4],
    class_names=test["class_names"],
    gt_masks=test["masks"][:4],
    save_path="learned_mask_comparison.png",
)

"""
## Saving

The explainer is a Keras model: one `.keras` file holds the selector, the
classifier, its hardened copy and the settings. Loading needs
`keras_compattr.explainers` imported (it registers the class).
"""

explainer.save("learned_mask.keras")
reloaded = keras.saving.load_model("learned_mask.keras")
np.testing.assert_allclose(
    reloaded.explain(test["images"][:4]), maps["LearnedMask"][:4], atol=1e-5
)
