"""Saves COMET on one backend, or loads it on another, and explains.

Run as a script (the backend is fixed when Keras is first imported):

    python cross_backend.py BACKEND save FOLDER
    python cross_backend.py BACKEND load FOLDER

`save` trains a tiny COMET model for one epoch on BACKEND and writes
`FOLDER/model.keras`; both modes then write `FOLDER/<mode>.npz` with the
masks of `explain`, the probabilities of `predict`, the saliency maps of
the detector (a gradient explainer) and the fill value, computed on the
same images.
"""

import os
import sys

backend, mode, folder = sys.argv[1:4]
os.environ["KERAS_BACKEND"] = backend

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_compattr as kca  # noqa: E402

SHAPE = (32, 32, 3)
data = kca.datasets.synthetic(
    num_images=16, image_size=32, num_classes=3, seed=0
)
images, labels = data["images"], data["labels"]
path = os.path.join(folder, "model.keras")
if mode == "save":
    keras.utils.set_random_seed(0)
    model = kca.ComprehensiveAttributionModel(
        selector=kca.models.build_selector(SHAPE, backbone="tiny", width=4),
        predictor=kca.models.build_classifier(
            SHAPE, 3, widths=(4, 8), blocks_per_stage=1, name="predictor"
        ),
        detector=kca.models.build_classifier(
            SHAPE, 3, widths=(4, 8), blocks_per_stage=1, name="detector"
        ),
        detector_weight=0.0,  # the detector is untrained here
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.fit(images, labels, epochs=1, batch_size=8, verbose=0)
    model.save(path)
else:
    model = kca.models.load_model(path)
np.savez(
    os.path.join(folder, f"{mode}.npz"),
    masks=model.explain(images, verbose=0),
    probabilities=model.predict(images, verbose=0),
    saliency=kca.explainers.Saliency(model.detector).explain(images, labels),
    fill=keras.ops.convert_to_numpy(model.fill),
)
