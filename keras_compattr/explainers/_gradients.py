"""Input gradients for the explainers, on every backend.

`class_score_gradients(model)` returns a function that maps a batch of
inputs and integer labels to the selected class scores and their gradient
with respect to the inputs. The class score is the model output at the
label, as the model outputs it (a logit, or a probability for a model that
ends with a softmax).

The score is computed here in `keras.ops`; how its gradient is taken is
backend-specific and lives in `keras_compattr.backend` (a
`tf.GradientTape` on TensorFlow, a jitted `jax.grad` of
`model.stateless_call` on JAX, `torch.autograd.grad` on PyTorch).
"""

from keras import ops

from keras_compattr import backend


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
    return backend.class_score_gradients(model, _selected_scores)
