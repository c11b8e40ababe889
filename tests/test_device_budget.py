"""Device costs known before training (device/costs.py) and the flash and RAM budget (device/budget.py): the
smoke space's four configurations convert, untrained, to int8 models of 2,072, 2,448, 3,592 and 3,976 bytes at
4 classes (one or two convs, with or without a Dense; a little more at 16), so --max-flash 3 keeps the one-conv
two."""

import io
import re

import pytest
from click.testing import CliRunner
from conftest import one_line_error, smoke_space, tone_splits

from tuner_app.cli import cli
from tuner_app.device import budget, costs
from tuner_app.model.architecture.configured import walk
from tuner_app.model.space import configurations, search_space
from tuner_app.search import progress, summary, run as search_run
from tuner_app.search.record import metric, search_front

FLASH_KB = 3  # between the one-conv (<= 2,448 bytes) and the two-conv (>= 3,592) configurations
N_CLASSES = 4  # tone_splits' classes


@pytest.fixture(scope="module")
def grid():
    space = smoke_space(name="grid")
    return space, configurations.configurations(space)


@pytest.fixture(scope="module")
def splits():
    return tone_splits()


def test_budget_options_are_kilobytes_of_1024_bytes():
    given = budget.of_options(25_000, 64, 0.5)
    assert given == budget.Budget(25_000, 65_536, 512)
    assert given.describe() == "--max-params 25,000, --max-flash 64 KB, --max-ram 0.5 KB"
    assert budget.of_options(max_flash_kb=41.6).describe() == "--max-flash 41.6 KB"  # 42,598 bytes, as given
    assert budget.Budget(25_000).on_device is False and given.on_device


def test_the_floors_from_the_walk_never_exceed_what_the_converted_model_costs(grid):
    space, every = grid
    for values in every:
        least, measured = budget.floors(walk(space, values, N_CLASSES)), costs.untrained(space, values, N_CLASSES)
        assert least["flash_bytes"] <= measured["flash_bytes"] and least["ram_bytes"] <= measured["ram_bytes"]
        assert measured["latency_ms"] > 0


def test_a_flash_budget_turns_away_the_configurations_whose_int8_model_is_larger(grid):
    space, every = grid
    verdicts = {values["conv_layers"]: budget.misfit(space, values, budget.of_options(max_flash_kb=FLASH_KB),
                                                      N_CLASSES)[1] for values in every}
    assert verdicts[1] is None
    assert verdicts[2].startswith("flash_bytes 3,") and verdicts[2].endswith(f"> --max-flash {FLASH_KB} KB")


def test_a_floor_over_the_budget_turns_a_configuration_away_without_converting_it(grid, monkeypatch):
    space, every = grid
    monkeypatch.setattr(costs, "untrained", lambda *args: pytest.fail("converted a configuration the walk rules out"))
    reason = budget.misfit(space, every[0], budget.Budget(ram_bytes=50_000), N_CLASSES)[1]
    assert reason == "ram_bytes at least 96,140 > --max-ram 48.828 KB"


def test_costs_are_measured_once_per_network_and_keep_the_random_streams(grid):
    import random

    import numpy as np

    space, every = grid
    state = random.getstate(), np.random.get_state()[1].copy()
    costs.untrained(space, {**every[0], "learning_rate": 0.5}, N_CLASSES)  # the same network: cached
    assert costs.built_key(space, every[0], N_CLASSES) in costs._measured
    assert random.getstate() == state[0] and (np.random.get_state()[1] == state[1]).all()


def test_a_budgeted_search_never_trains_a_configuration_over_its_budget(splits, tmp_path):
    stream = io.StringIO()
    tuner = search_run.run_search(smoke_space(name="grid", max_trials=4), splits, tmp_path,
                                  budget=budget.of_options(max_flash_kb=FLASH_KB), seed=0,
                                  observers=[progress.ProgressReporter(stream)])
    completed = [trial for trial in tuner.oracle.trials.values() if trial.status == "COMPLETED"]
    assert [trial.hyperparameters.values["conv_layers"] for trial in completed] == [1, 1]
    assert all(0 < metric(trial, "flash_bytes") <= FLASH_KB * 1024 for trial in completed)
    assert len(tuner.rejected) == 2 and all(f"--max-flash {FLASH_KB} KB" in entry["reason"] for entry in tuner.rejected)
    assert re.search(r"\[1/4\] trial 0: .* params, int8: flash 2\.\d KB, RAM 1\d\d\.\d KB", stream.getvalue())
    assert "flash_kb" in summary.format_trials(summary.summary_rows(tuner))


def test_a_budget_no_configuration_meets_is_one_line_before_anything_trains(splits, tmp_path):
    one_line_error(lambda: search_run.run_search(smoke_space(), splits, tmp_path,
                                                 budget=budget.of_options(max_ram_kb=1)),
                   "smoke.yaml", "no configuration fits --max-ram 1 KB", "ram_bytes at least")
    assert not list(tmp_path.iterdir())  # no project was made


def test_the_dry_run_shows_each_configurations_int8_flash_and_ram_against_the_budget():
    result = CliRunner().invoke(cli, ["search", "--space", "smoke", "--dry-run", "--max-flash", str(FLASH_KB),
                                      "--max-ram", "512"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "flash_kb" in lines[0] and "ram_kb" in lines[0]
    assert sum("over budget" in line for line in lines) == 2
    assert lines[-1].endswith(f"2 within --max-flash {FLASH_KB} KB, --max-ram 512 KB")


@pytest.mark.parametrize("value", ["0", "-3", "nan"])
def test_a_budget_that_is_not_a_positive_number_is_refused(value):
    result = CliRunner().invoke(cli, ["search", "--space", "smoke", "--dry-run", "--max-ram", value])
    assert result.exit_code == 2 and "--max-ram" in result.stderr


def _space_with_objective(**objective):
    document = search_space.resolved(smoke_space(name="pareto", max_trials=2))
    document["objective"] = {**document["objective"], **objective, "hv_reference": None}
    return search_space.from_dict(document, "smoke_device.yaml")


def test_objective_accuracy_is_float_or_int8():
    one_line_error(lambda: _space_with_objective(accuracy="int4"), "smoke_device.yaml", "objective.accuracy")
    space = _space_with_objective(size="ram_bytes", accuracy="int8")
    assert search_space.accuracy_metric(space) == "val_accuracy_int8" and space.objective["hv_reference"] == [1e9, 0.0]


def test_a_search_for_the_int8_front_on_flash_scores_each_trial_in_int8(splits, tmp_path):
    space = _space_with_objective(size="flash_bytes", accuracy="int8")
    tuner = search_run.run_search(space, splits, tmp_path, seed=0)
    found = search_front(tuner)
    completed = [trial for trial in tuner.oracle.trials.values() if trial.status == "COMPLETED"]
    expected = sorted((metric(trial, "flash_bytes"), metric(trial, "val_accuracy_int8")) for trial in completed)
    assert found.size == "flash_bytes" and sorted(found.points) == expected and len(expected) == 2
    assert {"best_val_accuracy_int8", "knee_flash_bytes"} <= set(summary.headline(tuner))
