"""Callbacks for training `ComprehensiveAttributionModel` reliably.

- `BackupAndRestore`: resumes an interrupted run exactly where it stopped,
  even mid-epoch, with atomic backups.
- `TerminateOnNaN`: stops training at the first non-finite loss and names
  the term of the objective that went bad.
- `FirstStepNotice`: says that the training step is being built and
  compiled, so that the silent first step is not mistaken for a hang.

They work with any Keras model and on every backend; they only read the
logs and use `save_weights` / `load_weights`.
"""

import json
import os
import shutil
import tempfile
import time
import warnings

import keras
import numpy as np

from keras_compattr import distributed
from keras_compattr.api_export import keras_compattr_export

_METADATA = "training_metadata.json"


@keras_compattr_export("keras_compattr.callbacks.BackupAndRestore")
class BackupAndRestore(keras.callbacks.Callback):
    """Backs up the training state and resumes exactly where a run stopped.

    A drop-in for `keras.callbacks.BackupAndRestore` (same arguments and
    use: put it in the `callbacks` of `fit`, rerun the same `fit` after an
    interruption). The backup holds every weight of the model, so the
    selector, predictor and frozen detector, the fill value, batch-norm
    statistics and the optimizer state (its step counter included), plus
    the epoch and the number of batches done in that epoch.

    Two differences with the Keras callback:

    - Exact mid-epoch resume. With an integer `save_freq`, Keras restarts
      the interrupted epoch from its first batch with the weights of the
      last backup, so the batches before the backup are trained on twice.
      This callback instead replays those `k` batches (to move the data
      pipeline to the same place), then restores the backup, so training
      continues from batch `k + 1` with exactly the saved state: the run
      ends with the weights of an uninterrupted one. The replay costs the
      time of `k` steps; the epoch's logged means cover the batches after
      the resume only.
    - Atomic backups: the weights are written under a new name and the
      metadata, which names them, is replaced last, so a process killed
      while saving leaves the previous backup usable.

    In a multi-process run (`keras_compattr.distributed`), process 0
    alone writes (and deletes) the backup and every process resumes from
    it: put `backup_dir` on a file system all processes share. (Every
    process still runs Keras' saving, whose JAX collectives need them
    all; the others write to a temporary folder and drop the file.)

    A backup is also written at the end of every epoch. Once the logs hold
    a non-finite value (a NaN loss), no backup is written any more and the
    last good one is kept even with `delete_checkpoint=True`, so a
    diverged run can be resumed from before it diverged (e.g. with a lower
    learning rate).

    For the resumed run to match an uninterrupted one, the data must come
    in the same order in each epoch, whatever the process: arrays with
    `shuffle=False`, or a dataset whose order depends only on the epoch.
    (The shuffle of `fit(..., shuffle=True)` depends on how many epochs
    the process has run, so a resumed run sees other batch orders: it is
    still a correct continuation, only not the same numbers.)

    Args:
        backup_dir: str, folder for the backup; use one per run.
        save_freq: `"epoch"` or an int, back up every `save_freq` batches
            (and at the end of every epoch).
        delete_checkpoint: bool, delete the backup when `fit` ends.

    Example:

    ```python
    import keras_compattr as kca

    data = kca.datasets.synthetic(num_images=16, image_size=32, seed=0)
    shape = (32, 32, 3)
    model = kca.ComprehensiveAttributionModel(
        selector=kca.models.build_selector(shape, backbone="tiny", width=4),
        predictor=kca.models.build_classifier(shape, 4, widths=(4, 8)),
        # Train the detector on full images first (see the model's example).
        detector=kca.models.build_classifier(shape, 4, widths=(4, 8)),
    )
    model.compile()
    # Run the same lines again after a crash: training resumes from the
    # last backup (here: every 2 batches and every epoch).
    model.fit(
        data["images"],
        data["labels"],
        epochs=2,
        batch_size=4,
        shuffle=False,
        callbacks=[kca.callbacks.BackupAndRestore("backup", save_freq=2)],
        verbose=0,
    )
    ```
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("`backup_dir` must be a non-empty path.")
        if save_freq != "epoch" and (
            not isinstance(save_freq, int) or save_freq < 1
        ):
            raise ValueError(
                "`save_freq` must be 'epoch' or a positive int. "
                f"Received: save_freq={save_freq!r}"
            )
        self.backup_dir = str(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = delete_checkpoint
        self._metadata_path = os.path.join(self.backup_dir, _METADATA)
        self._epoch = 0
        self._steps_done = 0
        self._steps_since_save = 0
        self._replay_steps = 0
        self._restored_path = None
        self._set_initial_epoch = False
        self._went_bad = False

    # === Restore ===

    def _read_metadata(self):
        if not os.path.exists(self._metadata_path):
            return None
        with open(self._metadata_path) as f:
            return json.load(f)

    def on_train_begin(self, logs=None):
        self._replay_steps = 0
        self._went_bad = False
        metadata = self._read_metadata()
        if metadata is None:
            return
        path = os.path.join(self.backup_dir, metadata["weights"])
        model = self.model
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(path)
        model._initial_epoch = int(metadata["epoch"])
        self._set_initial_epoch = True
        self._restored_path = path
        self._replay_steps = int(metadata["steps_done"])

    def _finish_replay(self, epoch_ended=False):
        if epoch_ended or self._steps_done != self._replay_steps:
            warnings.warn(
                f"Resuming after {self._replay_steps} batches of epoch "
                f"{self._epoch}, but the data gave {self._steps_done} "
                "batches at this point (different data, or "
                "`steps_per_execution` not dividing the backup step). The "
                "backed-up state is restored; training goes on from there.",
                stacklevel=2,
            )
        model = self.model
        model.load_weights(self._restored_path)
        model.reset_metrics()
        self._replay_steps = 0

    # === Backup ===

    def _save(self, epoch, steps_done):
        self._steps_since_save = 0
        if not distributed.is_chief():
            # Multi-process runs (`keras_compattr.distributed`): process 0
            # writes the backup that every process resumes from. Saving
            # takes part in collectives on JAX, so the other processes
            # save too, to a throwaway folder of their own.
            with tempfile.TemporaryDirectory() as folder:
                self.model.save_weights(
                    os.path.join(folder, "discarded.weights.h5")
                )
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        previous = self._read_metadata()
        name = f"backup-{epoch}-{steps_done}.weights.h5"
        path = os.path.join(self.backup_dir, name)
        temporary = os.path.join(self.backup_dir, "writing.weights.h5")
        self.model.save_weights(temporary, overwrite=True)
        os.replace(temporary, path)
        metadata = {"epoch": epoch, "steps_done": steps_done, "weights": name}
        temporary = self._metadata_path + ".writing"
        with open(temporary, "w") as f:
            json.dump(metadata, f)
        os.replace(temporary, self._metadata_path)
        if previous is not None and previous["weights"] != name:
            stale = os.path.join(self.backup_dir, previous["weights"])
            if os.path.exists(stale):
                os.remove(stale)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._steps_done = 0

    def _healthy(self, logs):
        """False, once the logs held a non-finite value: never back it up."""
        if not self._went_bad and not all(
            _is_finite(value) for value in (logs or {}).values()
        ):
            self._went_bad = True
            warnings.warn(
                "Training produced non-finite values: no further backup is "
                f"written, and the last good one is kept in "
                f"{self.backup_dir!r}.",
                RuntimeWarning,
                stacklevel=3,
            )
        return not self._went_bad

    def on_train_batch_end(self, batch, logs=None):
        done = batch + 1
        self._steps_since_save += done - self._steps_done
        self._steps_done = done
        if self._replay_steps:
            if done >= self._replay_steps:
                self._finish_replay()
                self._steps_since_save = 0
            return
        if (
            self._healthy(logs)
            and self.save_freq != "epoch"
            and self._steps_since_save >= self.save_freq
        ):
            self._save(self._epoch, done)

    def on_epoch_end(self, epoch, logs=None):
        if self._replay_steps:
            self._finish_replay(epoch_ended=True)
        if self._healthy(logs):
            self._save(epoch + 1, 0)

    def on_train_end(self, logs=None):
        if self._set_initial_epoch:
            self.model._initial_epoch = None
            self._set_initial_epoch = False
        if (
            self.delete_checkpoint
            and not self._went_bad
            and distributed.is_chief()
            and os.path.exists(self.backup_dir)
        ):
            shutil.rmtree(self.backup_dir)


# Order in which a bad term is blamed: upstream first.
_DIAGNOSES = (
    (
        "mask_area",
        "the selector's masks are not finite (its weights or outputs went "
        "bad), so every term computed from them is too",
    ),
    (
        "predictor_loss",
        "the predictor's loss L_P on the masked-in images went bad "
        "(non-finite predictor outputs: diverging predictor weights)",
    ),
    (
        "detector_loss",
        "the frozen detector returns non-finite outputs on the masked-out "
        "images",
    ),
    (
        "area_penalty",
        "the area penalty on the masks went bad",
    ),
    (
        "loss",
        "the selector loss went bad while its logged terms are finite: "
        "look at the selector's regularisation losses, the smoothness "
        "term and very large term weights",
    ),
)


def _is_finite(value):
    try:
        return bool(np.all(np.isfinite(np.asarray(value, "float64"))))
    except (TypeError, ValueError):
        return True


@keras_compattr_export("keras_compattr.callbacks.TerminateOnNaN")
class TerminateOnNaN(keras.callbacks.TerminateOnNaN):
    """Stops training at a non-finite loss and names the term that went bad.

    A drop-in for `keras.callbacks.TerminateOnNaN`. It checks every entry
    of the batch logs, not only `loss`, and its message says which term
    of the COMET objective (`predictor_loss`, `detector_loss`,
    `area_penalty`, `mask_area`, or the total `loss`) is not finite and
    which network most likely caused it. The message is given as a
    `RuntimeWarning` (or raised as a `RuntimeError` with
    `raise_error=True`), and kept in `message`; the bad log names are in
    `bad_terms`.

    Args:
        raise_error: bool, raise a `RuntimeError` instead of stopping
            gracefully (`model.stop_training = True`).

    Example:

    ```python
    import keras_compattr as kca

    data = kca.datasets.synthetic(num_images=8, image_size=32, seed=0)
    # Train the detector on full images first (see the model's example).
    detector = kca.models.build_classifier((32, 32, 3), 4, widths=(4,))
    model = kca.training.small_comet((32, 32, 3), 4, detector)
    model.compile()
    stop = kca.callbacks.TerminateOnNaN()
    model.fit(data["images"], data["labels"], callbacks=[stop], verbose=0)
    stop.bad_terms  # None: every term stayed finite
    ```
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error
        self.bad_terms = None
        self.message = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        logs = logs or {}
        bad = [name for name, value in logs.items() if not _is_finite(value)]
        if not bad:
            return
        culprit = next(
            (diagnosis for name, diagnosis in _DIAGNOSES if name in bad),
            "a logged value went bad",
        )
        values = ", ".join(
            f"{name}={float(np.asarray(logs[name])):g}" for name in bad
        )
        self.bad_terms = bad
        self.message = (
            f"Non-finite values at batch {batch} of epoch {self._epoch}: "
            f"{values}. Most likely {culprit}. Training stopped. Try a "
            "lower learning rate, gradient clipping (`clipnorm=` on the "
            "optimizer) or check the data."
        )
        if self.raise_error:
            raise RuntimeError(self.message)
        warnings.warn(self.message, RuntimeWarning, stacklevel=2)
        self.model.stop_training = True


