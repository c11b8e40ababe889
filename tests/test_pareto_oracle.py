"""`--tuner pareto`: Optuna's multi-objective sampler proposes through ask-and-tell, keras-tuner runs the trials.
Proposals fit the budget, are feasible and never repeat; the front is the non-dominated trials; a resumed
oracle rebuilds its study from keras-tuner's finished trials; a smoke search and a killed search's resume."""

import json
from pathlib import Path

import pytest
import yaml
from conftest import make_oracle, run_fake_trials, smoke_space, tone_splits

from tuner_app.errors import TunerAppError
from tuner_app.model.architecture import configured
from tuner_app.model.space import search_space
from tuner_app.search import pareto_oracle, run as search_run

BUDGET = 300  # of the smoke space's four configurations (184, 288, 1,056 and 1,128 params) two fit


@pytest.fixture(scope="module")
def splits():
    return tone_splits()


def test_distributions_follow_the_specs():
    space = search_space.load("search_spaces/kws.yaml")
    specs = space.hyperparameters
    assert pareto_oracle.distribution(specs["family"]).choices == ("dscnn", "bcresnet", "tcresnet", "seed")
    assert pareto_oracle.distribution(specs["learning_rate"]).log
    assert pareto_oracle.distribution(specs["dscnn_blocks"]).low == 1
    assert pareto_oracle.distribution(specs["kernel_size"]) is None  # fixed: never sampled


def test_it_proposes_every_fitting_configuration_once_then_stops(tmp_path):
    oracle = make_oracle(pareto_oracle.ParetoOracle, smoke_space(max_trials=10), BUDGET, max_trials=10, seed=1)
    trials = run_fake_trials(oracle, tmp_path, 10)
    proposed = [json.dumps(trial.hyperparameters.values, sort_keys=True) for trial in trials]
    assert len(proposed) == len(set(proposed)) == 2  # of the four, only two fit the budget
    assert all(configured.sizes(oracle.space, trial.hyperparameters.values)["params_total"] <= BUDGET
               for trial in trials)
    assert sorted(entry["params"] for entry in oracle.rejections) == [1056, 1128]
    assert not oracle.gave_up  # a spent space stops quietly, as keras-tuner's oracles do, proposing no repeat


def test_a_space_that_leaves_max_trials_out_ends_as_keras_tuners_own_do(tmp_path):
    space = search_space.load("search_spaces/kws.yaml")  # a learning rate in a continuous range: never spent
    oracle = make_oracle(pareto_oracle.ParetoOracle, space, 60_000, seed=0)
    assert len(run_fake_trials(oracle, tmp_path, 30)) == pareto_oracle.DEFAULT_MAX_TRIALS == 10


def test_infeasible_configurations_are_never_proposed(tmp_path):
    space = search_space.load("search_spaces/kws.yaml")
    oracle = make_oracle(pareto_oracle.ParetoOracle, space, 60_000, max_trials=12, seed=0)
    trials = run_fake_trials(oracle, tmp_path, 12)
    assert len(trials) == 12
    for trial in trials:
        assert configured.sizes(space, trial.hyperparameters.values)["params_total"] <= 60_000
    assert oracle.rejections and all(entry["params"] is None or entry["params"] > 60_000
                                     for entry in oracle.rejections)


def test_the_front_is_the_non_dominated_trials(tmp_path):
    document = yaml.safe_load(Path("search_spaces/smoke.yaml").read_text())
    document["hyperparameters"]["filters"] = {"type": "choice", "values": [4, 8]}
    space = search_space.from_dict(document, "smoke.yaml")
    oracle = make_oracle(pareto_oracle.ParetoOracle, space, None, max_trials=8, seed=2)
    # Accuracy 0.6 to 0.9 growing with size, except that every configuration over 500 params scores 0.3: the
    # large ones are dominated by any small one; among the small, each larger one is more accurate.
    def score(values, index):
        params = configured.sizes(space, values)["params_total"]
        return 0.3 if params > 500 else 0.6 + params / 2000

    trials = run_fake_trials(oracle, tmp_path, 8, score)
    assert len(trials) == 8
    sizes = {trial.trial_id: configured.sizes(space, trial.hyperparameters.values)["params_total"]
             for trial in trials}
    small = sorted((size, trial_id) for trial_id, size in sizes.items() if size <= 500)
    assert sorted(oracle.front()) == sorted(trial_id for _, trial_id in small)  # every small one, no large one
    assert len(small) < len(trials)


