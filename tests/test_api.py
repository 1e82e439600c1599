"""The public surface: exports, registration, and files saved before.

The public classes are defined under `keras_compattr_export`, which
registers the serialisable ones under `keras_compattr>ClassName`, the names
that files saved by earlier versions hold.
"""

import importlib
import inspect
import json
import os
import pathlib
import re
import shutil
import warnings

import keras
import numpy as np
import pytest

import keras_compattr as kca
from keras_compattr.api_export import EXPORTS
from keras_compattr.api_export import keras_compattr_export

PACKAGE_DIR = pathlib.Path(kca.__file__).parent
SAVED_BEFORE = pathlib.Path(__file__).parent / "data" / "saved_before"

# Public Layers that are not saved with models: run-time wrappers.
NOT_SERIALIZABLE = {"keras_compattr.evaluation.CompiledClassifier"}


def _import_public():
    for name in kca.__all__:
        getattr(kca, name)


def _public_names():
    """`(path, object)` for each name of a public package's `__all__`."""
    _import_public()
    for module_name in kca._SUBMODULES:
        module = importlib.import_module(f"keras_compattr.{module_name}")
        names = getattr(module, "__all__", None)
        if names is None:  # a module: what it defines publicly
            names = [
                n
                for n, obj in vars(module).items()
                if not n.startswith("_")
                and inspect.isclass(obj)
                and obj.__module__ == module.__name__
            ]
        for name in names:
            yield f"{module.__name__}.{name}", getattr(module, name)


def test_the_package_lists_what_a_user_needs():
    assert set(kca.__all__) <= set(dir(kca))
    for name in kca.__all__:
        assert getattr(kca, name) is not None
    assert kca.ComprehensiveAttributionModel is (
        kca.models.ComprehensiveAttributionModel
    )


def test_every_export_is_reachable_at_its_path():
    _import_public()
    assert len(EXPORTS) >= 10
    for path, symbol in EXPORTS.items():
        module_name, _, name = path.rpartition(".")
        module = importlib.import_module(module_name)
        assert getattr(module, name) is symbol, path
        if hasattr(module, "__all__"):
            assert name in module.__all__, path


def test_serialisable_public_classes_are_exported_and_registered():
    exported = {id(symbol) for symbol in EXPORTS.values()}
    for path, obj in _public_names():
        if not (inspect.isclass(obj) and hasattr(obj, "get_config")):
            continue
        if path in NOT_SERIALIZABLE:
            continue
        assert id(obj) in exported, f"{path} lacks @keras_compattr_export"
        name = keras.saving.get_registered_name(obj)
        assert name == f"keras_compattr>{obj.__name__}", path
        # `import keras; import keras_compattr` imports its module.
        assert any(
            obj.__module__ == f"keras_compattr.{m}"
            or obj.__module__.startswith(f"keras_compattr.{m}.")
            for m in kca._REGISTERING
        ), path


def test_registration_happens_in_one_place():
    sources = [
        str(path.relative_to(PACKAGE_DIR))
        for path in PACKAGE_DIR.rglob("*.py")
        if "register_keras_serializable(" in path.read_text()
    ]
    assert sources == ["api_export.py"]


def test_no_module_imports_another_modules_private_name():
    # A private module (`from keras_compattr import _environment`) may be
    # imported within the package; a private name of a module may not.
    pattern = re.compile(r"^\s*from (keras_compattr\S*) import (_[a-z]\w*)")
    offending = []
    for path in PACKAGE_DIR.rglob("*.py"):
        for line in path.read_text().splitlines():
            match = pattern.match(line)
            if match is None:
                continue
            package, name = match.groups()
            folder = PACKAGE_DIR.parent.joinpath(*package.split("."))
            if not (folder / f"{name}.py").exists():
                offending.append(f"{path.relative_to(PACKAGE_DIR)}: {line}")
    assert offending == []


def test_the_decorator_refuses_a_path_that_renames_the_class():
    with pytest.raises(ValueError, match="must end with"):

        @keras_compattr_export("keras_compattr.layers.Renamed")
        class Original:
            pass

    with pytest.raises(ValueError, match="under `keras_compattr.`"):
        keras_compattr_export("other_package.Original")


def test_no_deprecated_aliases_remain():
    # Nothing was released: an internal is reached at its home only.
    for name in ("resolve_networks", "lraspp_head", "ImagePreprocessing"):
        with pytest.raises(AttributeError):
            getattr(kca.models, name)


def _load_saved_before(name, tmp_path):
    # Stored as .zip so that packaging keeps them; Keras wants `.keras`.
    path = tmp_path / f"{name}.keras"
    shutil.copyfile(SAVED_BEFORE / f"{name}.zip", path)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*looks untrained")
        # `layers` was compiled, never trained: its optimizer had no state.
        warnings.filterwarnings("ignore", message="Skipping variable loading")
        return keras.saving.load_model(os.fspath(path))


def test_a_model_saved_before_the_export_decorator_still_loads(tmp_path):
    expected = np.load(SAVED_BEFORE / "outputs.npz")
    model = _load_saved_before("comet", tmp_path)
    assert isinstance(model, kca.ComprehensiveAttributionModel)
    assert isinstance(model.optimizer, kca.models.GroupedOptimizer)
    schedule = model.optimizer.selector_optimizer.get_config()
    assert (
        keras.saving.deserialize_keras_object(
            schedule["learning_rate"]
        ).get_config()
        == kca.training.WarmupStepDecay(1e-3, steps_per_epoch=5).get_config()
    )
    assert isinstance(model.area_control, kca.losses.AreaMultiplier)
    images = expected["images"]
    np.testing.assert_allclose(
        model.predict(images, verbose=0), expected["predictions"], atol=1e-5
    )
    np.testing.assert_allclose(
        model.explain(images, verbose=0), expected["masks"], atol=1e-5
    )

    layers_model = _load_saved_before("layers", tmp_path)
    kinds = {type(layer) for layer in layers_model.layers}
    assert {kca.layers.ImagePreprocessing, kca.layers.MaskHead} <= kinds
    compiled = json.dumps(layers_model.get_compile_config())
    assert "keras_compattr>PxAP" in compiled
    assert "keras_compattr>Coverage" in compiled
    np.testing.assert_allclose(
        layers_model.predict(images, verbose=0), expected["layers"], atol=1e-5
    )


def _documented():
    """The objects the API pages render (`::: path` lines)."""
    pages = pathlib.Path(__file__).parent.parent / "docs" / "api"
    found = set()
    for page in pages.glob("*.md"):
        found.update(re.findall(r"^::: (\S+)$", page.read_text(), re.M))
    return found


def _resolve(path):
    # As mkdocstrings does: `keras_compattr.metrics.robustness` is the
    # function the package exports, not the module of the same name.
    module_name, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        return importlib.import_module(path)


def test_the_api_pages_follow_the_public_names():
    # Every public class and function is on an API page (under any of its
    # public paths), and every object a page names exists.
    documented = {id(_resolve(path)) for path in _documented()}
    missing = sorted(
        path
        for path, obj in _public_names()
        if (inspect.isclass(obj) or inspect.isfunction(obj))
        and id(obj) not in documented
    )
    assert missing == []
