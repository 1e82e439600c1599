"""GroupedOptimizer: each network's gradients go to its own optimizer.

Its config and `.keras` round trip are in `tests/test_round_trips.py`.
"""

import keras
import numpy as np
import pytest

from keras_compattr.models import GroupedOptimizer


def _variables():
    selector = [keras.Variable(np.ones(3, "float32"), name="s")]
    predictor = [keras.Variable(np.ones(2, "float32"), name="p")]
    return selector, predictor


def test_each_group_is_updated_by_its_own_optimizer():
    selector, predictor = _variables()
    optimizer = GroupedOptimizer(
        keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.5)
    )
    optimizer.set_predictor_variables(predictor)
    grads = [np.ones(3, "float32"), np.ones(2, "float32")]
    optimizer.apply(grads, selector + predictor)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(selector[0]), 1.0 - 0.1, atol=1e-6
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(predictor[0]), 1.0 - 0.5, atol=1e-6
    )
    assert int(optimizer.iterations) == 1
    assert int(optimizer.selector_optimizer.iterations) == 1
    assert int(optimizer.predictor_optimizer.iterations) == 1


def test_its_variables_hold_both_optimizers_state():
    selector, predictor = _variables()
    optimizer = GroupedOptimizer("adam", keras.optimizers.SGD(0.1, 0.9))
    optimizer.set_predictor_variables(predictor)
    optimizer.build(selector + predictor)
    paths = [v.path for v in optimizer.variables]
    inner = optimizer.selector_optimizer.variables + (
        optimizer.predictor_optimizer.variables
    )
    assert all(v.path in paths for v in inner)
    assert len(paths) > len(inner)  # its own iteration counter too


def test_it_needs_the_predictor_variables_before_it_builds():
    selector, predictor = _variables()
    optimizer = GroupedOptimizer("adam", "sgd")
    with pytest.raises(ValueError, match="set_predictor_variables"):
        optimizer.build(selector + predictor)
