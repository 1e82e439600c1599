"""Griffe extension: fence `>>>` doctest blocks of docstrings as `pycon`.

The docstrings follow the Keras style, where an `Example:` heading is
followed by unindented doctest lines. Markdown would read `>>>` as nested
quotes; this wraps each run of `>>>` / `...` lines and their output in a
fenced `pycon` code block before mkdocstrings renders the docstring.
"""

import griffe


def fence_doctests(text):
    """Returns `text` with every doctest run wrapped in a ```pycon fence."""
    lines = text.split("\n")
    out = []
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.lstrip()
        if not stripped.startswith(">>>"):
            out.append(line)
            index += 1
            continue
        indent = line[: len(line) - len(stripped)]
        out.append(f"{indent}```pycon")
        while index < len(lines) and lines[index].strip():
            out.append(lines[index])
            index += 1
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fences doctest blocks in every docstring griffe loads."""

    def on_instance(self, *, node, obj, agent, **kwargs):
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
