"""PyTorch: an eager forward pass and `torch.autograd.grad`.

As in keras-io's guide to custom training steps in torch: run the forward
pass, differentiate the (scaled) loss, then apply the gradients with the
Keras optimizer under `torch.no_grad()`. `torch.autograd.grad` is used
instead of `loss.backward()` so that the per-sample hinge can pull the same
graph back twice (the second time with the graph freed) and no gradient is
left in the parameters' `.grad` between steps.
"""

import keras
import numpy as np
import torch

from keras_compattr import backend as shared


def _grads(loss, variables, retain_graph=False):
    """Gradients of `loss` for Keras `variables` (`None` where unused)."""
    if not variables:
        return []
    return list(
        torch.autograd.grad(
            loss,
            [v.value for v in variables],
            retain_graph=retain_graph,
            allow_unused=True,
        )
    )


def train_step(model, data):
    shared.check_frozen_detector(model)
    x, y, sample_weight = shared.unpack(data)
    selector_variables = model.selector_variables
    predictor_variables = model.predictor_variables
    scale = model.optimizer.scale_loss
    terms = model.compute_terms(
        x, y, training=True, sample_weight=sample_weight
    )
    factor = shared.predictor_factor(model, terms)
    if factor is not None:
        grads = _grads(
            scale(shared.single_pass_loss(terms, factor)),
            selector_variables + predictor_variables,
        )
        selector_grads, predictor_grads = shared.split_gradients(
            grads, len(selector_variables), factor
        )
    else:
        selector_grads = _grads(
            scale(terms["selector_loss"]), selector_variables, True
        )
        predictor_grads = _grads(
            scale(terms["predictor_objective"]), predictor_variables
        )
    with torch.no_grad():
        terms = model.step_area_control(_detached(terms), y)
        model.optimizer.apply(
            selector_grads + predictor_grads,
            selector_variables + predictor_variables,
        )
        return model.update_trackers(terms, y)


def _detached(terms):
    return {
        name: value.detach() if isinstance(value, torch.Tensor) else value
        for name, value in terms.items()
    }


# Keras runs the test function under `torch.no_grad()`.
test_step = shared.eager_test_step


def class_score_gradients(model, score_fn):
    def gradients(inputs, labels):
        inputs = keras.ops.convert_to_tensor(
            np.asarray(inputs, "float32")
        ).requires_grad_(True)
        labels = keras.ops.convert_to_tensor(np.asarray(labels, "int32"))
        with torch.enable_grad():
            scores = score_fn(model(inputs, training=False), labels)
            grads = None
            if scores.requires_grad:
                (grads,) = torch.autograd.grad(
                    torch.sum(scores), inputs, allow_unused=True
                )
        if grads is None:  # The output does not depend on the input.
            grads = torch.zeros_like(inputs)
        return (
            scores.detach().cpu().numpy(),
            grads.detach().cpu().numpy(),
        )

    return gradients
