"""
Title: Real photographs: COMET on Oxford-IIIT Pet with KerasHub backbones
Author: keras_compattr contributors
Date created: 2026/12/03
Last modified: 2026/12/03
Description: COMET with KerasHub ImageNet presets on pet photos, vs. Grad-CAM.
Accelerator: GPU (downloads the data set and the presets)
Requirements: keras-hub
Tested: offline only (tiny budget: tfds mock data, random ResNets)
"""

"""
## Introduction

The other tutorials train on the synthetic data that ships with
keras_compattr. This one trains COMET on photographs: the
[Oxford-IIIT Pet](https://www.robots.ox.ac.uk/~vgg/data/pets/) data set
(37 breeds of cats and dogs, 3,680 training and 3,669 test photos), whose
segmentation masks (trimaps) give a ground truth for the explanations.

All three networks start from ImageNet weights, from
[KerasHub](https://keras.io/keras_hub/) presets:

- the **detector** is a ResNet-50 `ImageClassifier` from the preset
  `resnet_50_imagenet`, fine-tuned on the full photos: the black-box
  classifier one would otherwise explain post hoc;
- the **predictor** is the `resnet_50_imagenet` backbone with a new
  37-class head, trained on the masked-in images;
- the **selector** is the `resnet_18_imagenet` backbone under an LR-ASPP
  mask head.

At the end, COMET's masks and the detector's Grad-CAM maps are scored with
the same metrics against the pets' masks.

**Where it runs.** On a Colab GPU runtime (T4 or better) with the default
budget. It downloads the data set (about 800 MB) and the presets.

**What was tested.** Only the offline path: with
`KERAS_COMPATTR_EXAMPLE_BUDGET=tiny` (the test suite) the script runs on
`tfds.testing.mock_data` (random images and masks in the data set's
format) with small, randomly initialised ResNets built from the same
KerasHub classes instead of the presets, so every line runs without
network access. Its numbers mean nothing. The real-data run, and the
numbers it gives, have not been checked by the test suite.
"""

"""
## Setup
"""

import contextlib
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # "jax" or "torch"

# keras_compattr first: it turns TensorFlow's oneDNN off before
# TensorFlow loads (see the FAQ); `import keras` first leaves it on.
import keras_compattr as kca
from keras_compattr.evaluation import evaluate_explanations
from keras_compattr.evaluation import format_table
from keras_compattr.visualization import plot_comparison
from keras_compattr.visualization import plot_curves
from keras_compattr.visualization import plot_explanations

# isort: split
import keras
import keras_hub
import numpy as np

# The tiny budget of the test suite runs offline: tfds mock data and small
# random ResNets instead of the data set and the presets.
TINY = os.environ.get("KERAS_COMPATTR_EXAMPLE_BUDGET") == "tiny"
IMAGE_SIZE = 64 if TINY else 224
BATCH_SIZE = 8 if TINY else 32
DETECTOR_EPOCHS = 1 if TINY else 5
COMET_EPOCHS = 1 if TINY else 10
TEST_IMAGES = 16 if TINY else 512  # explained and scored
DETECTOR_PRESET = "resnet_50_imagenet"
PREDICTOR_PRESET = "resnet_50_imagenet"
SELECTOR_PRESET = "resnet_18_imagenet"
SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 3)
keras.utils.set_random_seed(0)

offline = contextlib.ExitStack()
if TINY:
    import tensorflow_datasets as tfds

    offline.enter_context(tfds.testing.mock_data(num_examples=32))

"""
## Data

`kca.datasets.load` gives batches of images in `[0, 1]`; the training
split gets the paper's augmentation (random crop, flip and rotation).
`with_masks=True` adds the pet's mask to each test example: trimap pixels
"pet" and "border" are foreground, "background" is not (see the data sets
guide). The first call downloads and prepares the data set.
"""

train, info = kca.datasets.load(
    "oxford_iiit_pet",
    split="train",
    image_size=IMAGE_SIZE,
    batch_size=BATCH_SIZE,
    augment=True,
    return_info=True,
)
test = kca.datasets.load(
    "oxford_iiit_pet",
    split="test",
    image_size=IMAGE_SIZE,
    batch_size=BATCH_SIZE,
    with_masks=True,
)
num_classes, class_names = info["num_classes"], info["class_names"]
print(num_classes, "classes,", info["num_examples"], "training images")

# A fixed set of test images to explain and score, as NumPy arrays.
images, labels, masks = (
    np.concatenate(parts)
    for parts in zip(*test.unbatch().take(TEST_IMAGES).batch(64))
)
# Localisation metrics need a pet in every mask (true of the real data,
# not always of the random mock masks).
has_pet = masks.max(axis=(1, 2)) > 0
images, labels, masks = images[has_pet], labels[has_pet], masks[has_pet]
print("test images:", images.shape, "mean mask area:", masks.mean())

"""
## The networks, from KerasHub presets

`from_preset` downloads the architecture and the ImageNet weights. The
offline stand-ins build the same KerasHub classes with random weights and
few filters; they only make the tiny run possible.
"""


