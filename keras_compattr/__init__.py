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

from keras_compattr.version import __version__  # noqa: E402

# What a user needs, imported on first use (PEP 562), so that
# `import keras_compattr` and the command line's help do not import Keras
# and TensorFlow. Each subpackage is a plain module that imports what it
# uses: any of them may be imported first, before or without Keras. The
# public classes are defined under the export decorator of
# `keras_compattr.api_export`, which also registers the serialisable ones.
_SUBMODULES = (
    "callbacks",  # BackupAndRestore, TerminateOnNaN, FirstStepNotice
    "datasets",  # synthetic(), load(), as_dataset()
    "distributed",  # initialize() for multi-host training on JAX
    "evaluation",  # evaluate_explanations(), run_benchmark(), run_demo()
    "explainers",  # GradCAM, Saliency, IntegratedGradients, RISE, LearnedMask
    "layers",  # MaskHead, ImagePreprocessing
    "losses",  # the COMET objective and its terms, AreaMultiplier
    "metrics",  # pxap(), coverage(), deletion_auc(), ... and PxAP, Coverage
    "models",  # builders, adapters, GroupedOptimizer, load_model()
    "training",  # train_classifier(), train_comet(), WarmupStepDecay
    "visualization",  # plot_explanations(), ExplanationMonitor, ...
)
_ATTRIBUTES = {"ComprehensiveAttributionModel": "models"}

__all__ = ["ComprehensiveAttributionModel", "__version__", *_SUBMODULES]


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


# The subpackages that define Keras serialisables: importing one registers
# its classes (`keras_compattr.models.load_model` imports them all).
_REGISTERING = (
    "explainers",  # LearnedMask
    "layers",
    "losses",
    "metrics",
    "models",
    "training",
)
