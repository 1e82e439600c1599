"""Loading saved `ComprehensiveAttributionModel`s with clear errors."""

import copy
import json
import os
import zipfile

import keras

_REGISTERED_NAME = "keras_compattr>ComprehensiveAttributionModel"


def _read_config(path):
    """The `config.json` of a `.keras` archive, with clear errors."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"No model file at {path!r}.")
    if os.path.isdir(path):
        raise ValueError(
            f"{path!r} is a folder, not a model file. Models are saved as "
            "one `.keras` file by `model.save('name.keras')` (a TensorFlow "
            "SavedModel folder cannot be loaded as a Keras 3 model)."
        )
    if path.endswith(".weights.h5"):
        raise ValueError(
            f"{path!r} holds weights only, not a model. Build the model "
            "with the same networks and call `model.load_weights(path)`."
        )
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path!r} is not a Keras model file: a `.keras` file is a zip "
            "archive written by `model.save(path)`, and this file is not "
            "one (truncated, corrupted or of another format)."
        )
    if not path.endswith(".keras"):
        raise ValueError(
            f"{path!r} is a zip archive but Keras loads models only from "
            "files named `*.keras`: rename it."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except KeyError:
        raise ValueError(
            f"{path!r} is a zip archive without `config.json`: not a Keras "
            "model file."
        ) from None
    except (zipfile.BadZipFile, UnicodeDecodeError, ValueError) as error:
        raise ValueError(
            f"{path!r} is not a readable Keras model file ({error})."
        ) from None
    if not isinstance(config, dict):
        raise ValueError(f"{path!r} holds no model configuration.")
    return config


def load_model(
    filepath, num_classes=None, input_shape=None, compile=True, safe_mode=True
):
    """Loads a `ComprehensiveAttributionModel` saved with `model.save`.

    Checks the file before building anything: it must be a `.keras`
    archive holding a `ComprehensiveAttributionModel`, and, when given,
    with `num_classes` classes and images of `input_shape`. Loading uses
    Keras' safe mode by default, which refuses `Lambda` layers and other
    pickled code.

    Args:
        filepath: str or path, the `.keras` file.
        num_classes: int or `None`, the number of classes the model must
            have.
        input_shape: `(H, W, C)` or `None`, the image shape the model must
            take.
        compile: bool, restore the optimizer state too (to go on
            training).
        safe_mode: bool, passed to `keras.saving.load_model`. Leave it
            `True` for files from elsewhere.

    Returns:
        The `ComprehensiveAttributionModel`.

    Raises:
        FileNotFoundError: no file at `filepath`.
        ValueError: the file is not a Keras model file, or the model's
            number of classes or image shape differs from the ones asked.
        TypeError: the file holds another kind of model.

    Example:

    ```python
    import numpy as np

    import keras_compattr as kca

    shape = (32, 32, 3)
    kca.ComprehensiveAttributionModel(
        selector=kca.models.build_selector(shape, backbone="tiny", width=4),
        predictor=kca.models.build_classifier(shape, 4, widths=(4, 8)),
        detector=kca.models.build_classifier(shape, 4, widths=(4, 8)),
    ).save("comet.keras")

    model = kca.models.load_model("comet.keras", num_classes=4)
    masks = model.explain(np.random.rand(2, *shape))  # (2, 32, 32)
    ```
    """
    path = os.fspath(filepath)
    config = _read_config(path)
    registered = config.get("registered_name") or config.get("class_name")
    if registered != _REGISTERED_NAME:
        raise TypeError(
            f"{path!r} holds a {config.get('class_name', 'model')} "
            f"(registered as {registered!r}), not a "
            "ComprehensiveAttributionModel. Load it with "
            "`keras.saving.load_model`."
        )
    settings = config.get("config", {})
    saved_classes = settings.get("num_classes")
    if num_classes is not None and saved_classes != num_classes:
        raise ValueError(
            f"{path!r} holds a model for {saved_classes} classes, but "
            f"{num_classes} were asked for. Use a model trained on your "
            "classes, or pass the matching `num_classes`."
        )
    saved_shape = settings.get("input_shape")
    if input_shape is not None and (
        saved_shape is None or tuple(saved_shape) != tuple(input_shape)
    ):
        raise ValueError(
            f"{path!r} holds a model for images of shape "
            f"{None if saved_shape is None else tuple(saved_shape)}, but "
            f"{tuple(input_shape)} was asked for. Resize the images, or "
            "pass the matching `input_shape`."
        )
    return keras.saving.load_model(path, compile=compile, safe_mode=safe_mode)


def upgraded_config(config):
    """A copy of a saved model config, in this version's form.

    Files of earlier versions load as they were saved:

    - before `frozen_config`, the detector's config held its training
      state; restoring it warns, and COMET never uses it: dropped;
    - before `CometObjective`, the objective's settings were flat keys
      (the model's short form), with an `AreaMultiplier` serialised:
      deserialised here;
    - before hardening, the detector itself judged: `hardening=None`.

    Args:
        config: the dict `ComprehensiveAttributionModel.get_config` wrote.

    Returns:
        A new dict (deserialising consumes dicts; `config` is untouched).
    """
    config = copy.deepcopy(config)
    config["detector"].pop("compile_config", None)
    if isinstance(config.get("area_budget"), dict):
        config["area_budget"] = keras.saving.deserialize_keras_object(
            config["area_budget"]
        )
    config.setdefault("hardening", None)
    return config


def deserialized_config(config, names):
    """A copy of a model config with the objects under `names` rebuilt.

    Args:
        config: a model config, as `get_config` wrote it.
        names: the keys holding serialised Keras objects (networks, the
            objective); absent keys are skipped.

    Returns:
        A new dict whose `names` hold the objects, and whose
        `input_shape`, when set, is a tuple (JSON made it a list).
    """
    config = copy.deepcopy(config)  # deserialising consumes dicts
    for name in names:
        if name in config:
            config[name] = keras.saving.deserialize_keras_object(config[name])
    if config.get("input_shape") is not None:
        config["input_shape"] = tuple(config["input_shape"])
    return config
