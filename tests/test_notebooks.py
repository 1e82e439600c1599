"""The committed notebooks: current with their scripts, linked to Colab, and
running end to end in a fresh kernel against the built wheel.

`test_notebooks_run_against_the_wheel` installs keras_compattr the way
Colab does: a fresh virtual environment whose frameworks are already there
(this environment's packages, minus keras_compattr, play Colab's
preinstalled TensorFlow, Keras and friends), then each notebook's own
install cell pip-installs the wheel that `tests/test_release.py` builds,
with the index switched off, so a dependency the runtime lacks or a
framework pip would replace fails the test instead of being downloaded.
"""

import importlib.util
import json
import os
import site
import subprocess
import sys
import time

import pytest

from tests.test_release import build_distributions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")
# Seconds one cell may run (the tiny budget needs far less).
CELL_TIMEOUT = 900


def _generator():
    path = os.path.join(ROOT, "examples", "make_notebooks.py")
    spec = importlib.util.spec_from_file_location("make_notebooks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_notebooks = _generator()
NAMES = [
    os.path.splitext(os.path.basename(p))[0] for p in make_notebooks.scripts()
]


def test_committed_notebooks_are_current():
    stale = make_notebooks.stale(NOTEBOOKS, make_notebooks.PIP_SPEC)
    assert not stale, (
        f"notebooks/ is out of date with examples/ for {stale}: run "
        "`python examples/make_notebooks.py` and commit notebooks/"
    )


def test_committed_notebooks_have_no_outputs():
    for name in NAMES:
        with open(os.path.join(NOTEBOOKS, name + ".ipynb")) as f:
            notebook = json.load(f)
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [], name
                assert cell["execution_count"] is None, name


def _install_source(name="quickstart"):
    with open(os.path.join(NOTEBOOKS, name + ".ipynb")) as f:
        return "".join(json.load(f)["cells"][1]["source"])


def _sources(install):
    """The list of what the install cell tries, in order."""
    line = next(
        line for line in install.splitlines() if line.startswith("for source")
    )
    return json.loads(line[len("for source in ") : -1])


def test_install_cell_installs_the_published_package_by_default():
    install = _install_source()
    # The package index first, then the repository (before a release).
    assert _sources(install) == [
        "keras-compattr",
        f"git+{make_notebooks.repository_url()}",
    ]
    for framework in ("tensorflow", "keras", "jax", "numpy"):
        assert f'"{framework}"' in install
    # No `!pip`, whose failure a notebook does not notice.
    assert "!pip" not in install and "raise RuntimeError" in install


def _run_install_cell(install, tmp_path, monkeypatch, results):
    """Runs the cell's Python with pip replaced; returns pip's commands."""
    calls = []

    def run(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(
            command, results[len(calls) - 1], "", f"ERROR: failure {len(calls)}"
        )

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(subprocess, "run", run)
    exec(compile(install, "install_cell", "exec"), {})
    return calls


def test_install_cell_falls_back_to_the_repository_and_fails_loudly(
    tmp_path, monkeypatch, capsys
):
    install = _install_source()
    calls = _run_install_cell(install, tmp_path, monkeypatch, [1, 0])
    assert [c[c.index("install") + 2] for c in calls] == _sources(install)
    assert calls[0][:4] == [sys.executable, "-m", "pip", "install"]
    assert calls[0][-2:] == ["-c", "constraints.txt"]
    assert "Installed git+" in capsys.readouterr().out
    assert (tmp_path / "constraints.txt").read_text().count("==") >= 2
    with pytest.raises(RuntimeError, match="failure 1(.|\n)*failure 2"):
        _run_install_cell(install, tmp_path, monkeypatch, [1, 1])


def test_install_cell_can_install_a_wheel_or_a_fork(monkeypatch):
    with open(make_notebooks.scripts()[0]) as f:
        source = f.read()

    def sources(**kwargs):
        notebook = make_notebooks.script_to_notebook(source, "x", **kwargs)
        return _sources("".join(notebook["cells"][1]["source"]))

    fork = "git+https://github.com/me/keras-compattr@my-branch"
    monkeypatch.setenv(make_notebooks.PIP_SPEC_VARIABLE, fork)
    assert sources() == [fork]
    assert sources(pip_spec="dist/k.whl") == ["dist/k.whl"]
    monkeypatch.delenv(make_notebooks.PIP_SPEC_VARIABLE)
    assert sources()[0] == "keras-compattr"


def test_extra_requirements_come_from_the_script_header():
    install = _install_source("pets_keras_hub")
    assert '"-q", source, "keras-hub",' in install


def test_library_figures_show_as_png_in_a_fresh_kernel():
    pytest.importorskip("nbclient", reason="needs the [test] extra")
    pytest.importorskip("ipykernel", reason="needs the [test] extra")
    import nbclient
    import nbformat

    # A bare matplotlib Figure shows as text without `%matplotlib inline`;
    # the library's figures must show as images, returned or displayed.
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "import keras_compattr\n"
                "import keras\n\n"
                "from keras_compattr.visualization import plot_history\n"
                "plot_history({'loss': [1.0, 0.5], 'accuracy': [0.5, 0.9]})"
            ),
            nbformat.v4.new_code_cell(
                "from IPython.display import display\n"
                "display(plot_history({'loss': [1.0, 0.5]}))"
            ),
        ]
    )
    nbclient.NotebookClient(notebook, timeout=300).execute()
    for cell in notebook.cells:
        kinds = [set(o.get("data", {})) for o in cell.outputs]
        assert any("image/png" in k for k in kinds), cell.outputs


