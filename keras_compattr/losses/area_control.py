"""Evidence-adaptive area control: the smallest mask that stays complete.

With a fixed budget `t`, the area term `b * mean_i max(area_i - t, 0)` is
free below `t`, so the mask grows to `t` on whatever is cheap to select
(distractors, clutter). `AreaMultiplier` replaces it by an area pressure
`lambda * mean(-log(1 - m))` with no free share (the gradient of
`-log(1 - m)` in a pixel's mask logit is `m`, so it keeps questioning
pixels the sigmoid has saturated, where the mean area's gradient
vanishes), and sets `lambda` by dual ascent on one constraint,
comprehensiveness:

    detector accuracy on the masked-out image <= chance + tolerance

where chance is the accuracy of a guess without evidence on this data:
the share of the most frequent class among the training labels seen so
far (`1/K` for balanced classes). A detector that sees nothing of the
object and falls back on the majority class reaches that share, so with
imbalanced classes a target of `1/K` could never be met.

While the constraint holds (the frozen detector is near chance on what was
left out), `lambda` grows and every mask shrinks; as soon as evidence leaks
into the masked-out image, the detector term pushes the leaking pixels back
into the mask and `lambda` falls. Each image's mask thus settles on its own
evidence, whatever its size. Sufficiency (the predictor stays accurate on
the masked-in image) is the `L_P` term of the selector loss, and with
`min_masked_in_accuracy` a second constraint of the dual ascent: `lambda`
then grows only while the predictor also keeps its class on the masked-in
images. A judge that partial evidence still fools (at chance while part of
the evidence is left out) otherwise lets `lambda` grow until the masks no
longer hold what the predictor needs.
"""

import math

import keras
from keras import ops

from keras_compattr.api_export import keras_compattr_export


