"""keras_compattr: inherently explainable image classification (COMET).

Example:

```python
import keras_compattr as kca

# The detector: a classifier trained on full images (train it first; see
# `kca.ComprehensiveAttributionModel` for the whole recipe).
detector = kca.models.build_classifier((32, 32, 3), 4, widths=(4, 8))
model = kca.ComprehensiveAttributionModel(detector=detector)
```
"""

# First: process settings that must precede TensorFlow's import.
from keras_compattr import _environment

_environment.configure()

import importlib as _importlib  # noqa: E402

from keras_compattr import _registration  # noqa: E402
from keras_compattr.version import __version__  # noqa: E402

# Imported on first use (PEP 562), so that `import keras_compattr` and the
# command line's help do not import Keras and TensorFlow.
_SUBMODULES = (
    "callbacks",
    "datasets",
    "explainers",
    "layers",
    "losses",
    "metrics",
    "models",
)
_ATTRIBUTES = {"ComprehensiveAttributionModel": "models"}


def __getattr__(name):
    if name in _SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    if name in _ATTRIBUTES:
        module = _importlib.import_module(f"{__name__}.{_ATTRIBUTES[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES) | set(_ATTRIBUTES))


# `keras.saving.load_model` must find the package's classes after a bare
# `import keras_compattr`, as it did when this file imported everything.
_registration.register_when_keras_is_imported()
