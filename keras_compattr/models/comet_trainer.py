"""`CometTrainer`: the training entry points of the COMET model.

As `keras.Model` inherits `fit`, `evaluate` and `predict` from Keras'
`Trainer`, `keras_compattr.models.ComprehensiveAttributionModel` inherits
them from this mixin, which overrides Keras' own and reaches them with
`super()`: `class ComprehensiveAttributionModel(CometTrainer, keras.Model)`.
"""

import contextlib
import warnings

import keras
from keras import ops

from keras_compattr import backend as backend_steps
from keras_compattr.losses.comet import class_indices
from keras_compattr.models import checks
from keras_compattr.models import data_statistics
from keras_compattr.models.data_statistics import can_read_again
from keras_compattr.models.grouped_optimizer import GroupedOptimizer
from keras_compattr.utils import data_checks


class CometTrainer:
    """Training, evaluation and prediction of a COMET model.

    A mixin for `keras_compattr.models.ComprehensiveAttributionModel`,
    listed before `keras.Model` among its bases. It uses the model's
    networks (`selector`, `mask_head`, `predictor`, `detector`), its
    trackers, fill value, `image_shape` and `num_classes`, all set by the
    model's constructor.
    """

    # === Training ===

    @property
    def selector_variables(self):
        """Trainable variables updated by the selector loss."""
        return (
            self.selector.trainable_variables
            + self.mask_head.trainable_variables
        )

    @property
    def predictor_variables(self):
        """Trainable variables updated by the predictor loss."""
        return self.predictor.trainable_variables

    def compile(
        self,
        optimizer=None,
        predictor_optimizer=None,
        jit_compile="auto",
        **kwargs,
    ):
        """Configures training.

        Args:
            optimizer: the optimizer of the selector, and of the predictor
                too when `predictor_optimizer` is `None`. Defaults to
                `keras.optimizers.AdamW(5e-4, weight_decay=0.03)`, the
                reference setting; one AdamW over both networks equals the
                reference's two AdamW with the same settings, since Adam
                keeps per-parameter state.
            predictor_optimizer: optional separate optimizer for the
                predictor. Both are then wrapped in a
                `keras_compattr.models.GroupedOptimizer`.
            jit_compile: `"auto"`, `True` or `False`, as in
                `keras.Model.compile`. `"auto"` uses XLA on accelerators and
                JAX, and not for TensorFlow on a CPU, where XLA makes small
                conv nets slower.
            **kwargs: other `keras.Model.compile` arguments, such as
                `steps_per_execution`. `loss` and `metrics` are not taken:
                the objective and its logs are fixed by the method.

        Example:

        ```python
        import keras

        import keras_compattr as kca

        shape = (32, 32, 3)
        model = kca.ComprehensiveAttributionModel(
            selector=kca.models.build_selector(
                shape, backbone="tiny", width=4
            ),
            predictor=kca.models.build_classifier(shape, 4, widths=(4, 8)),
            detector=kca.models.build_classifier(shape, 4, widths=(4, 8)),
        )
        model.compile(
            optimizer=keras.optimizers.AdamW(5e-4, weight_decay=0.03),
            predictor_optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
            jit_compile=True,
        )
        ```
        """
        for name in ("loss", "metrics", "weighted_metrics", "loss_weights"):
            if kwargs.get(name) is not None:
                raise ValueError(
                    f"`{name}` cannot be set: ComprehensiveAttributionModel "
                    "trains with the COMET objective and logs its terms. "
                    "Tune it with the constructor arguments instead."
                )
        if optimizer is None:
            optimizer = keras.optimizers.AdamW(
                learning_rate=5e-4, weight_decay=0.03
            )
        if predictor_optimizer is not None:
            optimizer = GroupedOptimizer(optimizer, predictor_optimizer)
        if isinstance(optimizer, GroupedOptimizer):
            optimizer.set_predictor_variables(self.predictor_variables)
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
        self._compile_arguments = {
            "optimizer": self.optimizer,
            "jit_compile": jit_compile,
            **kwargs,
        }

    def get_compile_config(self):
        if not self.compiled:
            return None
        config = dict(self._compile_arguments)
        config["optimizer"] = keras.saving.serialize_keras_object(
            config["optimizer"]
        )
        return config

    def compile_from_config(self, config):
        config = dict(config)
        config["optimizer"] = keras.saving.deserialize_keras_object(
            config["optimizer"]
        )
        self.compile(**config)
        if self.built:
            # Create the optimizer's variables so saved values can load.
            self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self):
        return [
            self.loss_tracker,
            *self.term_trackers.values(),
            self.accuracy_tracker,
            self.masked_out_accuracy_tracker,
        ]

    def tracker_updates(self, terms, labels):
        """What each tracker is updated with after a step.

        The batch means are weighted by the batch size, as Keras weighs its
        own loss tracker, so that a short last batch counts for its images.

        Returns:
            A list of `(tracker, args, kwargs)`, one per tracker in the
            order of `metrics`, for `tracker.update_state(*args, **kwargs)`
            (or `stateless_update_state` on JAX).
        """
        batch_size = ops.cast(
            ops.shape(terms["predictor_log_probs"])[0], "float32"
        )
        weighted = {"sample_weight": batch_size}
        labels = class_indices(labels, self.num_classes)
        return [
            (self.loss_tracker, (terms["selector_loss"],), weighted),
            *(
                (tracker, (terms[name],), weighted)
                for name, tracker in self.term_trackers.items()
            ),
            (self.accuracy_tracker, (labels, terms["predictor_log_probs"]), {}),
            (
                self.masked_out_accuracy_tracker,
                (labels, terms["detector_log_probs"]),
                {},
            ),
        ]

    def step_logs(self, results, terms):
        """The step's logs: the trackers' `results` and the multiplier."""
        logs = dict(results)
        if "area_multiplier" in terms:
            logs["area_multiplier"] = terms["area_multiplier"]
        return logs

    def update_trackers(self, terms, labels):
        """Updates the loss and accuracy trackers; returns the logs."""
        for tracker, args, kwargs in self.tracker_updates(terms, labels):
            tracker.update_state(*args, **kwargs)
        return self.step_logs(
            {metric.name: metric.result() for metric in self.metrics}, terms
        )

    def step_area_control(self, terms, labels):
        """The adaptive area control's step after a training batch.

        Called by the training step of each backend once the batch's terms
        are computed (the objective itself is stateless). Adds the new
        multiplier to `terms` as `"area_multiplier"`; does nothing with a
        fixed budget.

        Returns:
            `terms`.
        """
        multiplier = self.objective.update_area_control(
            labels,
            ops.stop_gradient(terms["detector_log_probs"]),
            ops.stop_gradient(terms["predictor_log_probs"]),
        )
        if multiplier is not None:
            terms["area_multiplier"] = multiplier
        return terms

    def train_step(self, *args):
        return backend_steps.train_step(self, *args)

    def test_step(self, *args):
        return backend_steps.test_step(self, *args)

    def fit(self, x=None, y=None, *args, refresh_batch_norm=True, **kwargs):
        """Trains the selector and predictor; see `keras.Model.fit`.

        Takes Keras' arguments, by position too (`model.fit(x, y, 64, 3)`
        is batch size 64 and 3 epochs); `refresh_batch_norm` is this
        model's own and keyword-only.

        `class_weight` and `sample_weight` (or a third `(N,)` element
        yielded by a dataset) weight each image in every batch mean of the
        objective: the predictor's and the detector's cross-entropies, the
        detector term and the area and smoothness penalties each become
        `sum_i w_i v_i / sum_i w_i` (see
        `keras_compattr.losses.comet_objective`). The logged accuracies
        and the area control's masked-out accuracy are not weighted.

        Before training, in this order:

        1. `x`, `y` and `validation_data` are checked (see the class
           docstring).
        2. When `fill_value=None` and no fill value was computed yet, the
           per-channel mean of `x` is computed (see `adapt`).
        3. The detector is run on up to 256 training images (the first
           batches); if its accuracy is at most 1.5 times chance, or its
           outputs are not finite, a warning says that the detector penalty
           is meaningless with an untrained detector. Skipped when
           `detector_weight == 0`.
        4. With `hardening` (the default), the judge of the masked-out
           image is hardened once (`harden_detector`): a copy of the
           detector is fine-tuned on the training images with random parts
           removed. Later calls of `fit` keep it. A generator cannot be
           read twice: `fit` then warns and judges with the detector as
           it is, unless `harden_detector` ran before.

        After training, when `refresh_batch_norm=True` (the default) and
        `x` can be read again (arrays, `tf.data` datasets, `PyDataset`s),
        the batch-norm statistics of the selector and predictor are
        re-estimated on up to 2048 training images (`refresh_batch_norm`),
        so that `evaluate`, `predict` and `explain` (inference mode) score
        what training reached. Validation during `fit` runs in inference
        mode with the moving statistics of that moment, which lag behind
        the weights while the masks change: the logs of
        `model.evaluate(...)` after `fit` are the ones a user gets.

        Training runs are reproducible under `keras.utils.set_random_seed`
        on a CPU. To resume interrupted runs exactly, even mid-epoch, use
        `keras_compattr.callbacks.BackupAndRestore` (Keras'
        `BackupAndRestore` and `ModelCheckpoint` work too); to stop at a
        NaN loss with a message naming the bad term, use
        `keras_compattr.callbacks.TerminateOnNaN`.
        """
        kwargs = checks.keras_arguments(keras.Model.fit, x, y, args, kwargs)
        x, _ = self._validate_inputs(x, y, with_labels=True)
        if kwargs.get("validation_data") is not None:
            kwargs["validation_data"] = checks.validate_validation_data(
                kwargs["validation_data"], self.image_shape, self.num_classes
            )
        if not self.fill_is_set:
            self.adapt(x, batch_size=kwargs.get("batch_size"))
        if self.detector_weight != 0.0:
            x = checks.warn_if_untrained(
                self.detector, self.num_classes, x, y, kwargs.get("batch_size")
            )
            if self.hardening is not None and not self.judge_is_hardened:
                self._harden_before_fit(x, y, kwargs)
        history = super().fit(x, y, **kwargs)
        if refresh_batch_norm:
            self.refresh_batch_norm(
                x, batch_size=kwargs.get("batch_size") or 32, warn=True
            )
        return history

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """Evaluates the objective's terms and accuracies on labelled data.

        Takes Keras' arguments, by position too; `sample_weight` weights
        the objective's batch means as in `fit`. Inputs are checked as in
        `fit`. See `keras.Model.evaluate`.
        """
        kwargs = checks.keras_arguments(
            keras.Model.evaluate, x, y, args, kwargs
        )
        if not kwargs.get("_use_cached_eval_dataset"):
            # (Validation inside `fit` was checked once, by `fit`.)
            x, _ = self._validate_inputs(x, y, with_labels=True)
        return super().evaluate(x, y, **kwargs)

    def train_on_batch(
        self,
        x,
        y=None,
        sample_weight=None,
        class_weight=None,
        return_dict=False,
    ):
        """One training step on one batch; see `keras.Model.train_on_batch`.

        `x` and `y` are checked as in `fit`; the weights act as in `fit`.
        """
        x, _ = self._validate_inputs(x, y, with_labels=True)
        return super().train_on_batch(
            x,
            y,
            sample_weight=sample_weight,
            class_weight=class_weight,
            return_dict=return_dict,
        )

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The objective's terms on one batch; see `keras.Model.test_on_batch`.

        Checked as `train_on_batch`.
        """
        x, _ = self._validate_inputs(x, y, with_labels=True)
        return super().test_on_batch(
            x, y, sample_weight=sample_weight, return_dict=return_dict
        )

    def predict(
        self, x, batch_size=None, verbose="auto", steps=None, callbacks=None
    ):
        """Class probabilities `(N, K)` of `P(x_s)`; see `keras.Model.predict`.

        `x` is checked as in `fit` (labels, if a dataset yields them, are
        ignored). One image of shape `(H, W, C)` is taken as a batch of
        one, so the result has shape `(1, K)`. The result holds exactly one
        row per image, in input order, whatever the batch size.
        """
        x, _ = self._validate_inputs(x, None, with_labels=False, single=True)
        return super().predict(
            x,
            batch_size=batch_size,
            verbose=verbose,
            steps=steps,
            callbacks=callbacks,
        )

    def _validate_inputs(self, x, y, with_labels, single=False, name="x"):
        return data_checks.validate_inputs(
            x,
            y,
            self.image_shape,
            self.num_classes,
            with_labels=with_labels,
            allow_single_image=single,
            name=name,
        )

    def refresh_batch_norm(
        self, images, batch_size=32, max_images=2048, warn=False
    ):
        """Re-estimates the batch-norm statistics of selector and predictor.

        Forward passes in training mode with the current weights (no weight
        update) replace the moving mean and variance of every trainable
        `BatchNormalization` layer by the exact average of its batch
        statistics: first the selector's, on the images; then the
        predictor's, on the masked-in images that the selector now draws in
        inference mode, which is what the predictor sees at test time.
        `fit` calls this at its end.

        Args:
            images: images or `(images, labels)` as arrays, a `tf.data`
                dataset or a `keras.utils.PyDataset`.
            batch_size: int, batch size for arrays.
            max_images: int, images to read at most.
            warn: bool, warn instead of returning quietly when the data
                cannot be read again (a generator).

        Returns:
            The number of images used (0 when there was nothing to do).
        """
        return data_statistics.refresh(
            self, images, batch_size, max_images, warn
        )

    # === The judge ===

    @property
    def judge_is_hardened(self):
        """Whether `harden_detector` has run (saved with the model)."""
        if self.hardening is None:
            return False
        return bool(ops.convert_to_numpy(self.detector_hardened) > 0.5)

    def harden_detector(
        self, x, y=None, batch_size=None, verbose="auto", steps_per_epoch=None
    ):
        """Fine-tunes the judge on training images with parts removed.

        `fit` calls this once, before training, when the model has a
        `hardening` (the default). Call it yourself to harden on other
        data, or on a generator's images gathered in an array. The
        detector itself is never changed; the judge (its copy) is, and
        stays frozen during COMET's training.

        Args:
            x: images (with labels `y`), or a `tf.data` dataset or
                `keras.utils.PyDataset` of `(images, labels)`.
            y: labels for array `x`.
            batch_size: int, for arrays (default: the hardening's).
            verbose: Keras verbosity of the fine-tuning.
            steps_per_epoch: int, batches per epoch of a dataset that
                repeats; `None` reads it to its end.

        Returns:
            The Keras `History` of the fine-tuning.
        """
        if self.hardening is None:
            raise ValueError(
                "This model judges with the detector as it is "
                "(`hardening=False`): there is nothing to harden."
            )
        if not self.fill_is_set:
            self.adapt(x)
        if verbose != 0:
            print(
                "Hardening the judge (a copy of the detector) on images with "
                f"random parts removed: {self.hardening.epochs} epochs.",
                flush=True,
            )
        # Under `tf.distribute`, the fine-tuning's optimizer must be made
        # in the strategy the judge's variables belong to.
        strategy = getattr(self, "distribute_strategy", None)
        scope = strategy.scope() if strategy else contextlib.nullcontext()
        with scope:
            history = self._harden(x, y, batch_size, verbose, steps_per_epoch)
        self.detector_hardened.assign(1.0)
        return history

    def _harden_before_fit(self, x, y, kwargs):
        """`fit`'s hardening, with `fit`'s arguments `kwargs`."""
        if not can_read_again(x):
            warnings.warn(
                "The judge was not hardened: `fit` got a generator, which "
                "cannot be read twice, so the masked-out images are judged "
                "by the detector as it is (the paper's recipe). Call "
                "`model.harden_detector(images, labels)` on training images "
                "before `fit`, or pass a `tf.data` dataset or a "
                "`keras.utils.PyDataset`; `hardening=False` silences this "
                "warning.",
                stacklevel=3,
            )
            return
        self.harden_detector(
            *_training_part(x, y, kwargs.get("validation_split")),
            batch_size=kwargs.get("batch_size"),
            verbose=kwargs.get("verbose", "auto"),
            steps_per_epoch=kwargs.get("steps_per_epoch"),
        )

    def _harden(self, x, y, batch_size, verbose, steps_per_epoch):
        return self.hardening.harden(
            self.hardened_detector,
            x,
            y,
            fill_value=ops.convert_to_numpy(self.fill),
            fill_noise=self.fill_noise_values(),
            output_kind=self._detector_output_kind,
            batch_size=batch_size,
            verbose=verbose,
            jit_compile=self.jit_compile if self.compiled else "auto",
            steps_per_epoch=steps_per_epoch,
        )

    # === Detector check ===

    def detector_accuracy(self, images, labels, batch_size=32):
        """Accuracy of the detector on full images, a sanity check.

        The detector must already classify full images well (stage 1 of
        the method): with an untrained detector the penalty on the
        masked-out image is meaningless, and `fit` warns about it.

        Args:
            images: `(N, H, W, C)` images, float in `[0, 1]` or integer in
                `0..255`.
            labels: `(N,)` integer or `(N, K)` one-hot labels.
            batch_size: int, images per forward pass.

        Returns:
            A Python float in `[0, 1]`, or NaN when the detector returns
            non-finite outputs.
        """
        return checks.detector_accuracy(
            self.detector, images, labels, batch_size
        )


def _training_part(x, y, validation_split):
    """`(x, y)` without the share `fit` holds out for validation."""
    if not validation_split or y is None or not hasattr(x, "shape"):
        return x, y
    kept = int(len(x) * (1.0 - float(validation_split)))
    return x[:kept], y[:kept]
