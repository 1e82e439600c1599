"""The one backend-specific module of the explainers: input gradients.

`class_score_gradients(model)` returns a function that maps a batch of
inputs and integer labels to the selected class scores and their gradient
with respect to the inputs. The class score is the model output at the
label, as the model outputs it (a logit, or a probability for a model that
ends with a softmax).

- TensorFlow: one forward pass under a `tf.GradientTape` watching the
  inputs.
- JAX: `jax.grad` of a pure function built on `model.stateless_call`,
  jitted once per returned function (so once per `explain` call).
"""

import keras
import numpy as np
from keras import ops


def _selected_scores(outputs, labels):
    if len(outputs.shape) != 2:
        raise ValueError(
            "The model must map its inputs to (N, K) class scores. "
            f"Received outputs of shape {tuple(outputs.shape)}."
        )
    outputs = ops.cast(outputs, "float32")
    one_hot = ops.one_hot(labels, outputs.shape[-1], dtype="float32")
    return ops.sum(outputs * one_hot, axis=-1)


def class_score_gradients(model):
    """A function `(inputs, labels) -> (scores, gradients)` for `model`.

    Args:
        model: a Keras model with one input, mapping it to `(N, K)` scores.

    Returns:
        A callable taking a float32 NumPy batch and `(N,)` integer labels
        and returning NumPy arrays: the scores `(N,)` and the gradients of
        each score with respect to its input (the shape of the batch).
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow_gradients(model)
    if backend == "jax":
        return _jax_gradients(model)
    raise NotImplementedError(
        f"Gradient explainers do not support the {backend!r} backend yet. "
        "Use KERAS_BACKEND=tensorflow or KERAS_BACKEND=jax."
    )


def _tensorflow_gradients(model):
    import tensorflow as tf

    def gradients(inputs, labels):
        inputs = tf.convert_to_tensor(inputs, tf.float32)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(inputs)
            scores = _selected_scores(model(inputs, training=False), labels)
            total = tf.reduce_sum(scores)
        grads = tape.gradient(total, inputs)
        if grads is None:  # The output does not depend on the input.
            grads = tf.zeros_like(inputs)
        return scores.numpy(), grads.numpy()

    return gradients


def _jax_gradients(model):
    import jax
    import jax.numpy as jnp

    def total_score(inputs, labels, trainable, non_trainable):
        outputs, _ = model.stateless_call(
            trainable, non_trainable, inputs, training=False
        )
        scores = _selected_scores(outputs, labels)
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
