"""JAX: stateless forward passes under `jax.vjp`, returning new state.

The steps return `(logs, state)` as Keras' JAX trainer expects; Keras jits
them (and shards them under `keras.distribution`).
"""

import jax
import jax.numpy as jnp
import keras
import numpy as np

from keras_compattr import backend as shared


def _group_indices(model):
    """Positions of the selector and predictor variables in the state."""
    position = {id(v): i for i, v in enumerate(model.trainable_variables)}
    selector = [position[id(v)] for v in model.selector_variables]
    predictor = [position[id(v)] for v in model.predictor_variables]
    return selector, predictor


def _forward(
    model, trainable, non_trainable, optimizer_vars, x, y, sample_weight
):
    """Stateless forward pass; returns the terms and new non-trainables.

    With `optimizer_vars` (training), the area control takes its step and
    the terms also hold `"scaled_losses"`: the losses to differentiate,
    scaled for mixed precision, and `"predictor_factor"` (see
    `shared.predictor_factor`).
    """
    mapping = list(zip(model.trainable_variables, trainable))
    mapping += list(zip(model.non_trainable_variables, non_trainable))
    if optimizer_vars is not None:
        mapping += list(zip(model.optimizer.variables, optimizer_vars))
    # `collect_losses`: the networks' `add_loss` (activity regularisers)
    # would otherwise be dropped in the scope, as in Keras' JAX trainer.
    with keras.StatelessScope(
        state_mapping=mapping, collect_losses=True
    ) as scope:
        terms = model.compute_terms(
            x,
            y,
            training=optimizer_vars is not None,
            sample_weight=sample_weight,
        )
        if optimizer_vars is not None:
            model.step_area_control(terms, y)
            scale = model.optimizer.scale_loss
            factor = shared.predictor_factor(model, terms)
            if factor is None:
                terms["scaled_losses"] = (
                    scale(terms["selector_loss"]),
                    scale(terms["predictor_objective"]),
                )
            else:
                terms["scaled_losses"] = (
                    scale(shared.single_pass_loss(terms, factor)),
                )
                terms["predictor_factor"] = keras.ops.convert_to_tensor(
                    factor, "float32"
                )
    new_non_trainable = [
        scope.get_current_value(v) for v in model.non_trainable_variables
    ]
    return terms, new_non_trainable


def _update_trackers(model, metrics_variables, terms, y):
    """`stateless_update_state` of each tracker, as keras-io's JAX guide."""
    results, new_variables = {}, []
    for tracker, args, kwargs in model.tracker_updates(terms, y):
        start = len(new_variables)
        variables = metrics_variables[start : start + len(tracker.variables)]
        variables = tracker.stateless_update_state(variables, *args, **kwargs)
        results[tracker.name] = tracker.stateless_result(variables)
        new_variables += list(variables)
    return model.step_logs(results, terms), new_variables


def train_step(model, state, data):
    shared.check_frozen_detector(model)
    trainable, non_trainable, optimizer_vars, metrics_vars = state
    x, y, sample_weight = shared.unpack(data)
    selector_idx, predictor_idx = _group_indices(model)

    def forward(selector_values, predictor_values):
        values = list(trainable)
        for i, value in zip(selector_idx, selector_values):
            values[i] = value
        for i, value in zip(predictor_idx, predictor_values):
            values[i] = value
        terms, new_non_trainable = _forward(
            model, values, non_trainable, optimizer_vars, x, y, sample_weight
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
    logs, metrics_vars = _update_trackers(model, metrics_vars, terms, y)
    return logs, (trainable, non_trainable, optimizer_vars, metrics_vars)


def test_step(model, state, data):
    trainable, non_trainable, metrics_vars = state
    x, y, sample_weight = shared.unpack(data)
    terms, non_trainable = _forward(
        model, trainable, non_trainable, None, x, y, sample_weight
    )
    logs, metrics_vars = _update_trackers(model, metrics_vars, terms, y)
    return logs, (trainable, non_trainable, metrics_vars)


def class_score_gradients(model, score_fn):
    # `jax.grad` of a pure function built on `model.stateless_call`, jitted
    # once per returned function (so once per `explain` call).
    def total_score(inputs, labels, trainable, non_trainable):
        outputs, _ = model.stateless_call(
            trainable, non_trainable, inputs, training=False
        )
        scores = score_fn(outputs, labels)
        return jnp.sum(scores), scores

    grad_fn = jax.jit(jax.grad(total_score, has_aux=True))
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def gradients(inputs, labels):
        grads, scores = grad_fn(
            jnp.asarray(inputs, "float32"),
            jnp.asarray(labels, "int32"),
            trainable,
            non_trainable,
        )
        return np.asarray(scores), np.asarray(grads)

    return gradients
