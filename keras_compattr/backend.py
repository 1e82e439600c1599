"""The one backend-specific module: thin training-step wrappers.

The objective itself is one pure function in `keras.ops`
(`ComprehensiveAttributionModel.compute_terms`). What differs between
backends is only how gradients are taken and state is threaded.

The predictor must receive the gradient of `L_P` alone, the selector the
gradient of the full selector loss `S = L_P + a * T + b * R`. Both come from
one forward pass. How many backward passes they need depends on `T`:

- `T` does not depend on the predictor (`"negative_ce"`, `"entropy"`,
  `"kl_uniform"`, or `detector_weight=0`): the gradient of `S` on the
  predictor equals that of `L_P`. One backward pass of `S` gives both.
- `T` is the hinge on batch means: the gradient of `S` on the predictor is
  `(1 + a * [hinge active])` times that of `L_P`. One backward pass, then the
  predictor's gradients are divided by that factor.
- `T` is the per-sample hinge: no single factor exists, so the forward pass
  is pulled back twice, once per loss.

TensorFlow records the forward pass on a `tf.GradientTape`; JAX runs it
statelessly under `jax.vjp` and returns `(logs, state)` as Keras' JAX trainer
expects.
"""

import keras


def _unpack(data):
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    if y is None:
        raise ValueError(
            "ComprehensiveAttributionModel is trained on (images, labels) "
            "pairs; the data yielded images only."
        )
    if sample_weight is not None:
        # `fit` and `train_on_batch` refuse weights up front; this catches
        # datasets that yield `(images, labels, weights)`.
        raise ValueError(
            "The data holds sample weights (or `class_weight` was turned "
            "into them): the COMET objective does not weight samples or "
            "classes. Yield `(images, labels)` and resample the data "
            "instead."
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


def _predictor_factor(model, terms):
    """How much larger the selector loss's predictor gradient is than L_P's.

    Returns `None` when no single factor exists (the per-sample hinge).
    """
    if model.detector_weight == 0.0 or model.detector_term != "hinge":
        return 1.0
    if model.hinge_reduction == "sample":
        return None
    active = keras.ops.cast(terms["detector_term"] > 0.0, "float32")
    return 1.0 + model.detector_weight * active


def _single_pass_loss(terms, factor):
    """A loss whose gradient is S's on the selector and factor * L_P's on
    the predictor (regularisation of the predictor included)."""
    regularization = terms["predictor_objective"] - terms["predictor_loss"]
    return terms["selector_loss"] + factor * regularization


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
    # Under tf.distribute each replica sees its share of the global batch and
    # the optimizer sums the replicas' gradients: divide by their number so
    # that the sum is the gradient of the global-batch mean.
    replicas = tf.distribute.get_strategy().num_replicas_in_sync

    def scale(loss):
        return model.optimizer.scale_loss(loss / replicas)

    optimizer = model.optimizer
    with tf.GradientTape(persistent=True) as tape:
        terms = model.compute_terms(x, y, training=True)
        factor = _predictor_factor(model, terms)
        if factor is not None:
            loss = scale(_single_pass_loss(terms, factor))
        else:
            selector_loss = scale(terms["selector_loss"])
            predictor_loss = scale(terms["predictor_objective"])
    if factor is not None:
        grads = tape.gradient(loss, selector_variables + predictor_variables)
        selector_grads = grads[: len(selector_variables)]
        predictor_grads = [
            None if g is None else g / keras.ops.cast(factor, g.dtype)
            for g in grads[len(selector_variables) :]
        ]
    else:
        selector_grads = tape.gradient(selector_loss, selector_variables)
        predictor_grads = tape.gradient(predictor_loss, predictor_variables)
    del tape
    optimizer.apply(
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
    """Stateless forward pass; returns the terms and new non-trainables.

    With `optimizer_vars` (training), the terms also hold `"scaled_losses"`:
    the losses to differentiate, scaled for mixed precision, and
    `"predictor_factor"` (see `_predictor_factor`).
    """
    mapping = list(zip(model.trainable_variables, trainable))
    mapping += list(zip(model.non_trainable_variables, non_trainable))
    if optimizer_vars is not None:
        mapping += list(zip(model.optimizer.variables, optimizer_vars))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        terms = model.compute_terms(x, y, training=optimizer_vars is not None)
        if optimizer_vars is not None:
            scale = model.optimizer.scale_loss
            factor = _predictor_factor(model, terms)
            if factor is None:
                terms["scaled_losses"] = (
                    scale(terms["selector_loss"]),
                    scale(terms["predictor_objective"]),
                )
            else:
                terms["scaled_losses"] = (
                    scale(_single_pass_loss(terms, factor)),
                )
                terms["predictor_factor"] = keras.ops.convert_to_tensor(
                    factor, "float32"
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
    if len(losses) == 1:
        selector_grads, predictor_grads = pull_back((one,))
        factor = terms.pop("predictor_factor")
        predictor_grads = [g / factor for g in predictor_grads]
    else:
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
