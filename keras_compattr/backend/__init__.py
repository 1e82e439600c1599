"""The backend-specific code: training steps and input gradients.

The objective itself is one pure function in `keras.ops`
(`ComprehensiveAttributionModel.compute_terms`). What differs between
backends is only how gradients are taken and state is threaded; each
backend has one small module here (`tensorflow.py`, `jax.py`, `torch.py`),
imported only when that backend runs.

The predictor must receive the gradient of `L_P` alone, the selector the
gradient of the full selector loss `S = L_P + a * T + b * R`. Both come from
one forward pass. How many backward passes they need depends on `T`:

- `T` does not depend on the predictor (`"chance_hinge"`,
  `"negative_ce"`, `"entropy"`, `"kl_uniform"`, or `detector_weight=0`):
  the gradient of `S` on the predictor equals that of `L_P`. One backward
  pass of `S` gives both.
- `T` is the hinge on batch means: the gradient of `S` on the predictor is
  `(1 + a * [hinge active])` times that of `L_P`. One backward pass, then the
  predictor's gradients are divided by that factor.
- `T` is the per-sample hinge, or any other term that depends on the
  predictor and declares no factor, or the deletion term is on
  (`deletion_weight > 0`) with a trainable predictor: the forward pass is
  pulled back twice, once per loss.

Each term declares whether it depends on the predictor where it is
registered (`keras_compattr.losses.objective.DetectorTerm`).

After the forward pass, the adaptive area control takes its step
(`model.step_area_control`): the loss itself is stateless.

TensorFlow records the forward pass on a `tf.GradientTape`; JAX runs it
statelessly under `jax.vjp` and returns `(logs, state)` as Keras' JAX trainer
expects; PyTorch runs it eagerly and takes `torch.autograd.grad` of the
parameters' tensors, as keras-io's torch training-step guide does with
`backward()`.
"""

import importlib

import keras

from keras_compattr.losses.objective import detector_term

BACKENDS = ("tensorflow", "jax", "torch")


def _module():
    backend = keras.backend.backend()
    if backend not in BACKENDS:
        raise NotImplementedError(
            f"keras_compattr does not support the {backend!r} backend. Use "
            "KERAS_BACKEND=tensorflow, jax or torch."
        )
    return importlib.import_module(f"keras_compattr.backend.{backend}")


def train_step(model, *args):
    """One COMET training step on the current backend (see the module)."""
    return _module().train_step(model, *args)


def test_step(model, *args):
    """One COMET evaluation step on the current backend."""
    return _module().test_step(model, *args)


def class_score_gradients(model, score_fn):
    """A function `(inputs, labels) -> (scores, gradients)` for `model`.

    Args:
        model: a Keras model with one input.
        score_fn: a `keras.ops` function mapping the model's outputs and
            integer labels to one score per input, `(N,)`.

    Returns:
        A callable taking a float32 NumPy batch and `(N,)` integer labels
        and returning NumPy arrays: the scores `(N,)` and the gradient of
        each score with respect to its input (the shape of the batch). The
        model runs in inference mode.
    """
    return _module().class_score_gradients(model, score_fn)


# === Shared by the backends ===


def unpack(data):
    """`(images, labels, sample_weight)` from a batch; refuses no labels.

    `sample_weight` is `None` or `(N,)`: Keras turns `fit`'s
    `class_weight` into it, and datasets may yield it third.
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    if y is None:
        raise ValueError(
            "ComprehensiveAttributionModel is trained on (images, labels) "
            "pairs; the data yielded images only."
        )
    return x, y, sample_weight


def predictor_factor(model, terms):
    """How much larger the selector loss's predictor gradient is than L_P's.

    Each detector term declares whether it depends on the predictor
    (`keras_compattr.losses.objective.DetectorTerm`). Returns 1 when it
    does not (or has no weight), and `None` when no single factor exists:
    the step then pulls the forward pass back once per loss.
    """
    if model.deletion_weight and model.predictor_variables:
        # The deletion term runs the predictor on another image.
        return None
    term = detector_term(model.detector_term)
    if model.detector_weight == 0.0 or not term.uses_predictor:
        return 1.0
    if term.predictor_factor is None:
        return None
    return term.predictor_factor(
        terms["detector_term"], model.detector_weight, model.hinge_reduction
    )


def split_gradients(grads, num_selector, factor):
    """`(selector_grads, predictor_grads)` from the gradients of
    `single_pass_loss` on selector then predictor variables; the
    predictor's are divided by `factor` (`None` stays `None`)."""
    predictor_grads = [
        None if g is None else g / keras.ops.cast(factor, g.dtype)
        for g in grads[num_selector:]
    ]
    return grads[:num_selector], predictor_grads


def eager_test_step(model, data):
    """One COMET evaluation step where the model runs statefully (TensorFlow
    and PyTorch; JAX threads state instead)."""
    x, y, sample_weight = unpack(data)
    terms = model.compute_terms(
        x, y, training=False, sample_weight=sample_weight
    )
    return model.update_trackers(terms, y)


def single_pass_loss(terms, factor):
    """A loss whose gradient is S's on the selector and factor * L_P's on
    the predictor (regularisation of the predictor included)."""
    regularization = terms["predictor_objective"] - terms["predictor_loss"]
    return terms["selector_loss"] + factor * regularization


def check_frozen_detector(model):
    """Refuses to train when the detector was made trainable again."""
    if model.detector.trainable_variables or model.judge.trainable_variables:
        raise ValueError(
            "The detector has trainable variables. It must stay frozen: set "
            "`model.detector.trainable = False` (the constructor does this; "
            "something set it back to True)."
        )
