"""COMET trained by N JAX processes, or by one on the same global batches.

Run as a script, one per process (the backend and the run must be set up
before Keras starts):

    python multi_host.py PROCESS_ID NUM_PROCESSES PORT OUT_DIR

With NUM_PROCESSES == 1 the script trains alone on whole global batches;
otherwise it joins the run through `keras_compattr.distributed.initialize`
(localhost, gloo CPU collectives) and feeds its share of every global
batch. It writes `OUT_DIR/process-<id>.npz`: the weights, the fill value
computed by `fit`'s `adapt`, the logs of `fit`, the weights and logs of
the same run on a `tf.data` dataset of global batches that Keras shards
between the processes, and the weights after a run
interrupted after its first epoch and resumed by
`keras_compattr.callbacks.BackupAndRestore`, and how many times this
process wrote a backup (process 0 alone should).
"""

import json
import os
import sys

process, processes, port, out_dir = sys.argv[1:5]
process, processes = int(process), int(processes)
os.environ["KERAS_BACKEND"] = "jax"
os.environ["JAX_PLATFORMS"] = "cpu"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_compattr as kca  # noqa: E402
from keras_compattr import distributed  # noqa: E402

if processes > 1:
    distributed.initialize(
        coordinator_address=f"localhost:{port}",
        num_processes=processes,
        process_id=process,
        # Each process passes its own half of every global batch (arrays).
        auto_shard_dataset=False,
    )
    assert distributed.process_id() == process
    assert distributed.num_processes() == processes

SHAPE, CLASSES = (16, 16, 3), 3
GLOBAL_BATCH, STEPS = 8, 2


def conv_net(name, outputs):
    # No batch norm: per-process batch statistics would differ by design.
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    if outputs == "mask":
        x = keras.layers.Conv2D(1, 1)(x)
    else:
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dense(CLASSES)(x)
    return keras.Model(inputs, x, name=name)


def build():
    keras.utils.set_random_seed(0)
    model = kca.ComprehensiveAttributionModel(
        selector=conv_net("selector", "mask"),
        predictor=conv_net("predictor", "logits"),
        detector=conv_net("detector", "logits"),
        hinge_reduction="sample",  # the two-pass routing
        margin=50.0,
        fill_value=None,  # `fit` computes it from the data (`adapt`)
    )
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    return model


rng = np.random.default_rng(0)
images = rng.uniform(0, 1, (GLOBAL_BATCH * STEPS, *SHAPE)).astype("float32")
labels = rng.integers(0, CLASSES, GLOBAL_BATCH * STEPS).astype("int32")
# This process's share of every global batch, in process order.
local = GLOBAL_BATCH // processes
rows = np.concatenate(
    [
        np.arange(step * GLOBAL_BATCH, (step + 1) * GLOBAL_BATCH)[
            process * local : (process + 1) * local
        ]
        for step in range(STEPS)
    ]
)
x, y = images[rows], labels[rows]


def weights(model):
    return np.concatenate(
        [keras.ops.convert_to_numpy(v).ravel() for v in model.weights]
    )


# One uninterrupted run of two epochs.
model = build()
history = model.fit(
    x, y, batch_size=local, epochs=2, shuffle=False, verbose=0
).history
fill = keras.ops.convert_to_numpy(model.fill)
final = weights(model)

# The same run on a `tf.data` dataset of global batches, which every
# process passes whole and Keras shards.
if processes > 1:
    keras.distribution.distribution().auto_shard_dataset = True
dataset = tf.data.Dataset.from_tensor_slices((images, labels))
model = build()
dataset_history = model.fit(
    dataset.batch(GLOBAL_BATCH), epochs=2, shuffle=False, verbose=0
).history
dataset_weights = weights(model)
if processes > 1:
    keras.distribution.distribution().auto_shard_dataset = False


class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt


# The same run, interrupted after its first epoch, then resumed.
backup_dir = os.path.join(out_dir, "backup")


def backup():
    return kca.callbacks.BackupAndRestore(backup_dir, save_freq=1)


saves = []


def count_saves(model):
    """Records this process's writes of weights into the backup folder."""
    save_weights = model.save_weights

    def recording(*args, **kwargs):
        path = str(args[0] if args else kwargs.get("filepath"))
        if os.path.abspath(path).startswith(os.path.abspath(backup_dir)):
            saves.append(path)
        return save_weights(*args, **kwargs)

    object.__setattr__(model, "save_weights", recording)


interrupted = build()
count_saves(interrupted)
try:
    interrupted.fit(
        x,
        y,
        batch_size=local,
        epochs=2,
        shuffle=False,
        verbose=0,
        callbacks=[backup(), Interrupt()],
    )
except KeyboardInterrupt:
    pass
if processes > 1:
    from jax.experimental import multihost_utils

    # Every process has reached the interruption (process 0 has written
    # its backup) before any reads it.
    multihost_utils.sync_global_devices("interrupted")
backed_up = os.path.exists(os.path.join(backup_dir, "training_metadata.json"))
resumed = build()
count_saves(resumed)
resumed.fit(
    x,
    y,
    batch_size=local,
    epochs=2,
    shuffle=False,
    verbose=0,
    callbacks=[backup()],
)
np.savez(
    os.path.join(out_dir, f"process-{process}.npz"),
    weights=final,
    fill=fill,
    resumed=weights(resumed),
    history=json.dumps(history),
    dataset_weights=dataset_weights,
    dataset_history=json.dumps(dataset_history),
    backed_up=backed_up,
    saves=len(saves),
)
