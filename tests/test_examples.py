"""Every example script runs end to end with a tiny budget.

`make_notebooks.py` is no example: `tests/test_notebooks.py` tests it.
`quickstart.py` runs there too, as its notebook (the same cells, checked
current) in a fresh kernel, with its figure checked; it runs here with
`--run-large`. So do the three examples of `LARGE` (50 to 100 s each on 2
loaded cores, most of it tracing a MobileNetV3 or a KerasHub backbone):
what they call is tested in the default run (`test_learned_mask.py`,
`test_backbones.py`, `test_learning.py`, the demo's command line).
"""

import glob
import os
import subprocess
import sys

import keras
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LARGE = (
    "quickstart.py",
    "explain_existing_classifier.py",
    "incompleteness_interlocking.py",
    "pets_keras_hub.py",
)
EXAMPLES = [
    pytest.param(path, marks=pytest.mark.large)
    if os.path.basename(path) in LARGE
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
