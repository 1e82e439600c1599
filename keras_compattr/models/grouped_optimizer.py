"""An optimizer that updates the selector and the predictor separately."""

import keras

from keras_compattr.api_export import keras_compattr_export


@keras_compattr_export("keras_compattr.models.GroupedOptimizer")
class GroupedOptimizer(keras.optimizers.Optimizer):
    """Applies one optimizer to the selector and another to the predictor.

    `ComprehensiveAttributionModel.compile(optimizer=..., predictor_optimizer=
    ...)` builds it; you rarely create one yourself. It holds both inner
    optimizers' state, so Keras' training loops, checkpoints and the JAX
    trainer treat it as one optimizer. Its own `learning_rate` is unused:
    set learning rates (or schedules) on the inner optimizers.

    What `keras.optimizers.Optimizer` offers works on the whole as on any
    Keras optimizer, through Keras' own `apply`: `loss_scale_factor`,
    `gradient_accumulation_steps`, `clipnorm`, `clipvalue`,
    `global_clipnorm` and `use_ema` given here apply to both groups'
    gradients (and variables) before the inner optimizers update them;
    each inner optimizer keeps its own settings (weight decay, clipping)
    for its group too.

    Args:
        selector_optimizer: optimizer (or identifier) for the selector.
        predictor_optimizer: optimizer (or identifier) for the predictor.
        name: str.
        **kwargs: base optimizer arguments (`clipnorm`, `use_ema`, ...).

    Example:

    >>> import keras
    >>> from keras_compattr.models import GroupedOptimizer
    >>> optimizer = GroupedOptimizer(
    ...     keras.optimizers.AdamW(5e-4), keras.optimizers.SGD(0.05)
    ... )
    >>> type(optimizer.predictor_optimizer).__name__
    'SGD'
    """

    def __init__(
        self,
        selector_optimizer,
        predictor_optimizer,
        name="grouped_optimizer",
        **kwargs,
    ):
        kwargs.pop("learning_rate", None)
        super().__init__(learning_rate=0.0, name=name, **kwargs)
        self.selector_optimizer = keras.optimizers.get(selector_optimizer)
        self.predictor_optimizer = keras.optimizers.get(predictor_optimizer)
        self._predictor_keys = frozenset()

    def set_predictor_variables(self, variables):
        """Declares which variables belong to the predictor (before build)."""
        self._predictor_keys = frozenset(id(v) for v in variables)

    def _split(self, values, variables):
        selector, predictor = ([], []), ([], [])
        for value, variable in zip(values, variables):
            group = (
                predictor
                if id(variable) in self._predictor_keys
                else (selector)
            )
            group[0].append(value)
            group[1].append(variable)
        return selector, predictor

    def build(self, variables):
        if not self._predictor_keys:
            raise ValueError(
                "GroupedOptimizer needs `set_predictor_variables` before it "
                "is built."
            )
        super().build(variables)
        (_, selector), (_, predictor) = self._split(variables, variables)
        self.selector_optimizer.build(selector)
        self.predictor_optimizer.build(predictor)

    @property
    def variables(self):
        return (
            self._variables[:]
            + self.selector_optimizer.variables
            + self.predictor_optimizer.variables
        )

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        # Keras' `apply` has unscaled (`loss_scale_factor`), accumulated
        # (`gradient_accumulation_steps`) and clipped (`clipnorm`,
        # `clipvalue`, `global_clipnorm`) the gradients by now, and updates
        # the moving averages (`use_ema`) and the iteration counter after
        # this step: only the update itself goes to the inner optimizers,
        # each with its own learning rate, weight decay and clipping.
        del learning_rate
        selector, predictor = self._split(grads, trainable_variables)
        if selector[0]:
            self.selector_optimizer.apply(*selector)
        if predictor[0]:
            self.predictor_optimizer.apply(*predictor)

    def get_config(self):
        config = super().get_config()
        config.pop("learning_rate", None)  # unused: the inner ones count
        config.update(
            {
                "selector_optimizer": keras.saving.serialize_keras_object(
                    self.selector_optimizer
                ),
                "predictor_optimizer": keras.saving.serialize_keras_object(
                    self.predictor_optimizer
                ),
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("selector_optimizer", "predictor_optimizer"):
            config[key] = keras.saving.deserialize_keras_object(
                config[key], custom_objects=custom_objects
            )
        return cls(**config)
