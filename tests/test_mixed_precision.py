import keras
import numpy as np
import pytest

from tests.conftest import tiny_model


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_with_float32_terms(data, policy):
    images, labels = data["images"][:8], data["labels"][:8]
    reference = tiny_model(fill_value=0.5)  # float32
    expected = reference.compute_terms(images, labels)
    previous = keras.config.dtype_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = tiny_model(fill_value=0.5)
        model.set_weights(reference.get_weights())
        terms = model.compute_terms(images, labels)
        model.compile()
        before = [np.array(v) for v in model.selector.get_weights()]
        history = model.fit(
            data["images"], data["labels"], batch_size=8, epochs=1, verbose=0
        )
        masks = model.explain(data["images"][:4], verbose=0)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert all(np.isfinite(v[0]) for v in history.history.values())
    # The terms are float32 and agree with float32 computation to the
    # precision of the 16-bit activations.
    for name in ("selector_loss", "predictor_loss", "detector_loss", "masks"):
        assert keras.backend.standardize_dtype(terms[name].dtype) == "float32"
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(terms[name]),
            keras.ops.convert_to_numpy(expected[name]),
            rtol=0.05,
            atol=0.02,
            err_msg=name,
        )
    # Training moved the selector (a scaled loss that underflowed to zero
    # gradients would leave it).
    after = model.selector.get_weights()
    assert max(np.abs(a - b).max() for a, b in zip(after, before)) > 1e-6
    assert masks.dtype == np.float32 and np.isfinite(masks).all()
