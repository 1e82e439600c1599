"""Training worker for the fault test in `tests/test_resume.py`.

`python -m tests.resume_worker crash BACKUP_DIR OUT` trains with
`keras_compattr.callbacks.BackupAndRestore` and kills its own process with
SIGKILL in the middle of the second epoch. `... resume BACKUP_DIR OUT`
reruns the same training, which resumes from the backup, then runs the same
training uninterrupted from scratch, and writes both final states to OUT.
"""

import os
import signal
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_compattr as kca  # noqa: E402

SHAPE = (16, 16, 3)
NUM_CLASSES = 3
EPOCHS = 3
BATCH_SIZE = 4  # 6 batches per epoch.
SAVE_FREQ = 4
KILL_AT = (1, 4)  # (epoch, batch): after the backup at batch 3 of epoch 1.


def data():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (24, *SHAPE)).astype("float32")
    labels = np.arange(24) % NUM_CLASSES
    return images, labels


def network(kind, name):
    """A minimal network: conv, batch norm (non-trainable state), head."""
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    if kind == "selector":
        outputs = keras.layers.Conv2D(1, 1, name="logits")(x)
    else:
        x = keras.layers.GlobalAveragePooling2D()(x)
        outputs = keras.layers.Dense(NUM_CLASSES, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def build(seed, compile=True, **kwargs):
    """A small COMET model, the same for the same seed."""
    keras.utils.set_random_seed(seed)
    model = kca.ComprehensiveAttributionModel(
        selector=network("selector", "selector"),
        predictor=network("classifier", "predictor"),
        detector=network("classifier", "detector"),
        **kwargs,
    )
    if compile:
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def state(model):
    """Every model weight and optimizer variable, as NumPy arrays."""
    values = {f"weight_{i}": v for i, v in enumerate(model.weights)}
    values.update(
        {f"optimizer_{i}": v for i, v in enumerate(model.optimizer.variables)}
    )
    values["iterations"] = model.optimizer.iterations
    values["fill"] = model.fill
    return {
        k: np.array(keras.ops.convert_to_numpy(v)) for k, v in values.items()
    }


class InterruptAt(keras.callbacks.Callback):
    """Interrupts training after batch `batch` of epoch `epoch` (0-based):
    raises a `RuntimeError`, or with `kill=True` kills the process with
    SIGKILL (no `finally`, no saving on the way out)."""

    def __init__(self, epoch, batch, kill=False):
        super().__init__()
        self.at = (epoch, batch)
        self.kill = kill
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) != self.at:
            return
        if self.kill:
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError("Interrupted")


def train(model, callbacks):
    images, labels = data()
    model.fit(
        images,
        labels,
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        shuffle=False,
        callbacks=callbacks,
        verbose=0,
    )


def main(mode, backup_dir, out):
    backup = kca.callbacks.BackupAndRestore(
        backup_dir, save_freq=SAVE_FREQ, delete_checkpoint=False
    )
    if mode == "crash":
        train(build(seed=0), [backup, InterruptAt(*KILL_AT, kill=True)])
        raise SystemExit("The worker should have been killed.")
    # Another seed: the resumed run gets the seed-0 state only from the
    # backup.
    resumed = build(seed=1)
    train(resumed, [backup])
    reference = build(seed=0)
    detector = [np.array(w) for w in reference.detector.get_weights()]
    train(reference, [])
    arrays = {f"resumed/{k}": v for k, v in state(resumed).items()}
    arrays.update({f"reference/{k}": v for k, v in state(reference).items()})
    arrays.update({f"detector/{i}": w for i, w in enumerate(detector)})
    np.savez(out, **arrays)


if __name__ == "__main__":
    main(*sys.argv[1:])
