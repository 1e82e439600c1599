"""Every public module and documented name imports first, on every backend.

Users start with any line: `from keras_compattr.losses import
CometObjective`, `import keras_compattr.visualization`, before or without
`import keras`. Each backend runs `tests/scripts/import_orders.py` in a
fresh process (one process has one backend): its first target is imported
before Keras, then every module of the package and every name of the API
pages is imported first once more, with the package dropped from
`sys.modules` in between (about 30 s a backend on 2 loaded cores).
"""

import ast
import pathlib

import pytest

from tests.helpers import run_script_in_fresh_process

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "keras_compattr"

# The first line of a user's program differs per backend, so that three
# entries are checked before Keras is imported.
FIRST = {
    "tensorflow": "keras_compattr.losses.CometObjective",
    "jax": "keras_compattr.layers.MaskHead",
    "torch": "keras_compattr.visualization",
}


@pytest.mark.parametrize("backend", sorted(FIRST))
def test_every_module_and_documented_name_imports_first(backend):
    result = run_script_in_fresh_process(
        "import_orders.py", backend, FIRST[backend]
    )
    assert result["failures"] == {}
    assert result["targets"] > 100


def _module_level_imports(path):
    tree = ast.parse(path.read_text())
    for node in tree.body:  # module level only: function bodies run later
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, [alias.name for alias in node.names]


def test_modules_import_names_from_where_they_are_defined():
    # A module that takes a name from a subpackage's `__init__`
    # (`from keras_compattr.losses import log_probabilities`) breaks when
    # that subpackage is being initialised: import from the defining
    # module. Importing a submodule (`from keras_compattr.utils import
    # images`) is fine.
    offending = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__main__.py":  # imported by no module
            continue
        own_package = path.parent if path.name == "__init__.py" else None
        for module, names in _module_level_imports(path):
            if not module.startswith("keras_compattr"):
                continue
            folder = ROOT.joinpath(*module.split("."))
            if not (folder / "__init__.py").exists() or folder == own_package:
                continue
            for name in names:
                submodule = folder / name
                if not (
                    submodule.with_suffix(".py").exists()
                    or (submodule / "__init__.py").exists()
                ):
                    offending.append(f"{path.relative_to(ROOT)}: {module}")
    assert offending == []
