"""The documentation site builds with warnings as errors; notebooks convert."""

import glob
import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None
    or importlib.util.find_spec("mkdocstrings_handlers") is None,
    reason="mkdocs and mkdocstrings are not installed: pip install -e .[docs]",
)
def test_docs_site_builds_strictly(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
         "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    # The API pages were generated from the docstrings.
    with open(tmp_path / "site" / "api" / "metrics" / "index.html") as f:
        page = f.read()
    assert "Pixel average precision" in page


def test_every_example_converts_to_a_notebook():
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        from make_notebooks import script_to_notebook
    finally:
        sys.path.pop(0)
    scripts = [
        path
        for path in sorted(glob.glob(os.path.join(ROOT, "examples", "*.py")))
        if not path.endswith("make_notebooks.py")
    ]
    assert len(scripts) >= 4
    for path in scripts:
        with open(path) as f:
            notebook = script_to_notebook(f.read())
        cells = notebook["cells"]
        assert cells[0]["cell_type"] == "markdown"
        assert cells[0]["source"][0].startswith("# ")
        assert '"pip", "install"' in "".join(cells[1]["source"])
        assert "KERAS_BACKEND" in "".join(cells[2]["source"])
        kinds = {cell["cell_type"] for cell in cells[3:]}
        assert kinds == {"markdown", "code"}, path
        # No text block leaked into a code cell (docstrings, indented, may).
        for cell in cells:
            if cell["cell_type"] == "code":
                lines = "".join(cell["source"]).split("\n")
                assert not any(line.startswith('"""') for line in lines), path
        json.dumps(notebook)
