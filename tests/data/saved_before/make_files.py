"""Writes the files of this folder: models saved by an earlier keras_compattr.

`comet.zip` and `layers.zip` (`.keras` archives, renamed so that packaging
keeps them) and `outputs.npz` were written by this script, run with
keras_compattr at commit d37602a, before the export decorator, on JAX:

    KERAS_BACKEND=jax python tests/data/saved_before/make_files.py DIR

`tests/test_api.py` checks that the current code loads them and computes the
same outputs. Do not regenerate them with the current code: their point is
to have been written by an earlier version.
"""

import os
import sys

import keras
import numpy as np

import keras_compattr as kca
from keras_compattr.training import WarmupStepDecay

out = sys.argv[1]
shape = (16, 16, 3)
keras.utils.set_random_seed(0)
images = np.random.default_rng(0).uniform(0, 1, (4, *shape)).astype("float32")

model = kca.ComprehensiveAttributionModel(
    selector=kca.models.build_selector(shape, backbone="tiny", width=4),
    predictor=kca.models.build_classifier(
        shape, 3, widths=(4,), name="predictor"
    ),
    detector=kca.models.build_classifier(
        shape, 3, widths=(4,), name="detector"
    ),
    area_budget="auto",
)
model.compile(
    optimizer=keras.optimizers.Adam(WarmupStepDecay(1e-3, steps_per_epoch=5)),
    predictor_optimizer=keras.optimizers.Adam(1e-3),
)
model.fit(images, np.arange(4) % 3, epochs=1, batch_size=4, verbose=0)
model.save(os.path.join(out, "comet.keras"))

inputs = keras.Input(shape)
x = kca.layers.ImagePreprocessing("-1_1")(inputs)
x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(x)
outputs = kca.layers.MaskHead(16, 16)(x)
layers_model = keras.Model(inputs, outputs)
layers_model.compile(
    optimizer="adam",
    loss="binary_crossentropy",
    metrics=[kca.metrics.PxAP(num_thresholds=11), kca.metrics.Coverage()],
)
layers_model.save(os.path.join(out, "layers.keras"))

np.savez(
    os.path.join(out, "outputs.npz"),
    images=images,
    predictions=model.predict(images, verbose=0),
    masks=model.explain(images, verbose=0),
    layers=layers_model.predict(images, verbose=0),
)
for name in ("comet", "layers"):
    os.replace(
        os.path.join(out, f"{name}.keras"), os.path.join(out, f"{name}.zip")
    )
