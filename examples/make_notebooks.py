"""Generates the Colab notebooks in `notebooks/` from the examples.

    python examples/make_notebooks.py            # writes notebooks/*.ipynb
    python examples/make_notebooks.py --check    # exit 1 if any is stale
    python examples/make_notebooks.py --output /tmp/nb \\
        --pip-spec dist/keras_compattr-0.1.0-py3-none-any.whl

The examples are the source; the notebooks are generated, committed
without outputs, and never edited by hand (`tests/test_notebooks.py` fails
when one differs from what its script gives). Each notebook starts with
its title and an "Open in Colab" badge, then a cell that installs
keras_compattr and one that picks the backend, then follows the script:
every triple-quoted text block becomes a Markdown cell and the code between
blocks a code cell, as keras-io's `tutobooks` does. jupytext is not used:
its Python formats read the keras-io text blocks as code.

The install cell has one source of truth, `PIP_SPEC` below: the published
package, or the repository when the package index has no release (the cell
raises, showing pip's errors, when neither installs). `--pip-spec` or the
environment variable `KERAS_COMPATTR_PIP_SPEC` replaces it (a wheel file,
`git+https://...@branch` of a fork, `-e .`), with no fallback.
It installs with a constraints file that pins the TensorFlow, Keras, JAX
and NumPy already installed, so on Colab pip adds keras_compattr around the
preinstalled frameworks and never replaces them (it fails instead, saying
which requirement conflicts). A script lists packages it needs beyond
keras_compattr in a `Requirements:` header line.

The repository URL of the badges and of the install fallback is read from
`setup.cfg` (`[metadata] url`), where it is written once.
"""

import argparse
import configparser
import glob
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NOTEBOOKS = os.path.join(ROOT, "notebooks")
# The published package: what a notebook installs unless told otherwise.
PIP_SPEC = "keras-compattr"
PIP_SPEC_VARIABLE = "KERAS_COMPATTR_PIP_SPEC"
BRANCH = "main"
# Installed frameworks that pip must keep (Colab preinstalls them, built
# against its CUDA; replacing them breaks the runtime).
KEEP = ("tensorflow", "keras", "tensorflow-text", "jax", "jaxlib", "numpy")
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
_BLOCK = re.compile(r'^"""\n(.*?)\n"""\n', re.S | re.M)


def repository_url():
    """The repository URL, from `setup.cfg`'s `[metadata] url`."""
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    return config["metadata"]["url"].rstrip("/")


def colab_url(name, repository=None):
    """The "Open in Colab" link of the committed notebook `name`.

    Args:
        name: str, the notebook's name without `.ipynb` (the script's).
        repository: str, the GitHub URL; default `repository_url()`.

    Returns:
        str, a colab.research.google.com URL.
    """
    repository = repository or repository_url()
    path = repository.split("://github.com/", 1)[-1]
    return (
        f"https://colab.research.google.com/github/{path}/blob/{BRANCH}/"
        f"notebooks/{name}.ipynb"
    )


def colab_badge(name, repository=None):
    """Markdown of the "Open in Colab" badge of notebook `name`."""
    url = colab_url(name, repository)
    return f"[![Open In Colab]({COLAB_BADGE})]({url})"


def install_cell(pip_spec=PIP_SPEC, requirements=(), repository=None):
    """The source of the first code cell, which installs keras_compattr.

    The cell runs pip in the kernel's own Python and raises when it fails,
    with pip's output, so that a notebook never goes on without the
    package. With the default `pip_spec` (the published package) it falls
    back to the repository, for versions not on PyPI yet.

    Args:
        pip_spec: str, what pip installs: a package name, a wheel or a URL.
        requirements: further packages the tutorial needs.
        repository: str, the GitHub URL installed when `pip_spec` is the
            published package and the package index has no release.

    Returns:
        str, the cell's code.
    """
    repository = repository or repository_url()
    keep = ", ".join(f'"{name}"' for name in KEEP)
    extra = "".join(f', "{name}"' for name in requirements)
    sources = [pip_spec]
    if pip_spec == PIP_SPEC:
        sources.append(f"git+{repository}")
    listed = ", ".join(f'"{source}"' for source in sources)
    return (
        "# Install keras_compattr around the TensorFlow, Keras, JAX and NumPy\n"
        "# this runtime already has: the constraints pin them, so pip never\n"
        "# replaces Colab's builds. Each source is tried in turn (the package\n"
        "# index, then the repository before a release); the cell raises,\n"
        "# with pip's output, when none installs.\n"
        "import subprocess\n"
        "import sys\n"
        "from importlib import metadata\n\n"
        'with open("constraints.txt", "w") as f:\n'
        f"    for name in ({keep}):\n"
        "        try:\n"
        '            f.write(f"{name}=={metadata.version(name)}\\n")\n'
        "        except metadata.PackageNotFoundError:\n"
        "            pass\n"
        "failures = []\n"
        f"for source in [{listed}]:\n"
        "    pip = subprocess.run(\n"
        '        [sys.executable, "-m", "pip", "install", "-q", source'
        f"{extra},\n"
        '         "-c", "constraints.txt"],\n'
        "        capture_output=True,\n"
        "        text=True,\n"
        "    )\n"
        "    if pip.returncode == 0:\n"
        '        print(f"Installed {source}")\n'
        "        break\n"
        '    failures.append(f"pip install {source}:\\n{pip.stderr.strip()}")\n'
        "else:\n"
        '    raise RuntimeError("keras_compattr is not installed.\\n" + '
        '"\\n".join(failures))'
    )


