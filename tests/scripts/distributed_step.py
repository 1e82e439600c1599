"""One COMET training step on 2 virtual CPU devices vs on one device.

Run as a script (devices must be set before the backend starts). Prints
the largest weight difference between the two runs as JSON.
"""

import json
import os
import sys

backend = sys.argv[1]
os.environ["KERAS_BACKEND"] = backend
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if backend == "jax":
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"

import keras  # noqa: E402
import numpy as np  # noqa: E402

if backend == "tensorflow":
    import tensorflow as tf  # noqa: E402

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )

import keras_compattr as kca  # noqa: E402

SHAPE, CLASSES = (16, 16, 3), 3


def conv_net(name, outputs):
    # No batch norm: per-replica batch statistics would differ by design.
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    if outputs == "mask":
        x = keras.layers.Conv2D(1, 1)(x)
    else:
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dense(CLASSES)(x)
    return keras.Model(inputs, x, name=name)


def build(term, reduction, fill_value):
    keras.utils.set_random_seed(0)
    model = kca.ComprehensiveAttributionModel(
        selector=conv_net("selector", "mask"),
        predictor=conv_net("predictor", "logits"),
        detector=conv_net("detector", "logits"),
        detector_term=term,
        hinge_reduction=reduction,
        margin=50.0,  # keeps the batch hinge active on every replica
        # The subject is the distributed step: random hardening masks
        # would differ between the runs compared.
        hardening=False,
        fill_value=fill_value,
    )
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    return model


def weights(model):
    return [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]


rng = np.random.default_rng(0)
images = rng.uniform(0, 1, (8, *SHAPE)).astype("float32")
labels = rng.integers(0, CLASSES, 8).astype("int32")
results = {}
for term, reduction, fill_value in (
    ("hinge", "batch", 0.5),
    ("hinge", "sample", 0.5),
    # No fill value: `fit` computes it from the data first (`adapt`).
    ("entropy", "batch", None),
):
    single = build(term, reduction, fill_value)
    single_logs = single.fit(
        images, labels, batch_size=8, epochs=1, verbose=0, shuffle=False
    ).history
    if backend == "tensorflow":
        strategy = tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"])
        with strategy.scope():
            multi = build(term, reduction, fill_value)
    else:
        distribution = keras.distribution.DataParallel(
            devices=keras.distribution.list_devices("cpu")
        )
        keras.distribution.set_distribution(distribution)
        multi = build(term, reduction, fill_value)
    multi_logs = multi.fit(
        images, labels, batch_size=8, epochs=1, verbose=0, shuffle=False
    ).history
    if backend == "jax":
        keras.distribution.set_distribution(None)
    results[f"{term}_{reduction}"] = {
        "weights": max(
            float(np.abs(a - b).max())
            for a, b in zip(weights(single), weights(multi))
        ),
        # Against the data's mean colour where `fit` computed it.
        "fill": float(
            np.abs(
                keras.ops.convert_to_numpy(multi.fill)
                - (
                    images.mean(axis=(0, 1, 2))
                    if fill_value is None
                    else fill_value
                )
            ).max()
        ),
        **{
            name: abs(single_logs[name][0] - multi_logs[name][0])
            for name in (
                "loss",
                "accuracy",
                "mask_area",
                "detector_loss",
                "masked_out_accuracy",
            )
        },
    }
print(json.dumps(results))
