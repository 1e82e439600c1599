"""One training contract on TensorFlow, JAX and torch.

Each backend runs `tests/scripts/training_contract.py` in a fresh process
(one process has one backend; about 15-35 s each on 2 loaded cores):

- the regularisation losses of the networks, activity (`add_loss`) and
  weight regularisers alike, are in the selector's logged loss and in the
  predictor's update, as the eager objective counts them;
- networks that share a layer are refused with an error naming it, and so
  is one model given as both predictor and detector.
"""

import pytest

from tests.helpers import run_script_in_fresh_process


@pytest.fixture(scope="module", params=["tensorflow", "jax", "torch"])
def contract(request):
    backend = request.param
    result = run_script_in_fresh_process("training_contract.py", backend)
    assert result["backend"] == backend
    return result


def test_regularisation_losses_are_counted_in_the_selector_loss(contract):
    found = contract["regularization"]
    # The regularisers dominate the loss, so dropping them shows.
    assert found["selector_regularization"] > 100.0
    assert found["logged_loss"] == pytest.approx(
        found["eager_selector_loss"], rel=1e-4
    )
    assert found["logged_loss"] > found["selector_regularization"]


def test_regularisation_losses_are_counted_in_the_predictor_update(contract):
    found = contract["regularization"]
    for name in ("kernel", "bias"):
        assert found["update_error"][name] < 1e-3, name
        # Without its regularisers the update would be far off.
        assert found["unregularized_error"][name] > 0.5, name


def test_networks_that_share_a_layer_are_refused(contract):
    found = contract["refusals"]
    message = found["selector_and_predictor"]
    assert "selector and the predictor share the layer 'shared_conv'" in (
        message
    )
    assert "clone_model" in message
    assert (
        "predictor and the detector share the layer"
        in (found["predictor_is_detector"])
    )
    assert found["distinct"] is None
