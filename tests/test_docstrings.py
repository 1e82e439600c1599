"""Every example in the docstrings runs, on tiny shapes.

Fenced ```python blocks and `>>>` doctests of every public module, class,
function and method of `keras_compattr` are collected; each example runs in
a fresh namespace, so examples must import what they use. An example that
needs a download or pretrained weights says so with the comment
`# doctest: offline-skip` and is skipped; one that takes minutes says
`# doctest: large` and runs with `--run-large`.
"""

import doctest
import importlib
import inspect
import pkgutil
import re

import pytest

import keras_compattr

SKIP_MARKER = "# doctest: offline-skip"
LARGE_MARKER = "# doctest: large"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def _modules():
    names = [keras_compattr.__name__]
    for info in pkgutil.walk_packages(
        keras_compattr.__path__, keras_compattr.__name__ + "."
    ):
        if not info.name.endswith(".__main__"):  # runs the CLI on import
            names.append(info.name)
    return sorted(names)


def _public_members(module):
    """`(qualified name, object)` of what `module` defines publicly."""
    yield module.__name__, module
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or getattr(obj, "__module__", None) != (
            module.__name__
        ):
            continue
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        yield f"{module.__name__}.{name}", obj
        if inspect.isclass(obj):
            for attr, member in sorted(vars(obj).items()):
                if attr.startswith("_"):
                    continue
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if isinstance(member, property):
                    member = member.fget
                if inspect.isfunction(member):
                    yield f"{module.__name__}.{name}.{attr}", member


def _examples():
    """`(test id, kind, source)` for every docstring example."""
    found = []
    seen = set()
    parser = doctest.DocTestParser()
    for module_name in _modules():
        module = importlib.import_module(module_name)
        for qualname, obj in _public_members(module):
            docstring = inspect.getdoc(obj)
            if not docstring or id(obj) in seen:
                continue
            seen.add(id(obj))
            blocks = [("fenced", m.group(1)) for m in FENCE.finditer(docstring)]
            if parser.get_examples(docstring):
                blocks.append(("doctest", docstring))
            for index, (kind, source) in enumerate(blocks):
                found.append((f"{qualname}[{index}]", kind, source))
    return found


EXAMPLES = _examples()


def test_examples_were_found():
    assert len(EXAMPLES) >= 20


@pytest.mark.parametrize(
    "kind, source",
    [
        pytest.param(
            kind,
            source,
            id=name,
            marks=[pytest.mark.large] if LARGE_MARKER in source else [],
        )
        for name, kind, source in EXAMPLES
    ],
)
def test_docstring_example(kind, source, tmp_path, monkeypatch):
    if SKIP_MARKER in source:
        pytest.skip("needs a download or pretrained weights")
    # Examples that write files write them into a temporary folder.
    monkeypatch.chdir(tmp_path)
    if kind == "fenced":
        exec(compile(source, "<docstring example>", "exec"), {})
        return
    test = doctest.DocTestParser().get_doctest(source, {}, "docstring", None, 0)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    output = []
    runner.run(test, out=output.append)
    assert runner.failures == 0, "".join(output)
