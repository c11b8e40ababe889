"""The package's layout: import-linter's contracts (setup.cfg) hold, and the README's layout table names
every module of the tree."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_imports_point_down_the_data_flow():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", "setup.cfg", "--no-cache"], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def _layout_table() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("## Layout", 1)[1].split("\n## ", 1)[0]


def test_readme_layout_names_every_module():
    table = _layout_table()
    modules = sorted(path.relative_to(ROOT).with_suffix("").as_posix() for path in (ROOT / "tuner_app").rglob("*.py")
                     if path.name != "__init__.py")
    missing = [name for name in modules if f"`{name.removeprefix('tuner_app/')}`" not in table
               and f"`{name.rsplit('/', 1)[-1]}`" not in table]
    assert not missing, f"README layout table misses {missing}"


def test_readme_layout_names_no_module_that_is_gone():
    named = re.findall(r"`tuner_app/(\w+)/`", _layout_table())
    assert named, "the layout table names the subpackages as `tuner_app/NAME/`"
    assert [name for name in named if not (ROOT / "tuner_app" / name).is_dir()] == []


def test_every_test_the_guarantees_name_exists():
    """docs/guarantees.md holds each guarantee to its tests: a renamed or deleted test must not leave it bare."""
    text = (ROOT / "docs" / "guarantees.md").read_text(encoding="utf-8")
    named, file = [], None
    for match in re.finditer(r"`(test_\w+\.py)?(?:::(test_\w+))?`", text):  # `file.py::test`, `file.py`, `::test`
        file = match.group(1) or file  # `::test` is of the file named last
        named.append((file, match.group(2)))
    assert len(named) > 20
    missing = [f"{file}::{test}" for file, test in named
               if not (ROOT / "tests" / file).is_file()
               or test and not re.search(rf"^def {test}\(", (ROOT / "tests" / file).read_text(), re.M)]
    assert missing == []