@keras_compattr_export("keras_compattr.callbacks.FirstStepNotice")
class FirstStepNotice(keras.callbacks.Callback):
    """Prints what happens before the first training step, and its duration.

    The first step of `fit` traces and compiles the training step. For
    COMET (selector, predictor and frozen detector in one step) that takes
    about a minute on a CPU, during which Keras prints nothing. This
    callback prints `message` when training begins, then one line with the
    time the first step took.

    Args:
        message: str, printed when `fit` begins.
        print_fn: callable taking a str; default: `print`, flushed.

    Example:

    ```python
    import keras
    import numpy as np

    import keras_compattr as kca

    # Works with any Keras model; `keras_compattr.training.train_comet`
    # passes one (`first_step_notices`) to COMET's `fit`.
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(loss="mse")
    notice = kca.callbacks.FirstStepNotice("Compiling the first step...")
    model.fit(np.ones((8, 4)), np.ones(8), callbacks=[notice], verbose=0)
    ```
    """

    def __init__(
        self,
        message="Building and compiling the training step (the first step "
        "takes longest) ...",
        print_fn=None,
    ):
        super().__init__()
        self.message = message
        self.print_fn = print_fn
        self._start = None

    def _say(self, text):
        if self.print_fn is not None:
            self.print_fn(text)
        else:
            print(text, flush=True)

    def on_train_begin(self, logs=None):
        self._start = time.monotonic()
        self._say(self.message)

    def on_train_batch_end(self, batch, logs=None):
        if self._start is not None:
            seconds = time.monotonic() - self._start
            self._start = None
            self._say(f"First step built, compiled and run in {seconds:.0f} s.")
