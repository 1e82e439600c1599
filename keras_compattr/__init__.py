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

# The subpackages that define Keras serialisables are imported now: their
# classes are defined under the export decorator of
# `keras_compattr.api_export`, which registers them with Keras, so that
# after `import keras_compattr` a plain `keras.saving.load_model` reads a
# saved model. This imports Keras (and its backend), also for the command
# line's `--help`, where TensorFlow's start-up lines are silenced.
_REGISTERING = (
    "callbacks",  # BackupAndRestore, TerminateOnNaN, FirstStepNotice
    "explainers",  # GradCAM, Saliency, IntegratedGradients, RISE, LearnedMask
    "layers",  # MaskHead, ImagePreprocessing, RandomCellMask
    "losses",  # the COMET objective and its terms, AreaMultiplier
    "metrics",  # pxap(), coverage(), deletion_auc(), ... and PxAP, Coverage
    "models",  # builders, adapters, GroupedOptimizer, load_model()
    "training",  # train_classifier(), train_comet(), WarmupStepDecay
    "visualization",  # plot_explanations(), ExplanationMonitor, ...
)
with _environment.command_line_start_up():
    for _name in _REGISTERING:
        _importlib.import_module(f"{__name__}.{_name}")

from keras_compattr.models.comprehensive_attribution_model import (  # noqa: E402
    ComprehensiveAttributionModel,
)

# The others, imported on first use (PEP 562): they define no serialisable
# and some import more (TensorFlow Datasets, multi-host JAX).
_LAZY = (
    "datasets",  # synthetic(), load(), as_dataset()
    "distributed",  # initialize() for multi-host training on JAX
    "evaluation",  # evaluate_explanations(), run_benchmark(), run_demo()
)
_SUBMODULES = tuple(sorted(_REGISTERING + _LAZY))

__all__ = ["ComprehensiveAttributionModel", "__version__", *_SUBMODULES]


def __getattr__(name):
    if name in _LAZY:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
