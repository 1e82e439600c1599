"""The one backend-specific module: thin training-step wrappers.

The objective itself is one pure function in `keras.ops`
(`ComprehensiveAttributionModel.compute_terms`). What differs between
backends is only how gradients are taken and state is threaded:

- TensorFlow: one forward pass under a persistent `tf.GradientTape`, then
  the gradient of the selector loss for the selector's variables and the
  gradient of the predictor loss for the predictor's variables.
- JAX: one stateless forward pass under `jax.vjp`, pulled back twice (once
  per loss); under `jit` XLA drops the parts of each pull-back that are not
  used. Returns `(logs, state)` as Keras' JAX trainer expects.

Two pull-backs are needed because the predictor must receive the gradient
of `L_P` alone while the selector receives the gradient of the full selector
loss, which also depends on the predictor through the hinge term.
"""

import keras
from keras.src.trainers import data_adapters


def _unpack(data):
    x, y, sample_weight = (
        data_adapters.data_adapter_utils.unpack_x_y_sample_weight(data)
    )
    if y is None:
        raise ValueError(
            "ComprehensiveAttributionModel is trained on (images, labels) "
            "pairs; the data yielded images only."
        )
    return x, y, sample_weight


def train_step(model, *args):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow_train_step(model, *args)
    if backend == "jax":
        return _jax_train_step(model, *args)
    raise NotImplementedError(
        f"ComprehensiveAttributionModel does not train on the {backend!r} "
        "backend yet. Use KERAS_BACKEND=tensorflow or KERAS_BACKEND=jax."
    )


def test_step(model, *args):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        x, y, _ = _unpack(args[0])
        terms = model.compute_terms(x, y, training=False)
        return model.update_trackers(terms, y)
    if backend == "jax":
        return _jax_test_step(model, *args)
    raise NotImplementedError(
        f"ComprehensiveAttributionModel does not evaluate on the {backend!r} "
        "backend yet. Use KERAS_BACKEND=tensorflow or KERAS_BACKEND=jax."
    )


def _check_frozen_detector(model):
    if model.detector.trainable_variables:
        raise ValueError(
            "The detector has trainable variables. It must stay frozen: set "
            "`model.detector.trainable = False` (the constructor does this; "
            "something set it back to True)."
        )


def _tensorflow_train_step(model, data):
    import tensorflow as tf

    _check_frozen_detector(model)
    x, y, _ = _unpack(data)
    selector_variables = model.selector_variables
    predictor_variables = model.predictor_variables
    with tf.GradientTape(persistent=True) as tape:
        terms = model.compute_terms(x, y, training=True)
        selector_loss = model.optimizer.scale_loss(terms["selector_loss"])
        predictor_loss = model.optimizer.scale_loss(
            terms["predictor_objective"]
        )
    selector_grads = tape.gradient(selector_loss, selector_variables)
    predictor_grads = tape.gradient(predictor_loss, predictor_variables)
    del tape
    model.optimizer.apply(
        selector_grads + predictor_grads,
        selector_variables + predictor_variables,
    )
    return model.update_trackers(terms, y)


def _group_indices(model):
    """Positions of the selector and predictor variables in the state."""
    position = {id(v): i for i, v in enumerate(model.trainable_variables)}
    selector = [position[id(v)] for v in model.selector_variables]
    predictor = [position[id(v)] for v in model.predictor_variables]
    return selector, predictor


def _jax_forward(model, trainable, non_trainable, optimizer_vars, x, y):
    """Stateless forward pass; returns the terms and new non-trainables."""
    mapping = list(zip(model.trainable_variables, trainable))
    mapping += list(zip(model.non_trainable_variables, non_trainable))
    if optimizer_vars is not None:
        mapping += list(zip(model.optimizer.variables, optimizer_vars))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        terms = model.compute_terms(x, y, training=optimizer_vars is not None)
        if optimizer_vars is not None:
            terms["scaled_losses"] = (
                model.optimizer.scale_loss(terms["selector_loss"]),
                model.optimizer.scale_loss(terms["predictor_objective"]),
            )
    new_non_trainable = [
        scope.get_current_value(v) for v in model.non_trainable_variables
    ]
    return terms, new_non_trainable


def _jax_update_trackers(model, metrics_variables, terms, y):
    mapping = list(zip(model.metrics_variables, metrics_variables))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        logs = model.update_trackers(terms, y)
    return logs, [scope.get_current_value(v) for v in model.metrics_variables]


def _jax_train_step(model, state, data):
    import jax
    import jax.numpy as jnp

    _check_frozen_detector(model)
    trainable, non_trainable, optimizer_vars, metrics_vars = state
    x, y, _ = _unpack(data)
    selector_idx, predictor_idx = _group_indices(model)

    def forward(selector_values, predictor_values):
        values = list(trainable)
        for i, value in zip(selector_idx, selector_values):
            values[i] = value
        for i, value in zip(predictor_idx, predictor_values):
            values[i] = value
        terms, new_non_trainable = _jax_forward(
            model, values, non_trainable, optimizer_vars, x, y
        )
        return terms.pop("scaled_losses"), (terms, new_non_trainable)

    losses, pull_back, (terms, non_trainable) = jax.vjp(
        forward,
        [trainable[i] for i in selector_idx],
        [trainable[i] for i in predictor_idx],
        has_aux=True,
    )
    one = jnp.ones((), losses[0].dtype)
    zero = jnp.zeros((), losses[0].dtype)
    selector_grads, _ = pull_back((one, zero))
    _, predictor_grads = pull_back((zero, one))
    grads = [jnp.zeros_like(v) for v in trainable]
    for i, grad in zip(selector_idx, selector_grads):
        grads[i] = grad
    for i, grad in zip(predictor_idx, predictor_grads):
        grads[i] = grad
    trainable, optimizer_vars = model.optimizer.stateless_apply(
        optimizer_vars, grads, trainable
    )
    logs, metrics_vars = _jax_update_trackers(model, metrics_vars, terms, y)
    return logs, (trainable, non_trainable, optimizer_vars, metrics_vars)


def _jax_test_step(model, state, data):
    trainable, non_trainable, metrics_vars = state
    x, y, _ = _unpack(data)
    terms, non_trainable = _jax_forward(
        model, trainable, non_trainable, None, x, y
    )
    logs, metrics_vars = _jax_update_trackers(model, metrics_vars, terms, y)
    return logs, (trainable, non_trainable, metrics_vars)
