"""Exact gradient routing, one test for TensorFlow, JAX and torch.

The predictor must receive the gradient of `L_P` alone (its own
regularisers included), the selector that of the full selector loss. This
file runs on the backend of its process: the main run (TensorFlow), the
JAX child and the torch child of `tests/test_backends.py`.
"""

import keras
import numpy as np
import pytest

import keras_compattr as kca
from tests.conftest import tiny_model

# (detector term, hinge reduction, area budget, deletion weight): the hinge
# on batch means (one backward pass, predictor gradients divided by 1 + a),
# per image (two backward passes), a term that does not reach the
# predictor, the default adaptive control (its step follows the gradient
# step), and the deletion term, which runs the predictor on a second image
# (two backward passes).
ROUTING_CASES = [
    ("hinge", "batch", 0.6, 0.0),
    ("hinge", "sample", 0.6, 0.0),
    ("negative_ce", "batch", 0.6, 0.0),
    ("chance_hinge", "batch", "auto", 0.0),
    ("chance_hinge", "batch", "auto", 2.0),
]


def _numpy(variables):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def _direct_gradients(model, images, labels, loss, variables):
    """The gradient of one loss of a fresh forward pass, on this backend.

    The model's state (batch-norm statistics, which a training-mode pass
    moves) is put back afterwards: the deletion term's pass reads it.
    """
    state = _numpy(model.non_trainable_variables)
    try:
        return _gradients(model, images, labels, loss, variables)
    finally:
        for variable, value in zip(model.non_trainable_variables, state):
            variable.assign(value)


def _gradients(model, images, labels, loss, variables):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            terms = model.compute_terms(images, labels, training=True)
        grads = tape.gradient(terms[loss], variables)
    elif backend == "jax":
        import jax

        others = [
            v
            for v in model.variables
            if id(v) not in {id(u) for u in variables}
        ]

        def value(values):
            mapping = list(zip(variables, values))
            mapping += [(v, v.value) for v in others]
            with keras.StatelessScope(state_mapping=mapping):
                return model.compute_terms(images, labels, training=True)[loss]

        grads = jax.grad(value)([v.value for v in variables])
    else:
        import torch

        terms = model.compute_terms(images, labels, training=True)
        grads = torch.autograd.grad(
            terms[loss], [v.value for v in variables], allow_unused=True
        )
    return [
        np.zeros(v.shape, "float32")
        if g is None
        else np.asarray(keras.ops.convert_to_numpy(g))
        for g, v in zip(grads, variables)
    ]


@pytest.mark.parametrize("term,reduction,area,deletion", ROUTING_CASES)
def test_gradient_routing_matches_direct_gradients(
    data, term, reduction, area, deletion
):
    # Plain SGD at learning rate 1 moves every variable by minus its
    # gradient: the step's gradients are read off the weights.
    images, labels = data["images"][:8], data["labels"][:8]
    model = tiny_model(
        fill_value=0.5,
        detector_term=term,
        hinge_reduction=reduction,
        margin=50.0,  # keeps the hinge active
        area_budget=area,
        deletion_weight=deletion,
    )
    model.compile(optimizer=keras.optimizers.SGD(1.0))
    selector_vars = model.selector_variables
    predictor_vars = model.predictor_variables
    args = (model, images, labels)
    selector = _direct_gradients(*args, "selector_loss", selector_vars)
    predictor = _direct_gradients(*args, "predictor_loss", predictor_vars)
    selector_on_predictor = _direct_gradients(
        *args, "selector_loss", predictor_vars
    )
    before_s, before_p = _numpy(selector_vars), _numpy(predictor_vars)
    detector = _numpy(model.detector.weights)
    logs = model.train_on_batch(images, labels, return_dict=True)
    for b, a, g in zip(before_s, _numpy(selector_vars), selector):
        np.testing.assert_allclose(b - a, g, rtol=1e-3, atol=1e-5)
    for b, a, g in zip(before_p, _numpy(predictor_vars), predictor):
        np.testing.assert_allclose(b - a, g, rtol=1e-3, atol=1e-5)
    # The predictor gets L_P's gradient, not the selector loss's (which
    # differs while the hinge is active).
    differences = [
        np.abs(g - h).max() for g, h in zip(predictor, selector_on_predictor)
    ]
    uses_predictor = kca.losses.objective.detector_term(term).uses_predictor
    assert uses_predictor == (term == "hinge")
    if deletion:
        assert logs["deletion_term"] > 0.0
    if uses_predictor or deletion:
        assert max(differences) > 1e-3
    else:
        assert max(differences) < 1e-5
    # The detector is frozen: untouched, batch-norm statistics included.
    for b, a in zip(detector, _numpy(model.detector.weights)):
        np.testing.assert_array_equal(b, a)
    # The adaptive control stepped once, after the gradients were taken
    # with the multiplier before the step.
    if area == "auto":
        assert "area_multiplier" in logs
        assert logs["area_multiplier"] != 1.0
