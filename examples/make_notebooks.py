"""Generates Colab notebooks (`.ipynb`) from the keras-io style examples.

    python examples/make_notebooks.py            # examples/*.ipynb
    python examples/make_notebooks.py --output notebooks

The examples are the source; the notebooks are generated and never edited
by hand (`examples/*.ipynb` is git-ignored). Each notebook starts with a
cell that installs keras_compattr and one that picks the backend, then
follows the script: every triple-quoted text block becomes a Markdown cell
and the code between blocks a code cell, as keras-io's `tutobooks` does.
jupytext is not used: its Python formats read the keras-io text blocks as
code.

With `KERAS_COMPATTR_EXAMPLE_BUDGET=tiny` (the test suite) the notebooks
go to the current folder instead.
"""

import argparse
import glob
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
INSTALL = (
    "# Install keras_compattr (from a clone: pip install -e .; from the\n"
    "# repository: pip install git+<repository URL>).\n"
    "!pip install -q keras-compattr"
)
BACKEND = (
    "import os\n\n"
    '# "tensorflow" or "jax"; set before the first `import keras`.\n'
    'os.environ["KERAS_BACKEND"] = "tensorflow"'
)
_BLOCK = re.compile(r'^"""\n(.*?)\n"""\n', re.S | re.M)


def _cell(kind, text):
    lines = text.strip("\n").split("\n")
    source = [line + "\n" for line in lines[:-1]] + lines[-1:]
    cell = {"cell_type": kind, "metadata": {}, "source": source}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _header_cell(text):
    fields = dict(
        line.split(": ", 1) for line in text.strip().split("\n") if ": " in line
    )
    if "Title" not in fields:
        raise ValueError("The first text block must hold `Title: ...`.")
    lines = [f"# {fields.pop('Title')}", ""]
    labels = {"Date created": "Date created", "Last modified": "Last modified"}
    for key, value in fields.items():
        lines.append(f"**{labels.get(key, key)}:** {value}<br>")
    return _cell("markdown", "\n".join(lines))


def script_to_notebook(source):
    """Converts the text of a keras-io style script to a notebook dict.

    Args:
        source: str, the script.

    Returns:
        A dict in the Jupyter notebook format 4.
    """
    blocks = list(_BLOCK.finditer(source))
    if not blocks or source[: blocks[0].start()].strip():
        raise ValueError("A script must start with its header text block.")
    cells = [_header_cell(blocks[0].group(1))]
    cells += [_cell("code", INSTALL), _cell("code", BACKEND)]
    position = blocks[0].end()
    for block in blocks[1:] + [None]:
        end = len(source) if block is None else block.start()
        code = source[position:end].strip("\n")
        if code.strip():
            cells.append(_cell("code", code))
        if block is not None:
            cells.append(_cell("markdown", block.group(1)))
            position = block.end()
    return {
        "cells": cells,
        "metadata": {
            "accelerator": "GPU",
            "colab": {"provenance": [], "toc_visible": True},
            "kernelspec": {
                "display_name": "Python 3",
                "language": "python",
                "name": "python3",
            },
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 0,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    tiny = os.environ.get("KERAS_COMPATTR_EXAMPLE_BUDGET") == "tiny"
    parser.add_argument(
        "--output",
        default=os.getcwd() if tiny else HERE,
        help="folder of the notebooks (default: examples/)",
    )
    args = parser.parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    scripts = sorted(glob.glob(os.path.join(HERE, "*.py")))
    for script in scripts:
        if os.path.abspath(script) == os.path.abspath(__file__):
            continue
        with open(script) as f:
            notebook = script_to_notebook(f.read())
        name = os.path.splitext(os.path.basename(script))[0] + ".ipynb"
        path = os.path.join(args.output, name)
        with open(path, "w") as f:
            json.dump(notebook, f, indent=1)
            f.write("\n")
        try:  # Validate when nbformat is installed (jupyter is not needed).
            import nbformat

            nbformat.validate(nbformat.reads(json.dumps(notebook), 4))
        except ImportError:
            pass
        print(f"{path}: {len(notebook['cells'])} cells")
    return 0


if __name__ == "__main__":
    sys.exit(main())