def classifier_from_preset(preset):
    """A KerasHub `ImageClassifier` with a new 37-class head."""
    if not TINY:
        return keras_hub.models.ImageClassifier.from_preset(
            preset, num_classes=num_classes
        )
    converter = keras_hub.layers.ResNetImageConverter(
        image_size=(IMAGE_SIZE, IMAGE_SIZE), scale=1.0 / 255.0
    )
    return keras_hub.models.ResNetImageClassifier(
        backbone=backbone_from_preset(preset),
        num_classes=num_classes,
        preprocessor=keras_hub.models.ResNetImageClassifierPreprocessor(
            converter
        ),
    )


def backbone_from_preset(preset):
    """A KerasHub `Backbone` (a feature extractor) with ImageNet weights."""
    if not TINY:
        return keras_hub.models.Backbone.from_preset(preset)
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 64, 64, 64],
        stackwise_num_blocks=[1, 1, 1, 1],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="basic_block",
    )


"""
## Stage 1: the detector

Fine-tune the ImageNet classifier on the full photos. KerasHub classifiers
take pixels in `0..255` and apply their preset's preprocessing themselves,
so the images are scaled back from `[0, 1]`.
"""

classifier = classifier_from_preset(DETECTOR_PRESET)
classifier.compile(
    optimizer=keras.optimizers.Adam(1e-4),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
classifier.fit(train.map(lambda x, y: (x * 255.0, y)), epochs=DETECTOR_EPOCHS)

"""
## Stage 2: COMET

The model wraps each network so that it takes images in `[0, 1]`: the
classifier keeps its preset's preprocessing (`0..255`, then the
converter's scale and offset), and the two backbones, which carry none,
get ImageNet's mean and standard deviation (`preprocessing="imagenet"`).
A pet fills a large part of most photos, so the mask may cover half of the
image before the area term pushes back.
"""

selector = kca.models.as_selector(
    backbone_from_preset(SELECTOR_PRESET), SHAPE, preprocessing="imagenet"
)
predictor = kca.models.as_predictor(
    backbone_from_preset(PREDICTOR_PRESET),
    SHAPE,
    num_classes=num_classes,
    preprocessing="imagenet",
)
model = kca.ComprehensiveAttributionModel(
    selector=selector,
    predictor=predictor,
    detector=classifier,
    area_budget=0.5,
)
model.compile()
history = model.fit(train, epochs=COMET_EPOCHS)

"""
## Accuracy

COMET classifies from the masked-in image alone; the detector sees the
whole photo.
"""

comet_accuracy = float(
    np.mean(np.argmax(model.predict(images, verbose=0), -1) == labels)
)
print("COMET accuracy:", comet_accuracy)
print("detector accuracy:", model.detector_accuracy(images, labels))

"""
## COMET against Grad-CAM

Grad-CAM explains the fine-tuned detector after the fact. `GradCAM`
opens the KerasHub classifier at its backbone's last feature map and runs
the preset's image converter itself, so it takes the same `[0, 1]` images
as COMET. `evaluate_explanations` scores both maps with every metric that
applies: localisation against the pets' masks (PxAP, pointing game,
attribution mass) and fidelity (deletion, insertion and keep accuracy,
scored by the detector, with removed pixels set to ImageNet's mean
colour).
"""

grad_cam = kca.explainers.GradCAM(classifier)


def grad_cam_maps(x):
    return grad_cam.explain(x, labels[: len(x)])


methods = {
    "COMET": lambda x: model.explain(x, verbose=0),
    "Grad-CAM (detector)": grad_cam_maps,
}
results, maps = {}, {}
for name, explain in methods.items():
    results[name], maps[name] = evaluate_explanations(
        explain,
        images,
        labels,
        model.detector,
        masks=masks,
        fill=(0.485, 0.456, 0.406),
        accuracy=comet_accuracy if name == "COMET" else None,
        batch_size=BATCH_SIZE,
        deletion_steps=4 if TINY else 20,
        robustness_images=4 if TINY else 64,
        return_maps=True,
    )
print(format_table(results))

"""
## Figures

The masks and the Grad-CAM maps on one colour scale, with the pets' masks
outlined; COMET's masked-in and masked-out images; the insertion and
deletion curves.
"""

plot_comparison(
    images[:6],
    {name: m[:6] for name, m in maps.items()},
    labels=labels[:6],
    class_names=class_names,
    gt_masks=masks[:6],
    save_path="pets_comparison.png",
)

"""
COMET's masked-in and masked-out images.
"""

plot_explanations(
    images[:4],
    maps["COMET"][:4],
    labels=labels[:4],
    predictions=model.predict(images[:4], verbose=0),
    class_names=class_names,
    save_path="pets_explanations.png",
)

"""
The insertion and deletion curves.
"""

model.save("pets_comet.keras")
plot_curves(
    {name: r["curves"] for name, r in results.items()},
    save_path="pets_curves.png",
)
