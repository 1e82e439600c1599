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
    grads = [keras.ops.ones((3,)), keras.ops.ones((2,))]
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


def _apply(optimizer, grads_list):
    """Variables after applying each list of gradients in turn."""
    selector, predictor = _variables()
    optimizer.set_predictor_variables(predictor)
    for grads in grads_list:
        optimizer.apply(
            [keras.ops.convert_to_tensor(g, "float32") for g in grads],
            selector + predictor,
        )
    return (
        keras.ops.convert_to_numpy(selector[0]),
        keras.ops.convert_to_numpy(predictor[0]),
        optimizer,
    )


def _sgd_pair(**kwargs):
    return GroupedOptimizer(
        keras.optimizers.SGD(1.0), keras.optimizers.SGD(1.0), **kwargs
    )


def test_clipvalue_and_clipnorm_apply_to_both_groups():
    grads = [[3.0, -3.0, 0.5], [4.0, 0.0]]
    selector, predictor, _ = _apply(_sgd_pair(clipvalue=1.0), [grads])
    np.testing.assert_allclose(selector, [0.0, 2.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(predictor, [0.0, 1.0], atol=1e-6)
    # clipnorm: each gradient rescaled to norm at most 1.
    selector, predictor, _ = _apply(_sgd_pair(clipnorm=1.0), [grads])
    norm = np.linalg.norm(grads[0])
    np.testing.assert_allclose(
        selector, 1.0 - np.array(grads[0]) / norm, atol=1e-6
    )
    np.testing.assert_allclose(predictor, [0.0, 1.0], atol=1e-6)
    # global_clipnorm: all gradients together rescaled to norm 1.
    selector, predictor, _ = _apply(_sgd_pair(global_clipnorm=1.0), [grads])
    total = np.linalg.norm(np.concatenate([grads[0], grads[1]]))
    np.testing.assert_allclose(predictor, [1.0 - 4.0 / total, 1.0], atol=1e-6)


def test_loss_scale_factor_unscales_the_gradients():
    selector, predictor, _ = _apply(
        _sgd_pair(loss_scale_factor=4.0), [[[4.0, 4.0, 4.0], [8.0, 8.0]]]
    )
    np.testing.assert_allclose(selector, 0.0, atol=1e-6)
    np.testing.assert_allclose(predictor, -1.0, atol=1e-6)


def test_gradient_accumulation_updates_every_second_step():
    one = [[1.0, 1.0, 1.0], [1.0, 1.0]]
    three = [[3.0, 3.0, 3.0], [3.0, 3.0]]
    selector, predictor, optimizer = _apply(
        _sgd_pair(gradient_accumulation_steps=2), [one]
    )
    np.testing.assert_allclose(selector, 1.0)  # accumulated only
    selector, predictor, optimizer = _apply(
        _sgd_pair(gradient_accumulation_steps=2), [one, three]
    )
    np.testing.assert_allclose(selector, 1.0 - 2.0, atol=1e-6)  # mean of 1, 3
    np.testing.assert_allclose(predictor, 1.0 - 2.0, atol=1e-6)
    # Keras counts update steps: two calls, one update.
    assert int(optimizer.iterations) == 1
    assert int(optimizer.selector_optimizer.iterations) == 1


def test_ema_tracks_both_groups_and_overwrites_at_the_end():
    grads = [[1.0, 1.0, 1.0], [1.0, 1.0]]
    selector_vars, predictor_vars = _variables()
    optimizer = _sgd_pair(use_ema=True, ema_momentum=0.5)
    optimizer.set_predictor_variables(predictor_vars)
    variables = selector_vars + predictor_vars
    for _ in range(2):
        optimizer.apply(
            [keras.ops.convert_to_tensor(g, "float32") for g in grads],
            variables,
        )
    # The weights are 1 - 2 = -1; their average lags behind them.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(predictor_vars[0]), -1.0, atol=1e-6
    )
    optimizer.finalize_variable_values(variables)
    averaged = keras.ops.convert_to_numpy(predictor_vars[0])
    assert np.all(averaged > -1.0 + 1e-3)


def test_config_keeps_the_base_optimizer_settings():
    optimizer = _sgd_pair(
        clipnorm=2.0, use_ema=True, gradient_accumulation_steps=3
    )
    config = optimizer.get_config()
    assert config["clipnorm"] == 2.0 and config["use_ema"] is True
    restored = GroupedOptimizer.from_config(config)
    assert restored.get_config() == config
    assert restored.gradient_accumulation_steps == 3
