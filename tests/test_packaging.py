"""A normal (non-editable) install ships everything the CLI reads: the search spaces and the seed's points."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What the Dockerfile copies before `pip install .`: a build from these alone must be complete.
BUILD_INPUTS = ("setup.cfg", "pyproject.toml", "README.md", "tuner_app", "search_spaces")
# Run as `python -m tuner_app.cli ARGS...`, after checking the import came from TARGET (argv[1]):
# the editable install's finder must not be what answered.
LAUNCH = ("import runpy, sys, tuner_app; from pathlib import Path; "
          "assert Path(tuner_app.__file__).resolve().is_relative_to(sys.argv[1]), tuner_app.__file__; "
          "sys.argv = ['tuner-app', *sys.argv[2:]]; runpy.run_module('tuner_app.cli', run_name='__main__')")


def _pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "--quiet", "--no-input", *args],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built offline from a copy of the build inputs (a build in place would leave build/ behind)."""
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(source))
    (built,) = out.glob("tuner_app-*.whl")
    return built


def test_the_build_inputs_are_what_the_dockerfile_copies():
    copied = [source for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")
              for source in line.split()[1:-1]]
    assert sorted(copied) == sorted(BUILD_INPUTS)


def test_the_wheel_holds_every_module_space_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    spaces = sorted(path.name for path in (ROOT / "search_spaces").glob("*.yaml"))
    assert "default.yaml" in spaces and "seed_2d.yaml" in spaces
    assert {f"tuner_app/search_spaces/{name}" for name in spaces} <= names
    assert "tuner_app/analysis/seed_reference.csv" in names
    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "tuner_app").rglob("*.py")}
    assert modules - names == set()  # no subpackage left out of setup.cfg's package list


def test_an_installed_wheel_finds_its_spaces_from_an_empty_directory(wheel, tmp_path):
    target, empty = tmp_path / "target", tmp_path / "empty"
    empty.mkdir()
    _pip("install", "--no-deps", "--target", str(target), str(wheel))
    env = {key: value for key, value in os.environ.items() if key != "TUNER_APP_SPACES"}
    env.update(PYTHONPATH=str(target), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", LAUNCH, str(target.resolve()), "search", "--space", "seed_2d",
                           "--dry-run", "--format", "json"],
                          cwd=empty, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout)
    params = [row["params"] for row in rows if not row["hyperparameters"]["batch_norm"]]
    assert params[:2] == [49_956_064, 50_472_672] and params[-2:] == [None, None]  # the seed's own counts
    assert list(empty.iterdir()) == []
