"""Every numeric option within its real range (issue 23, case 7: `--seed -1` ended a search in a numpy traceback):
refused by click before the command runs, in one line naming the option."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import cli_error_line

from tuner_app.cli import cli

SMOKE = str(Path(__file__).resolve().parent.parent / "search_spaces" / "smoke.yaml")
SEARCH = ["search", "--space", SMOKE, "--dry-run"]  # a dry run: the old code, given these numbers, ran


@pytest.mark.parametrize("args, option, problem", [
    ([*SEARCH, "--seed", "-1"], "--seed", "-1 is not in the range 0<=x<=4294967295"),
    ([*SEARCH, "--seed", str(2**32)], "--seed", "4294967296 is not in the range 0<=x<=4294967295"),
    ([*SEARCH, "--trials", "100001"], "--trials", "100001 is not in the range 1<=x<=100000"),
    ([*SEARCH, "--worker-timeout", "nan"], "--worker-timeout", "'nan' is not a number"),
    ([*SEARCH, "--worker-timeout", "inf"], "--worker-timeout", "inf is not in the range 1<=x<=604800"),
    (["data", "synth", "OUT", "--per-class", "1", "--seed", str(2**32)], "--seed", "4294967296 is not in the range"),
    (["data", "synth", "OUT", "--per-class", str(10**6)], "--per-class", "1000000 is not in the range"),
])
def test_a_number_out_of_its_options_range_is_refused_in_one_line(tmp_path, monkeypatch, args, option, problem):
    monkeypatch.chdir(tmp_path)  # nothing the command could start writes into the checkout
    line = cli_error_line(CliRunner().invoke(cli, args))
    assert line.startswith(f"Error: Invalid value for '{option}': {problem}")
    assert not any(tmp_path.iterdir())