def test_a_resumed_oracle_rebuilds_its_study_and_proposes_nothing_twice(tmp_path):
    space = search_space.load("search_spaces/kws.yaml")
    first = make_oracle(pareto_oracle.ParetoOracle, space, 60_000, max_trials=6, seed=3)
    done = run_fake_trials(first, tmp_path, 3)
    state = json.loads(json.dumps(first.get_state()))
    again = make_oracle(pareto_oracle.ParetoOracle, space, 60_000, max_trials=6, seed=3)
    again._set_project_dir(str(tmp_path), "pareto")
    again.set_state(state)
    again.trials = first.trials  # what keras-tuner's reload reads back from the trial files
    assert len([t for t in again.study.trials if t.state.name == "COMPLETE"]) == 3
    later = run_fake_trials(again, tmp_path, 3)
    seen = [json.dumps(t.hyperparameters.values, sort_keys=True) for t in [*done, *later]]
    assert len(later) == 3 and len(set(seen)) == 6


def test_a_bad_sampler_or_size_is_named():
    document = yaml.safe_load(Path("search_spaces/smoke.yaml").read_text())
    with pytest.raises(TunerAppError, match="smoke.yaml: tuner.sampler: expected one of"):
        search_space.from_dict({**document, "tuner": {"name": "pareto", "sampler": "cmaes"}}, "smoke.yaml")
    with pytest.raises(TunerAppError, match="smoke.yaml: objective.size: expected one of"):
        search_space.from_dict({**document, "objective": {"size": "flops"}}, "smoke.yaml")


def test_a_pareto_smoke_search_trains_and_resumes(splits, tmp_path):
    tuner = search_run.run_search(smoke_space(max_trials=2), splits, tmp_path, tuner_name="pareto", seed=0)
    completed = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    assert len(completed) == 2 and tuner.oracle.front()
    resumed = search_run.run_search(smoke_space(max_trials=3), splits, tmp_path, tuner_name="pareto", seed=0)
    values = [json.dumps(t.hyperparameters.values, sort_keys=True) for t in resumed.oracle.trials.values()]
    assert len(values) == len(set(values)) == 3  # one new trial; the two finished ones were not retrained
    scores = {t.trial_id: t.metrics.get_last_value("val_accuracy") for t in completed}
    assert {trial_id: resumed.oracle.trials[trial_id].metrics.get_last_value("val_accuracy")
            for trial_id in scores} == scores  # kept as they were: not retrained


def _finished(oracle, values, accuracy):
    """A COMPLETED keras-tuner trial of `values` scored `accuracy`, placed among the oracle's trials by hand."""
    import keras_tuner

    hp = oracle.get_space()
    hp.values.update(values)
    trial = keras_tuner.engine.trial.Trial(hp, trial_id=str(len(oracle.trials)), status="COMPLETED")
    trial.metrics.register("val_accuracy", "max")
    trial.metrics.update("val_accuracy", accuracy)
    trial.metrics.register("params_total", "min")
    trial.metrics.update("params_total", configured.sizes(oracle.space, values)["params_total"])
    oracle.trials[trial.trial_id] = trial
    return trial


def _filters_space():
    """The smoke space with `filters` searched: 20 configurations from 104 to ~14K params."""
    document = yaml.safe_load(Path("search_spaces/smoke.yaml").read_text())
    document["hyperparameters"]["filters"] = {"type": "choice", "values": [2, 4, 8, 16, 32]}
    return search_space.from_dict(document, "smoke.yaml")