BACKEND = (
    "import os\n\n"
    '# "tensorflow", "jax" or "torch"; set before the first `import keras`.\n'
    'os.environ["KERAS_BACKEND"] = "tensorflow"'
)


def _cell(kind, text):
    lines = text.strip("\n").split("\n")
    source = [line + "\n" for line in lines[:-1]] + lines[-1:]
    cell = {"cell_type": kind, "metadata": {}, "source": source}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _header_fields(text):
    fields = dict(
        line.split(": ", 1) for line in text.strip().split("\n") if ": " in line
    )
    if "Title" not in fields:
        raise ValueError("The first text block must hold `Title: ...`.")
    return fields


def _header_cell(fields, badge):
    fields = dict(fields)
    lines = [f"# {fields.pop('Title')}", ""]
    if badge:
        lines += [badge, ""]
    for key, value in fields.items():
        lines.append(f"**{key}:** {value}<br>")
    return _cell("markdown", "\n".join(lines))


def script_to_notebook(source, name=None, pip_spec=None, repository=None):
    """Converts the text of a keras-io style script to a notebook dict.

    Args:
        source: str, the script.
        name: str, the notebook's name for its Colab badge; `None` leaves
            the badge out.
        pip_spec: str, what the install cell installs; `None` takes
            `KERAS_COMPATTR_PIP_SPEC` if set, else `PIP_SPEC`.
        repository: str, the GitHub URL; default `repository_url()`.

    Returns:
        A dict in the Jupyter notebook format 4.
    """
    if pip_spec is None:
        pip_spec = os.environ.get(PIP_SPEC_VARIABLE) or PIP_SPEC
    repository = repository or repository_url()
    blocks = list(_BLOCK.finditer(source))
    if not blocks or source[: blocks[0].start()].strip():
        raise ValueError("A script must start with its header text block.")
    fields = _header_fields(blocks[0].group(1))
    requirements = fields.get("Requirements", "").replace(",", " ").split()
    badge = colab_badge(name, repository) if name else None
    cells = [_header_cell(fields, badge)]
    cells += [
        _cell("code", install_cell(pip_spec, requirements, repository)),
        _cell("code", BACKEND),
    ]
    position = blocks[0].end()
    for block in blocks[1:] + [None]:
        end = len(source) if block is None else block.start()
        code = source[position:end].strip("\n")
        if code.strip():
            cells.append(_cell("code", code))
        if block is not None:
            cells.append(_cell("markdown", block.group(1)))
            position = block.end()
    metadata = {
        "colab": {"provenance": [], "toc_visible": True},
        "kernelspec": {
            "display_name": "Python 3",
            "language": "python",
            "name": "python3",
        },
        "language_info": {"name": "python"},
    }
    if fields.get("Accelerator", "").startswith("GPU"):
        metadata = {"accelerator": "GPU", **metadata}
    return {
        "cells": cells,
        "metadata": metadata,
        "nbformat": 4,
        "nbformat_minor": 0,
    }


def scripts():
    """The example scripts, sorted: every `examples/*.py` but this one."""
    paths = sorted(glob.glob(os.path.join(HERE, "*.py")))
    return [p for p in paths if os.path.basename(p) != "make_notebooks.py"]


def notebook_text(notebook):
    """The file text of a notebook dict, as written and committed."""
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def generate(pip_spec=None, repository=None):
    """`{name: notebook text}` for every example script.

    Args:
        pip_spec: as in `script_to_notebook`.
        repository: as in `script_to_notebook`.

    Returns:
        A dict from `NAME.ipynb` to its text.
    """
    notebooks = {}
    for script in scripts():
        name = os.path.splitext(os.path.basename(script))[0]
        with open(script) as f:
            notebook = script_to_notebook(
                f.read(), name, pip_spec=pip_spec, repository=repository
            )
        try:  # Validate when nbformat is installed (jupyter is not needed).
            import nbformat

            nbformat.validate(nbformat.reads(json.dumps(notebook), 4))
        except ImportError:
            pass
        notebooks[name + ".ipynb"] = notebook_text(notebook)
    return notebooks


def stale(folder=NOTEBOOKS, pip_spec=None):
    """Names of notebooks in `folder` that differ from their scripts.

    Missing notebooks, and notebooks without a script, count as stale.
    `pip_spec` is as in `script_to_notebook`.
    """
    expected = generate(pip_spec=pip_spec)
    present = set(glob.glob(os.path.join(folder, "*.ipynb")))
    names = sorted(set(expected) | {os.path.basename(p) for p in present})
    out = []
    for name in names:
        path = os.path.join(folder, name)
        if name not in expected or not os.path.exists(path):
            out.append(name)
            continue
        with open(path, encoding="utf-8") as f:
            if f.read() != expected[name]:
                out.append(name)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--output",
        default=NOTEBOOKS,
        help="folder of the notebooks (default: notebooks/)",
    )
    parser.add_argument(
        "--pip-spec",
        default=None,
        help=f"what the install cell installs (default: ${PIP_SPEC_VARIABLE}"
        f" if set, else {PIP_SPEC!r}); the committed notebooks use the "
        "default",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a notebook in --output is stale",
    )
    args = parser.parse_args(argv)
    if args.check:
        names = stale(args.output, args.pip_spec)
        for name in names:
            print(f"{os.path.join(args.output, name)}: out of date")
        if names:
            print("Run: python examples/make_notebooks.py")
        return 1 if names else 0
    os.makedirs(args.output, exist_ok=True)
    for name, text in generate(pip_spec=args.pip_spec).items():
        path = os.path.join(args.output, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"{path}: {len(json.loads(text)['cells'])} cells")
    return 0


if __name__ == "__main__":
    sys.exit(main())
