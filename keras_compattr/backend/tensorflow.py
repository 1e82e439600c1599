"""TensorFlow: the forward pass recorded on a `tf.GradientTape`."""

import tensorflow as tf

from keras_compattr import backend as shared


def train_step(model, data):
    shared.check_frozen_detector(model)
    x, y, sample_weight = shared.unpack(data)
    selector_variables = model.selector_variables
    predictor_variables = model.predictor_variables
    # Under tf.distribute each replica sees its share of the global batch and
    # the optimizer sums the replicas' gradients: divide by their number so
    # that the sum is the gradient of the global-batch mean.
    replicas = tf.distribute.get_strategy().num_replicas_in_sync

    def scale(loss):
        return model.optimizer.scale_loss(loss / replicas)

    with tf.GradientTape(persistent=True) as tape:
        terms = model.compute_terms(
            x, y, training=True, sample_weight=sample_weight
        )
        factor = shared.predictor_factor(model, terms)
        if factor is not None:
            loss = scale(shared.single_pass_loss(terms, factor))
        else:
            selector_loss = scale(terms["selector_loss"])
            predictor_loss = scale(terms["predictor_objective"])
    if factor is not None:
        grads = tape.gradient(loss, selector_variables + predictor_variables)
        selector_grads, predictor_grads = shared.split_gradients(
            grads, len(selector_variables), factor
        )
    else:
        selector_grads = tape.gradient(selector_loss, selector_variables)
        predictor_grads = tape.gradient(predictor_loss, predictor_variables)
    del tape
    model.step_area_control(terms, y)
    model.optimizer.apply(
        selector_grads + predictor_grads,
        selector_variables + predictor_variables,
    )
    return model.update_trackers(terms, y)


test_step = shared.eager_test_step


def class_score_gradients(model, score_fn):
    def gradients(inputs, labels):
        inputs = tf.convert_to_tensor(inputs, tf.float32)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(inputs)
            scores = score_fn(model(inputs, training=False), labels)
            total = tf.reduce_sum(scores)
        grads = tape.gradient(total, inputs)
        if grads is None:  # The output does not depend on the input.
            grads = tf.zeros_like(inputs)
        return scores.numpy(), grads.numpy()

    return gradients
