"""Imports every module and documented name of keras_compattr first.

Run as `python import_orders.py FIRST [FIRST ...]` in a fresh process with
`KERAS_BACKEND` set (`tests/test_imports.py`). The first target of the
list is imported before and without Keras, as a user's first line; then,
for every module of the package and every name of the API pages, the
package is dropped from `sys.modules` and that target is imported first
again, followed by every public subpackage. An import cycle shows as an
`ImportError` whichever module enters it. Prints one JSON line:
`{"failures": {target: error}, "targets": count}`.
"""

import contextlib
import importlib
import json
import pathlib
import re
import sys
import traceback

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
PACKAGE = ROOT / "keras_compattr"


def modules():
    """Every module of the package, by its import path."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__":  # runs the command line
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found.append(".".join(parts))
    return found


def documented():
    """The `::: path` names of the API pages."""
    names = []
    for page in sorted((ROOT / "docs" / "api").glob("*.md")):
        names += re.findall(r"^::: (\S+)$", page.read_text(), re.M)
    return names


def load(target):
    """Imports `target`: a module, or a name of a module."""
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError:
        module_name, _, name = target.rpartition(".")
        return getattr(importlib.import_module(module_name), name)


def forget_package():
    for name in list(sys.modules):
        if name == "keras_compattr" or name.startswith("keras_compattr."):
            del sys.modules[name]


def skip_dataset_registration():
    # A module defined again re-registers its TFDS builder, which TFDS
    # refuses; the first definition stays registered.
    if "tensorflow_datasets" not in sys.modules:
        return contextlib.nullcontext()
    from tensorflow_datasets.core import registered

    return registered.skip_registration()


def main(firsts):
    failures = {}
    if "keras" in sys.modules:
        failures["<start>"] = "keras was imported before the first target"
    targets = list(firsts) + modules() + documented()
    for target in targets:
        forget_package()
        try:
            with skip_dataset_registration():
                load(target)
                import keras_compattr

                for name in reversed(keras_compattr._SUBMODULES):
                    getattr(keras_compattr, name)
        except Exception:
            failures[target] = traceback.format_exc(limit=-3)
    print(json.dumps({"failures": failures, "targets": len(targets)}))


if __name__ == "__main__":
    main(sys.argv[1:])