def test_quickstart_notebook_shows_its_figure(tmp_path):
    pytest.importorskip("nbclient", reason="needs the [test] extra")
    pytest.importorskip("ipykernel", reason="needs the [test] extra")
    import nbclient
    import nbformat

    notebook = nbformat.read(
        os.path.join(NOTEBOOKS, "quickstart.ipynb"), as_version=4
    )
    # keras_compattr is installed here: the install cell is skipped.
    notebook.cells[1].source = "pass"
    notebook.cells.insert(
        2,
        nbformat.v4.new_code_cell(
            'import os\nos.environ["KERAS_COMPATTR_EXAMPLE_BUDGET"] = "tiny"'
        ),
    )
    nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    images = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert images, "the quick-start notebook shows no figure"
    assert (tmp_path / "quickstart_explanations.png").exists()


def test_readme_and_docs_open_every_notebook_in_colab():
    for page in ("README.md", os.path.join("docs", "examples.md")):
        with open(os.path.join(ROOT, page)) as f:
            text = f.read()
        for name in NAMES:
            assert make_notebooks.colab_url(name) in text, (page, name)


def test_check_option_reports_a_stale_notebook(tmp_path):
    assert make_notebooks.main(["--output", str(tmp_path)]) == 0
    assert make_notebooks.main(["--output", str(tmp_path), "--check"]) == 0
    path = tmp_path / "quickstart.ipynb"
    path.write_text(path.read_text().replace("Quick start", "Quick stat"))
    assert make_notebooks.main(["--output", str(tmp_path), "--check"]) == 1


def _preinstalled_layer(directory):
    """This environment's packages, minus keras_compattr, as symlinks.

    It plays the frameworks a Colab runtime comes with. keras_compattr
    itself (an editable install here) is left out, so the notebooks can
    only import it from the wheel.
    """
    os.makedirs(directory)
    for packages in site.getsitepackages():
        for entry in os.listdir(packages):
            lowered = entry.lower()
            if lowered.startswith(("keras_compattr", "__editable__")):
                continue
            if lowered.endswith(".pth") or entry == "__pycache__":
                continue
            target = os.path.join(directory, entry)
            if not os.path.lexists(target):
                os.symlink(os.path.join(packages, entry), target)
    return directory


