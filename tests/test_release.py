"""The release: a clean copy of the tree builds a wheel and an sdist that
pass `twine check`, with complete metadata, and the sdist holds what the
tests, the docs and the tutorials need (see RELEASING.md).

`build_distributions` is also used by `tests/test_notebooks.py`, which runs
the notebooks against the wheel built here.
"""

import configparser
import email
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Folders the sdist must carry whole: the tests, the docs site, the
# tutorials and their notebooks, the benchmark the docs cite.
SDIST_FOLDERS = ("tests", "docs", "examples", "notebooks", "benchmarks")
SDIST_FILES = (
    "LICENSE",
    "README.md",
    "CHANGELOG.md",
    "RELEASING.md",
    "mkdocs.yml",
    "setup.cfg",
    "pyproject.toml",
)
_IGNORED = (
    ".git",
    ".venv",
    "build",
    "dist",
    "site",
    "__pycache__",
    "*.egg-info",
    "*.pyc",
    "*.keras",
    ".pytest_cache",
    ".hypothesis",
)


def source_files(root=ROOT):
    """Paths (relative to `root`) a clean clone of the tree would hold.

    Tracked files plus new files git does not ignore, so that work not yet
    committed is built as it stands; without git, the tree minus build
    outputs.
    """
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others"]
            + ["--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        listing = None
    if listing is not None:
        paths = [p for p in listing.split("\0") if p]
        return sorted(p for p in paths if os.path.isfile(os.path.join(root, p)))
    paths = []
    ignore = shutil.ignore_patterns(*_IGNORED)
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in ignore(folder, dirs)]
        for name in set(files) - ignore(folder, files):
            path = os.path.join(folder, name)
            paths.append(os.path.relpath(path, root))
    return sorted(paths)


def build_distributions(directory):
    """Builds the sdist, then the wheel from the sdist, from a clean copy.

    The wheel is built from the unpacked sdist (`python -m build`'s
    default), so a file the package needs but the sdist lacks fails here.
    The build runs without isolation, on this environment's setuptools, so
    it needs no network.

    Args:
        directory: an empty folder; gets `src/` (the copy) and `dist/`.

    Returns:
        `(sdist_path, wheel_path, seconds)`.
    """
    source = os.path.join(directory, "src")
    for relative in source_files():
        target = os.path.join(source, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, relative), target)
    dist = os.path.join(directory, "dist")
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation"]
        + ["--outdir", dist, source],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    names = sorted(os.listdir(dist))
    sdists = [n for n in names if n.endswith(".tar.gz")]
    wheels = [n for n in names if n.endswith(".whl")]
    assert len(sdists) == 1 and len(wheels) == 1, names
    return (
        os.path.join(dist, sdists[0]),
        os.path.join(dist, wheels[0]),
        seconds,
    )


def project_url():
    """The repository URL, written once in setup.cfg (`[metadata] url`)."""
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    return config["metadata"]["url"]


def _version():
    scope = {}
    with open(os.path.join(ROOT, "keras_compattr", "version.py")) as f:
        exec(f.read(), scope)
    return scope["__version__"]


@pytest.fixture(scope="module")
def distributions(tmp_path_factory):
    pytest.importorskip("build", reason="needs the [release] extra")
    return build_distributions(str(tmp_path_factory.mktemp("release")))


def test_twine_check_passes(distributions):
    pytest.importorskip("twine", reason="needs the [release] extra")
    sdist, wheel, _ = distributions
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", sdist, wheel],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_wheel_metadata_is_complete(distributions):
    _, wheel, _ = distributions
    version = _version()
    assert os.path.basename(wheel) == (
        f"keras_compattr-{version}-py3-none-any.whl"
    )
    with zipfile.ZipFile(wheel) as archive:
        info = f"keras_compattr-{version}.dist-info"
        metadata = email.message_from_bytes(archive.read(f"{info}/METADATA"))
        names = archive.namelist()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    assert metadata["Name"] == "keras-compattr"
    assert metadata["Version"] == version
    assert metadata["Requires-Python"] == ">=3.10"
    assert metadata["License"] == "Apache-2.0"
    assert metadata["License-File"] == "LICENSE"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names) or (
        f"{info}/LICENSE" in names
    )
    assert metadata["Description-Content-Type"] == "text/markdown"
    with open(os.path.join(ROOT, "README.md")) as f:
        assert metadata.get_payload().strip() == f.read().strip()
    urls = dict(
        value.split(", ", 1) for value in metadata.get_all("Project-URL")
    )
    assert urls["Source"] == project_url()
    assert {"Documentation", "Changelog", "Issues"} <= set(urls)
    classifiers = metadata.get_all("Classifier")
    assert any(c.startswith("Development Status") for c in classifiers)
    assert "Programming Language :: Python :: 3" in classifiers
    trove = pytest.importorskip("trove_classifiers")
    unknown = set(classifiers) - set(trove.classifiers)
    assert not unknown, f"not PyPI classifiers (upload would fail): {unknown}"
    assert "keras-compattr = keras_compattr.cli" in entry_points
    # Runtime dependencies only: no test or release tools.
    runtime = [
        r for r in metadata.get_all("Requires-Dist") if "extra ==" not in r
    ]
    assert not any(
        r.split(">")[0].split("=")[0].strip() in ("pytest", "build", "twine")
        for r in runtime
    ), runtime


def test_wheel_holds_the_package_and_nothing_else(distributions):
    _, wheel, _ = distributions
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    package = {p for p in source_files() if p.startswith("keras_compattr/")}
    assert package, "no package files found"
    assert package <= names, sorted(package - names)
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {
        "keras_compattr"
    }


def test_sdist_holds_tests_docs_and_tutorials(distributions):
    sdist, _, _ = distributions
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    prefix = names[0].split("/")[0] + "/"
    inside = {n[len(prefix) :] for n in names if n.startswith(prefix)}
    for relative in SDIST_FILES:
        assert relative in inside, relative
    wanted = [p for p in source_files() if p.split("/")[0] in SDIST_FOLDERS]
    assert any(p.startswith("notebooks/") for p in wanted)
    missing = [p for p in wanted if p not in inside]
    assert not missing, f"the sdist lacks {missing[:10]}"
    assert not [n for n in inside if n.endswith((".pyc", ".keras"))]


def test_version_has_one_source():
    config = configparser.ConfigParser(interpolation=None)
    config.read(os.path.join(ROOT, "setup.cfg"))
    assert config["metadata"]["version"] == (
        "attr: keras_compattr.version.__version__"
    )
    with open(os.path.join(ROOT, "CHANGELOG.md")) as f:
        assert f"## [{_version()}]" in f.read()