@keras_compattr_export("keras_compattr.losses.AreaMultiplier")
class AreaMultiplier(keras.layers.Layer):
    """The dual variable of the area pressure, updated by dual ascent.

    The state lives in non-trainable weights, so it is saved with the model,
    restored exactly by `BackupAndRestore`, and threaded through the
    stateless JAX step like batch-norm statistics:

    - `log_multiplier`: `log(lambda)`;
    - `masked_out_accuracy`: an exponential moving average (EMA) of the
      detector's accuracy on the masked-out images of the training batches;
    - `class_counts`: how many training labels of each class were seen;
    - `masked_in_accuracy`: an EMA of the predictor's accuracy on the
      masked-in images (used with `min_masked_in_accuracy`).

    After each training step, `update` moves the EMA towards the batch's
    accuracy and then

        log(lambda) += rate * (chance + tolerance - EMA)

    where `chance` is the share of the most frequent class in
    `class_counts` (the accuracy of an evidence-free guess on this data),
    or `1 / K` before any label was seen. With `min_masked_in_accuracy`
    the step is the smaller slack of the two constraints,

        log(lambda) += rate * min(chance + tolerance - EMA,
                                  masked-in EMA - min_masked_in_accuracy)

    so the masks stop shrinking, and grow back, while the predictor loses
    its class on the masked-in images. `log(lambda)` is clipped to
    `[log(min_multiplier), log(max_multiplier)]`. Under
    `tf.distribute` the replicas' updates are averaged (the update is linear
    in the accuracy, so this equals the update of the global batch).

    Args:
        num_classes: int, `K`; chance accuracy is `1 / K` for balanced
            classes, the majority class's share otherwise.
        tolerance: float, accuracy above chance that the detector may keep
            on the masked-out image.
        rate: float, step of `log(lambda)` per unit of constraint slack.
        momentum: float in `[0, 1)`, EMA momentum of the accuracy.
        initial_multiplier: float, `lambda` before training.
        min_multiplier: float, lower bound of `lambda`.
        max_multiplier: float, upper bound of `lambda`.
        min_masked_in_accuracy: `None` (the default: completeness alone
            moves `lambda`) or a float in `(0, 1)`, the predictor's
            accuracy on the masked-in images below which `lambda` stops
            growing and falls.
        **kwargs: base layer keyword arguments such as `name`.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.losses import AreaMultiplier
    >>> control = AreaMultiplier(num_classes=4, momentum=0.0)
    >>> before = float(control.multiplier)
    >>> _ = control.update(np.float32(0.25))  # detector at chance: shrink
    >>> float(control.multiplier) > before
    True
    >>> # With 70% of the labels in class 0, chance is 0.7, not 1/4.
    >>> labels = np.array([0] * 7 + [1, 2, 3])
    >>> _ = control.update(np.float32(0.7), labels=labels)
    >>> round(float(control.target), 3)
    0.725
    """

    def __init__(
        self,
        num_classes,
        tolerance=0.025,
        rate=0.1,
        momentum=0.9,
        initial_multiplier=1.0,
        min_multiplier=1e-2,
        max_multiplier=1e3,
        min_masked_in_accuracy=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(num_classes) < 2:
            raise ValueError(
                f"`num_classes` must be at least 2. Received: {num_classes}"
            )
        if not 0.0 <= float(tolerance) < 1.0 - 1.0 / int(num_classes):
            raise ValueError(
                "`tolerance` is an accuracy above chance and must be in "
                f"[0, 1 - 1/K). Received: tolerance={tolerance}"
            )
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(
                f"`momentum` must be in [0, 1). Received: {momentum}"
            )
        if not 0.0 < min_multiplier <= initial_multiplier <= max_multiplier:
            raise ValueError(
                "Expected 0 < min_multiplier <= initial_multiplier <= "
                f"max_multiplier. Received: {min_multiplier}, "
                f"{initial_multiplier}, {max_multiplier}"
            )
        if float(rate) <= 0.0:
            raise ValueError(f"`rate` must be positive. Received: {rate}")
        if min_masked_in_accuracy is not None and not (
            0.0 < float(min_masked_in_accuracy) < 1.0
        ):
            raise ValueError(
                "`min_masked_in_accuracy` must be None or in (0, 1). "
                f"Received: min_masked_in_accuracy={min_masked_in_accuracy}"
            )
        self.num_classes = int(num_classes)
        self.tolerance = float(tolerance)
        self.rate = float(rate)
        self.momentum = float(momentum)
        self.initial_multiplier = float(initial_multiplier)
        self.min_multiplier = float(min_multiplier)
        self.max_multiplier = float(max_multiplier)
        self.min_masked_in_accuracy = (
            None
            if min_masked_in_accuracy is None
            else float(min_masked_in_accuracy)
        )
        self.log_multiplier = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(
                math.log(self.initial_multiplier)
            ),
            trainable=False,
            aggregation="mean",
            name="log_multiplier",
        )
        # Pessimistic start: the detector is assumed to see everything, so
        # the masks first grow to cover the evidence, then shrink.
        self.masked_out_accuracy = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(1.0),
            trainable=False,
            aggregation="mean",
            name="masked_out_accuracy",
        )
        self.class_counts = self.add_weight(
            shape=(self.num_classes,),
            initializer="zeros",
            trainable=False,
            aggregation="mean",
            name="class_counts",
        )
        # Optimistic: the masks start whole, where the predictor is right.
        self.masked_in_accuracy = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(1.0),
            trainable=False,
            aggregation="mean",
            name="masked_in_accuracy",
        )
        self.built = True

    @property
    def chance(self):
        """Accuracy without evidence: the majority class's share seen."""
        counts = ops.convert_to_tensor(self.class_counts)
        total = ops.sum(counts)
        return ops.where(
            total > 0.0,
            ops.divide_no_nan(ops.max(counts), total),
            1.0 / self.num_classes,
        )

    @property
    def target(self):
        """The accuracy the detector may keep on masked-out images."""
        return self.chance + self.tolerance

    @property
    def multiplier(self):
        """`lambda`, the current weight of the area pressure."""
        return ops.exp(ops.convert_to_tensor(self.log_multiplier))

    def update(self, batch_accuracy, labels=None, masked_in_accuracy=None):
        """One dual-ascent step from a batch's masked-out accuracy.

        Args:
            batch_accuracy: scalar, the detector's accuracy on the batch's
                masked-out images.
            labels: optional `(N,)` integer labels of the batch, counted
                into `class_counts` first.
            masked_in_accuracy: optional scalar, the predictor's accuracy
                on the batch's masked-in images; moves `lambda` only with
                `min_masked_in_accuracy`.

        Returns:
            The new `lambda`.
        """
        if labels is not None:
            labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
            self.class_counts.assign(
                ops.convert_to_tensor(self.class_counts)
                + ops.sum(ops.one_hot(labels, self.num_classes), axis=0)
            )
        batch_accuracy = ops.cast(batch_accuracy, "float32")
        average = ops.convert_to_tensor(self.masked_out_accuracy)
        average = self.momentum * average + (1.0 - self.momentum) * (
            batch_accuracy
        )
        self.masked_out_accuracy.assign(average)
        slack = self.target - average
        if (
            self.min_masked_in_accuracy is not None
            and masked_in_accuracy is not None
        ):
            kept = self.momentum * ops.convert_to_tensor(
                self.masked_in_accuracy
            ) + (1.0 - self.momentum) * ops.cast(masked_in_accuracy, "float32")
            self.masked_in_accuracy.assign(kept)
            slack = ops.minimum(slack, kept - self.min_masked_in_accuracy)
        log_multiplier = ops.convert_to_tensor(self.log_multiplier)
        log_multiplier = ops.clip(
            log_multiplier + self.rate * slack,
            math.log(self.min_multiplier),
            math.log(self.max_multiplier),
        )
        self.log_multiplier.assign(log_multiplier)
        return ops.exp(log_multiplier)

    def call(self, inputs=None):
        return self.multiplier

    def load_own_variables(self, store):
        # Files saved before `class_counts` existed hold two variables:
        # the counts then start from zero (chance 1/K until labels come);
        # before `masked_in_accuracy`, three (it starts at 1).
        if len(store.keys()) < 4:
            old = (
                self.log_multiplier,
                self.masked_out_accuracy,
                self.class_counts,
            )
            for index, variable in enumerate(old[: len(store.keys())]):
                variable.assign(store[str(index)])
            return
        super().load_own_variables(store)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "tolerance": self.tolerance,
                "rate": self.rate,
                "momentum": self.momentum,
                "initial_multiplier": self.initial_multiplier,
                "min_multiplier": self.min_multiplier,
                "max_multiplier": self.max_multiplier,
                "min_masked_in_accuracy": self.min_masked_in_accuracy,
            }
        )
        return config
