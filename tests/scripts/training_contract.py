"""One training step's contract, measured on the backend of this process.

Run as `python training_contract.py` with `KERAS_BACKEND` set
(`tests/test_training_contract.py` runs it once per backend and checks
the JSON line it prints):

- `regularization`: a selector and a predictor with activity and weight
  regularisers take one SGD step. The logged loss is compared with the
  eager selector loss (regularisers included), and the predictor's last
  layer's update with the one computed by hand from its inputs:
  cross-entropy plus both regularisers' gradients.
- `refusals`: the error messages of networks that share a layer, and of
  one model given as predictor and detector.
"""

import json

import keras
import numpy as np

import keras_compattr as kca

SHAPE = (16, 16, 3)
NUM_CLASSES = 3
NUM_IMAGES = 4
LEARNING_RATE = 1e-3
# Strong enough that a dropped regulariser changes the results by far
# more than the tolerances of the test.
SELECTOR_ACTIVITY = 10.0
SELECTOR_WEIGHT = 10.0
PREDICTOR_ACTIVITY = 100.0
PREDICTOR_WEIGHT = 100.0


def _selector():
    inputs = keras.Input(SHAPE)
    features = keras.layers.Conv2D(
        4,
        3,
        padding="same",
        activation="relu",
        kernel_regularizer=keras.regularizers.L2(SELECTOR_WEIGHT),
        name="selector_conv",
    )(inputs)
    features = keras.layers.ActivityRegularization(
        l1=SELECTOR_ACTIVITY, name="selector_activity"
    )(features)
    return keras.Model(inputs, features, name="selector")


def _predictor():
    inputs = keras.Input(SHAPE)
    features = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    features = keras.layers.GlobalAveragePooling2D(name="features")(features)
    logits = keras.layers.Dense(
        NUM_CLASSES,
        kernel_regularizer=keras.regularizers.L2(PREDICTOR_WEIGHT),
        name="logits",
    )(features)
    logits = keras.layers.ActivityRegularization(
        l2=PREDICTOR_ACTIVITY, name="predictor_activity"
    )(logits)
    return keras.Model(inputs, logits, name="predictor")


def _detector(name="detector"):
    return kca.models.build_classifier(
        SHAPE, NUM_CLASSES, widths=(4, 8), blocks_per_stage=1, name=name
    )


def _numpy(value):
    return np.asarray(keras.ops.convert_to_numpy(value), "float64")


def regularization():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (NUM_IMAGES, *SHAPE)).astype("float32")
    labels = np.arange(NUM_IMAGES) % NUM_CLASSES
    model = kca.ComprehensiveAttributionModel(
        selector=_selector(),
        predictor=_predictor(),
        detector=_detector(),
        detector_weight=0.0,  # the predictor's gradient is L_P's alone
        area_budget=0.6,
        fill_value=0.5,
    )
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE))

    # Eager references, with the weights before the step.
    terms = model.compute_terms(images, labels, training=True)
    model.selector(images, training=True)
    selector_regularization = sum(_numpy(x) for x in model.selector.losses)
    masks = model.compute_masks(images, training=True)
    masked_in, _ = model.apply_masks(images, masks)
    predictor = model.predictor
    taps = keras.Model(
        predictor.input,
        [
            predictor.get_layer("features").output,
            predictor.get_layer("logits").output,
        ],
    )
    features, logits = (_numpy(x) for x in taps(masked_in))
    kernel, bias = (_numpy(v) for v in predictor.get_layer("logits").weights)

    logs = model.train_on_batch(images, labels, return_dict=True)
    new_kernel, new_bias = (
        _numpy(v) for v in predictor.get_layer("logits").weights
    )

    # d/dz of mean cross-entropy and of the activity regulariser
    # (`l2 * sum(z**2)`, divided by the batch size by Keras).
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    one_hot = np.eye(NUM_CLASSES)[labels]
    cross_entropy_grad = (probabilities - one_hot) / NUM_IMAGES
    activity_grad = 2.0 * PREDICTOR_ACTIVITY * logits / NUM_IMAGES
    logit_grad = cross_entropy_grad + activity_grad
    expected = {
        "kernel": -LEARNING_RATE
        * (features.T @ logit_grad + 2.0 * PREDICTOR_WEIGHT * kernel),
        "bias": -LEARNING_RATE * logit_grad.sum(axis=0),
    }
    measured = {"kernel": new_kernel - kernel, "bias": new_bias - bias}
    unregularized = {
        "kernel": -LEARNING_RATE * (features.T @ cross_entropy_grad),
        "bias": -LEARNING_RATE * cross_entropy_grad.sum(axis=0),
    }
    return {
        "logged_loss": float(logs["loss"]),
        "eager_selector_loss": float(_numpy(terms["selector_loss"])),
        "selector_regularization": float(selector_regularization),
        "update_error": {
            name: float(
                np.abs(measured[name] - expected[name]).max()
                / np.abs(expected[name]).max()
            )
            for name in expected
        },
        # How far off an update without the regularisers would be.
        "unregularized_error": {
            name: float(
                np.abs(unregularized[name] - expected[name]).max()
                / np.abs(expected[name]).max()
            )
            for name in expected
        },
    }


def _error(**networks):
    try:
        kca.ComprehensiveAttributionModel(**networks)
    except ValueError as error:
        return str(error)
    return None


def refusals():
    shared = keras.layers.Conv2D(4, 3, padding="same", name="shared_conv")
    selector_input = keras.Input(SHAPE)
    selector = keras.Model(selector_input, shared(selector_input))
    predictor_input = keras.Input(SHAPE)
    features = keras.layers.GlobalAveragePooling2D()(shared(predictor_input))
    predictor = keras.Model(
        predictor_input, keras.layers.Dense(NUM_CLASSES)(features)
    )
    detector = _detector()
    own_predictor = _detector("own_predictor")
    return {
        "selector_and_predictor": _error(
            selector=selector, predictor=predictor, detector=detector
        ),
        "predictor_is_detector": _error(predictor=detector, detector=detector),
        "distinct": _error(
            selector=_selector(), predictor=own_predictor, detector=detector
        ),
    }


if __name__ == "__main__":
    print(
        json.dumps(
            {
                "backend": keras.backend.backend(),
                "regularization": regularization(),
                "refusals": refusals(),
            }
        )
    )
