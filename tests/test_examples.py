"""Every example script runs end to end with a tiny budget.

`make_notebooks.py` is no example: `tests/test_notebooks.py` tests it.
`quickstart.py` runs there too, as its notebook (the same cells, checked
current) in a fresh kernel, with its figure checked; it runs here with
`--run-large`.
"""

import glob
import os
import subprocess
import sys

import keras
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = [
    pytest.param(path, marks=pytest.mark.large)
    if os.path.basename(path) == "quickstart.py"
    else path
    for path in sorted(glob.glob(os.path.join(ROOT, "examples", "*.py")))
    if os.path.basename(path) != "make_notebooks.py"
]


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_example_runs(path, tmp_path):
    env = dict(
        os.environ,
        KERAS_BACKEND=keras.backend.backend(),
        KERAS_COMPATTR_EXAMPLE_BUDGET="tiny",
        TF_CPP_MIN_LOG_LEVEL="2",
        MPLBACKEND="Agg",
    )
    result = subprocess.run(
        [sys.executable, path],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert os.listdir(tmp_path), "the example wrote no figure"
