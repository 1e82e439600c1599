"""
Title: Your own images: train COMET on a folder of images
Author: keras_compattr contributors
Date created: 2026/11/25
Last modified: 2026/11/25
Description: Train COMET on a class-per-folder image set, explain files.
Accelerator: GPU (optional; runs in a few minutes on a CPU)
"""

"""
## Introduction

Most real projects start from a folder of images sorted into one
sub-folder per class:

```
my_images/
  train/  cat/ 001.jpg ...   dog/ ...
  val/    cat/ ...           dog/ ...
```

`keras_compattr.datasets.load("folder:my_images", split="train")` turns it
into a `tf.data.Dataset` of images in `[0, 1]` and labels, on either
backend. This example writes such a folder itself (from the embedded
synthetic data, so it runs anywhere), then trains the detector and COMET
on it, saves the masks of a fixed batch after every epoch, and explains
image files.

**Pretrained backbones.** For photographs, start the selector and the
predictor from ImageNet weights: `build_selector(shape,
backbone="mobilenet_v3_small", weights="imagenet")` uses
`keras.applications`, and KerasHub presets (MobileNetV3, ResNet,
EfficientNet...) can serve as selector, predictor or detector; the
backbones guide (`docs/backbones.md`) lists them. Downloading weights needs
network access. Here small networks trained from scratch keep the run
short and offline.
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
from keras_compattr.visualization import ExplanationMonitor
from keras_compattr.visualization import plot_explanations
from keras_compattr.visualization import plot_history

# isort: split
import keras
import numpy as np

TINY = os.environ.get("KERAS_COMPATTR_EXAMPLE_BUDGET") == "tiny"
TRAIN_IMAGES, VAL_IMAGES, EPOCHS = (32, 8, 1) if TINY else (1200, 200, 8)
IMAGE_SIZE = 32 if TINY else 48
keras.utils.set_random_seed(0)

"""
## A folder of images

Replace this cell with your own folder. Here we write PNG files of the
synthetic data into `my_images/{train,val}/<class>/`.
"""

root = "my_images"
for split, count, seed in (("train", TRAIN_IMAGES, 0), ("val", VAL_IMAGES, 1)):
    data = kca.datasets.synthetic(count, IMAGE_SIZE, seed=seed)
    for index, (image, label) in enumerate(zip(data["images"], data["labels"])):
        folder = os.path.join(root, split, data["class_names"][label])
        os.makedirs(folder, exist_ok=True)
        keras.utils.save_img(os.path.join(folder, f"{index:04d}.png"), image)

"""
## Loading it

`load` resizes to `image_size`, batches and prefetches; `augment=True`
adds the paper's random crop, flip and rotation. `return_info=True` gives
the class names.
"""

train, info = kca.datasets.load(
    f"folder:{root}",
    split="train",
    image_size=IMAGE_SIZE,
    batch_size=32,
    augment=not TINY,
    return_info=True,
)
val = kca.datasets.load(
    f"folder:{root}", split="val", image_size=IMAGE_SIZE, batch_size=32
)
print(info["class_names"], info["num_examples"], "training images")
shape, classes = (IMAGE_SIZE, IMAGE_SIZE, 3), info["num_classes"]

"""
## Stage 1: the detector

Any classifier trained on the full images. With a model you already have,
load it and skip this cell.
"""

detector = small_classifier(shape, classes, name="detector")
train_classifier(detector, train, epochs=EPOCHS, validation_data=val)

"""
## Stage 2: COMET, watching the masks

`ExplanationMonitor` explains the same validation images after every
epoch and writes `monitor/epoch_NNN.png`: the masks should close in on the
evidence, not drift.
"""

val_images, val_labels = next(iter(val))
val_images, val_labels = np.asarray(val_images)[:4], np.asarray(val_labels)[:4]
monitor = ExplanationMonitor(
    val_images,
    path="monitor",
    labels=val_labels,
    class_names=info["class_names"],
)
model = small_comet(
    shape, classes, detector, area_budget=0.2, hinge_reduction="sample"
)
history = train_comet(
    model, train, epochs=EPOCHS, validation_data=val, callbacks=[monitor]
)
model.save("folder_comet.keras")
plot_history(history, area_budget=0.2, save_path="folder_history.png")

"""
## Explaining image files

`keras-compattr explain --model folder_comet.keras FILES...` does the same
from the shell.
"""

files = sorted(os.listdir(os.path.join(root, "val", info["class_names"][0])))
paths = [os.path.join(root, "val", info["class_names"][0], f) for f in files]
images = np.stack(
    [
        keras.utils.img_to_array(keras.utils.load_img(p), dtype="float32")
        / 255.0
        for p in paths[:4]
    ]
)
plot_explanations(
    images,
    model.explain(images, verbose=0),
    predictions=model.predict(images, verbose=0),
    class_names=info["class_names"],
    save_path="folder_explanations.png",
)
