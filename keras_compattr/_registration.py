"""Registers the Keras serialisables once Keras is imported.

`import keras_compattr` does not import Keras (the command line must start
fast), yet `keras.saving.load_model("comet.keras")` after it must find
`ComprehensiveAttributionModel` and the other registered classes, as it did
when the package imported everything. This module imports no Keras: it
registers at once when Keras is already imported, and otherwise right after
the first `import keras`, through an import hook that removes itself.
"""

import importlib
import importlib.abc
import importlib.util
import sys

# The submodules whose import registers the serialisable classes: each is
# defined under `keras_compattr.api_export.keras_compattr_export`, which
# registers it (tests/test_api.py checks that this list covers them all).
REGISTERING_MODULES = (
    "keras_compattr.layers",
    "keras_compattr.losses",
    "keras_compattr.metrics",
    "keras_compattr.models",
    "keras_compattr.training",
)


def register():
    """Imports the registering submodules (which import Keras)."""
    for name in REGISTERING_MODULES:
        importlib.import_module(name)


class _AfterKeras(importlib.abc.MetaPathFinder):
    """Finds `keras` as usual, and registers once it has executed."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        _remove_hook()
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        # Leave no trace: Keras' module keeps its own loader.
        module.__loader__ = module.__spec__.loader = self.loader
        register()

    def __getattr__(self, name):
        # `get_resource_reader`, `is_package`, ...: the real loader's.
        return getattr(self.loader, name)


_HOOK = _AfterKeras()


def _remove_hook():
    if _HOOK in sys.meta_path:
        sys.meta_path.remove(_HOOK)


def register_when_keras_is_imported():
    """Registers now if Keras is imported, else after its first import."""
    if "keras" in sys.modules:
        register()
    elif _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)