_DRIVER = r"""
import json, os, sys, time
import nbclient, nbformat

results = {}
for path, workdir in zip(sys.argv[2::2], sys.argv[3::2]):
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(
        "import sys, keras_compattr\n"
        "print('WHERE', sys.prefix, keras_compattr.__file__)"
    ))
    start = time.perf_counter()
    error = None
    try:
        nbclient.NotebookClient(
            notebook, timeout=int(sys.argv[1]), kernel_name="python3",
            resources={"metadata": {"path": workdir}},
        ).execute()
    except Exception as e:
        error = f"{type(e).__name__}: {e}"[-6000:]
    outputs = notebook.cells[-1].get("outputs", [])
    where = "".join(o.get("text", "") for o in outputs).split()
    results[os.path.basename(path)] = {
        "seconds": time.perf_counter() - start,
        "error": error,
        "where": where[1:3] if where[:1] == ["WHERE"] else None,
    }
    nbformat.write(notebook, os.path.join(workdir, "executed.ipynb"))
print(json.dumps(results))
"""


@pytest.mark.large
def test_notebooks_run_against_the_wheel(tmp_path):
    pytest.importorskip("nbclient", reason="needs the [test] extra")
    pytest.importorskip("ipykernel", reason="needs the [test] extra")
    pytest.importorskip("build", reason="needs the [test] extra")
    start = time.perf_counter()
    _, wheel, build_seconds = build_distributions(str(tmp_path / "release"))

    # A fresh environment over the "preinstalled" frameworks.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    purelib = subprocess.run(
        [
            python,
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    layer = _preinstalled_layer(str(tmp_path / "preinstalled"))
    with open(os.path.join(purelib, "preinstalled.pth"), "w") as f:
        f.write(layer + "\n")
    # The kernel runs in that environment, whatever kernels the user has.
    kernels = tmp_path / "jupyter" / "kernels" / "python3"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [python, "-m", "ipykernel_launcher", "-f"]
                + ["{connection_file}"],
                "display_name": "Python 3 (wheel)",
                "language": "python",
            }
        )
    )

    # The notebooks as committed, installing the wheel instead.
    notebooks = make_notebooks.generate(pip_spec=wheel)
    arguments = []
    for name, text in notebooks.items():
        workdir = tmp_path / "run" / name[: -len(".ipynb")]
        workdir.mkdir(parents=True)
        (workdir / name).write_text(text)
        arguments += [str(workdir / name), str(workdir)]
    env = dict(
        os.environ,
        JUPYTER_PATH=str(tmp_path / "jupyter"),
        # `!pip` in a cell runs the first pip on PATH: the environment's.
        PATH=str(venv / "bin") + os.pathsep + os.environ.get("PATH", ""),
        VIRTUAL_ENV=str(venv),
        KERAS_COMPATTR_EXAMPLE_BUDGET="tiny",
        PIP_NO_INDEX="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PYTHONNOUSERSITE="1",
    )
    env.pop("KERAS_COMPATTR_PIP_SPEC", None)
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [python, "-c", _DRIVER, str(CELL_TIMEOUT)] + arguments,
        env=env,
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    results = json.loads(result.stdout.strip().split("\n")[-1])
    timing = ", ".join(f"{n} {r['seconds']:.0f} s" for n, r in results.items())
    print(
        f"build {build_seconds:.0f} s; {timing}; "
        f"total {time.perf_counter() - start:.0f} s"
    )
    assert set(results) == set(notebooks)
    for name, outcome in results.items():
        assert outcome["error"] is None, f"{name}: {outcome['error']}"
        executed = tmp_path / "run" / name[: -len(".ipynb")] / "executed.ipynb"
        outputs = [
            output
            for cell in json.loads(executed.read_text())["cells"]
            for output in cell.get("outputs", [])
        ]
        assert any("image/png" in o.get("data", {}) for o in outputs), name
        prefix, module = outcome["where"]
        assert os.path.realpath(prefix) == os.path.realpath(venv), name
        assert os.path.realpath(module).startswith(os.path.realpath(purelib)), (
            f"{name} imported keras_compattr from {module}, not the wheel"
        )
