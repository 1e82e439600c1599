import keras
import numpy as np
import pytest

from tests.conftest import tiny_model


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_with_float32_terms(data, policy):
    previous = keras.config.dtype_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = tiny_model(fill_value=0.5)
        model.compile()
        history = model.fit(
            data["images"], data["labels"], batch_size=8, epochs=1, verbose=0
        )
        terms = model.compute_terms(data["images"][:4], data["labels"][:4])
        masks = model.explain(data["images"][:4], verbose=0)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert all(np.isfinite(v[0]) for v in history.history.values())
    for name in ("selector_loss", "predictor_loss", "detector_loss", "masks"):
        assert keras.backend.standardize_dtype(terms[name].dtype) == "float32"
    assert masks.dtype == np.float32 and np.isfinite(masks).all()