def test_the_gap_preference_takes_the_candidate_in_the_widest_gap_of_the_front():
    space = _filters_space()
    configurations = sorted(({"conv_layers": c, "fc_layers": 0, "filters": f, **_fixed(space)}
                             for c in (1, 2) for f in (2, 4, 8, 16, 32)),
                            key=lambda values: configured.sizes(space, values)["params_total"])
    oracle = make_oracle(pareto_oracle.ParetoOracle, space, None, gap_candidates=3, seed=0)
    smallest, largest = configurations[0], configurations[-1]
    _finished(oracle, smallest, 0.5)
    _finished(oracle, largest, 0.9)  # the front: two points, one gap between them
    near_small, middle, near_large = configurations[1], configurations[len(configurations) // 2], configurations[-2]
    candidates = [("a", near_small), ("b", near_large), ("c", middle)]
    # Every candidate falls in the one gap; a third point splits it, so the next choice favours the wider half.
    assert oracle._widest_gap(candidates)[0] == "a"  # equal widths: the sampler's order decides
    _finished(oracle, middle, 0.7)
    wider_half = "a" if _log_size(space, middle) - _log_size(space, smallest) > \
        _log_size(space, largest) - _log_size(space, middle) else "b"
    assert oracle._widest_gap(candidates[:2])[0] == wider_half
    assert oracle._widest_gap(candidates)[0] != "c"  # a size the front holds leaves no gap to fill


def test_without_a_front_or_with_one_candidate_the_sampler_decides():
    space = _filters_space()
    values = {"conv_layers": 1, "fc_layers": 0, "filters": 2, **_fixed(space)}
    oracle = make_oracle(pareto_oracle.ParetoOracle, space, None, gap_candidates=3, seed=0)
    assert oracle._widest_gap([("a", values), ("b", {**values, "filters": 32})])[0] == "a"
    _finished(oracle, values, 0.5)  # a front of one point has no gap
    assert oracle._widest_gap([("a", values), ("b", {**values, "filters": 32})])[0] == "a"


def test_with_the_gap_preference_proposals_still_fit_and_never_repeat(tmp_path):
    oracle = make_oracle(pareto_oracle.ParetoOracle, _filters_space(), 3_000, gap_candidates=3, max_trials=20,
                         seed=4)
    trials = run_fake_trials(oracle, tmp_path, 20, score=lambda values, index: 0.4 + 0.02 * index)
    proposed = [json.dumps(trial.hyperparameters.values, sort_keys=True) for trial in trials]
    assert len(proposed) == len(set(proposed)) and len(trials) >= 4
    assert all(configured.sizes(oracle.space, trial.hyperparameters.values)["params_total"] <= 3_000
               for trial in trials)
    assert any(t.state.name == "FAIL" for t in oracle.study.trials)  # the candidates passed over


def test_progress_and_summary_show_the_front(tmp_path):
    from types import SimpleNamespace

    from tuner_app.search import pareto_geometry, progress, summary

    space = _filters_space()
    oracle = make_oracle(pareto_oracle.ParetoOracle, space, None, max_trials=6, seed=5)
    trials = run_fake_trials(oracle, tmp_path, 6, score=lambda values, index: [0.5, 0.8, 0.6, 0.7, 0.9, 0.4][index])
    tuner = SimpleNamespace(space=space, oracle=oracle, sizes=lambda values: {"params": 0})
    points = {t.trial_id: (configured.sizes(space, t.hyperparameters.values)["params_total"],
                           t.metrics.get_last_value("val_accuracy")) for t in trials}
    on_front = {trial_id for trial_id, point in points.items()
                if point in pareto_geometry.front_points(list(points.values()))}
    line = progress.front_line(tuner)
    volume = pareto_geometry.hypervolume(list(points.values()), (1e8, 0.0))
    assert line.startswith(f"    front: {len(on_front)} of 6 trials, hypervolume {volume:.4f} (params_total, val_acc): ")
    assert line.count("|") == len(on_front) - 1
    rows = summary.summary_rows(tuner)
    assert {row["trial_id"] for row in rows if row["front"]} == on_front
    table = summary.format_trials(rows).splitlines()
    assert table[0].split()[-1] == "front"
    assert sum(line.endswith("*") for line in table[1:]) == len(on_front)


def _fixed(space):
    return {name: spec["value"] for name, spec in space.hyperparameters.items() if spec["type"] == "fixed"}


def _log_size(space, values):
    import math

    return math.log10(configured.sizes(space, values)["params_total"])


@pytest.mark.parametrize("sampler", ["tpe", "nsga2"])
def test_a_sampler_that_repeats_itself_still_covers_a_small_space(tmp_path, sampler):
    # TPE settles on its favourites and proposes them again and again; the oracle then draws an untried one.
    oracle = make_oracle(pareto_oracle.ParetoOracle, _filters_space(), None, sampler=sampler, max_trials=20,
                         seed=6)
    trials = run_fake_trials(oracle, tmp_path, 20, score=lambda values, index: 0.9 if values["filters"] == 2 else 0.1)
    proposed = {json.dumps(trial.hyperparameters.values, sort_keys=True) for trial in trials}
    assert len(trials) == len(proposed) == 20  # every configuration of the space, each once
    assert not oracle.gave_up
