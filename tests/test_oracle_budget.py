"""Configurations over --max-params, or infeasible, are turned away by the oracle as it proposes values:
they never become keras-tuner trials, never reach the Gaussian process, and still show as REJECTED in
progress, in the summary and to every observer; the budget check before a search never skips silently."""

import io
import json
import logging
import re
from pathlib import Path

import keras_tuner
import pytest
from conftest import make_oracle, run_fake_trials, smoke_space, tone_splits

from tuner_app.device.budget import Budget
from tuner_app.errors import TunerAppError
from tuner_app.model.architecture import configured, space_sizes
from tuner_app.model.space import configurations, search_space
from tuner_app.model.space import hyperparameters as hps
from tuner_app.search import observers, oracles, pareto_oracle, progress, summary, run as search_run

ROOT = Path(__file__).resolve().parents[1]
BUDGET = 300  # of the smoke space's four configurations only the one-conv ones (184, 288 params) fit
SEED = 2  # keras-tuner's random draws with seed 2 start with a two-conv net (1,056 params): rejected first


def _made_up(values, index):
    return 0.1 * (index % 7)  # a score that varies, for oracles that learn from it


@pytest.fixture(scope="module")
def splits():
    return tone_splits()


def _grid_space_starting_over_budget():
    # The grid walks each hp's default first: with conv_layers defaulting to 2 the first two points are over.
    document = search_space.resolved(smoke_space(name="grid", max_trials=2))
    document["hyperparameters"]["conv_layers"]["default"] = 2
    return search_space.from_dict(document, "smoke_grid.yaml")


SEARCHES = {
    "random": lambda: smoke_space(max_trials=2),
    "bayesian": lambda: smoke_space(name="bayesian", max_trials=2, num_initial_points=1),
    "hyperband": lambda: smoke_space(name="hyperband", max_epochs=1, factor=3, hyperband_iterations=1),
    "grid": _grid_space_starting_over_budget,
}


class Recorder(observers.SearchObserver):
    def __init__(self):
        self.rejected, self.ends = [], []

    def configuration_rejected(self, tuner, values, reason, params):
        self.rejected.append((dict(values), reason, params))

    def trial_end(self, tuner, trial, outcome):
        self.ends.append(outcome.status)


@pytest.fixture(scope="module", params=sorted(SEARCHES))
def budget_search(request, splits, tmp_path_factory):
    recorder, stream = Recorder(), io.StringIO()
    tuner = search_run.run_search(SEARCHES[request.param](), splits, tmp_path_factory.mktemp(request.param),
                              budget=Budget(BUDGET), seed=SEED, observers=[recorder, progress.ProgressReporter(stream)])
    return tuner, recorder, stream.getvalue()


def _completed(tuner):
    return [trial for trial in tuner.oracle.trials.values() if trial.status == "COMPLETED"]


def test_rejected_configurations_never_become_trials(budget_search):
    tuner, _, _ = budget_search
    assert {trial.status for trial in tuner.oracle.trials.values()} == {"COMPLETED"}  # no STOPPED stand-ins
    assert len(_completed(tuner)) == tuner.planned_trials()
    assert all(tuner.sizes(trial.hyperparameters.values)["params"] <= BUDGET for trial in _completed(tuner))


def test_rejections_still_show_in_summary_progress_and_observers(budget_search):
    tuner, recorder, progress_text = budget_search
    rows = summary.summary_rows(tuner)
    rejected_rows = [row for row in rows if row["status"] == "REJECTED"]
    assert rejected_rows and all(row["params"] > BUDGET and row["trial_id"] is None for row in rejected_rows)
    assert rows[0]["status"] == "REJECTED"  # in the order the oracle met them: before the first trial
    assert [(values, params) for values, _, params in recorder.rejected] == [
        (row["hyperparameters"], row["params"]) for row in rejected_rows]
    assert all(re.fullmatch(rf"{params} params > budget {BUDGET}", reason) for _, reason, params in recorder.rejected)
    assert "REJECTED" not in recorder.ends  # a rejection is no trial: no trial_begin/trial_end for it
    assert f"rejected, not trained: {recorder.rejected[0][2]} params > budget {BUDGET}" in progress_text
    assert summary.format_trials(rows).splitlines()[1].split()[:2] == ["-", "REJECTED"]  # no trial id to show


def test_the_gaussian_process_learns_only_from_completed_trials(splits, tmp_path):
    # One random initial point, then the Gaussian process proposes the second trial (with the rejection first).
    tuner = search_run.run_search(smoke_space(name="bayesian", max_trials=2, num_initial_points=1), splits, tmp_path,
                              budget=Budget(BUDGET), seed=SEED)
    completed = _completed(tuner)
    assert len(completed) == 2 and len(tuner.rejected) >= 1
    x, y = tuner.oracle._vectorize_trials()
    assert len(x) == len(y) == len(completed)
    assert sorted(y) == sorted(-trial.score for trial in completed)  # real scores, negated to minimise


def test_a_resumed_search_keeps_its_rejections_and_reports_only_new_ones(splits, tmp_path):
    search_run.run_search(smoke_space(max_trials=1), splits, tmp_path, budget=Budget(BUDGET), seed=SEED)
    recorder = Recorder()
    tuner = search_run.run_search(smoke_space(max_trials=2), splits, tmp_path, budget=Budget(BUDGET), seed=SEED,
                              observers=[recorder])
    rejected_rows = [row for row in summary.summary_rows(tuner) if row["status"] == "REJECTED"]
    assert len(rejected_rows) == len(tuner.rejected) >= 1
    assert len(recorder.rejected) == len(tuner.rejected) - 1  # the first search's rejection is not heard again
    assert len(_completed(tuner)) == 2


def test_infeasible_configurations_are_turned_away_without_a_budget(tmp_path):
    space = search_space.load(ROOT / "search_spaces" / "cnn2d.yaml")
    oracle = make_oracle(oracles.RandomSearchOracle, space, None, max_trials=40, seed=1)
    trials = run_fake_trials(oracle, tmp_path, 40, score=_made_up)
    assert len(trials) == 40
    for trial in trials:
        configured.sizes(space, trial.hyperparameters.values)  # raises InfeasibleConfig if one slipped in
    infeasible = [entry for entry in oracle.rejections if entry["params"] is None]
    assert infeasible and all("does not fit" in entry["reason"] for entry in infeasible)


def test_a_gaussian_process_proposal_over_budget_falls_back_to_a_fitting_random_draw(tmp_path, monkeypatch):
    space = smoke_space(name="bayesian")
    oracle = make_oracle(oracles.BayesianOptimizationOracle, space, BUDGET, max_trials=4, seed=3, num_initial_points=1)
    over = hps.completed(space.hyperparameters, {**configurations.configurations(space)[0], "conv_layers": 2, "fc_layers": 1})  # 1,128 params
    proposals = []

    def propose(self, trial_id):
        proposals.append(trial_id)
        return {"status": "RUNNING", "values": dict(over)}

    monkeypatch.setattr(keras_tuner.oracles.BayesianOptimizationOracle, "populate_space", propose)
    trials = run_fake_trials(oracle, tmp_path, 2, score=_made_up)
    assert len(proposals) == 2 and len(trials) == 2  # each proposal was turned away, yet both trials run
    assert [entry["params"] for entry in oracle.rejections] == [1128]  # recorded once, not once per proposal
    assert all(configured.sizes(space, trial.hyperparameters.values)["params_total"] <= BUDGET
               for trial in trials)


def test_rejections_survive_the_oracle_state_and_a_raised_budget_admits_them_again(tmp_path):
    oracle = make_oracle(oracles.RandomSearchOracle, smoke_space(), BUDGET, max_trials=4, seed=SEED)
    trials = run_fake_trials(oracle, tmp_path, 4, score=_made_up)
    assert len(trials) == 2  # two configurations fit; then the space is spent
    assert sorted(entry["params"] for entry in oracle.rejections) == [1056, 1128]
    state = oracle.get_state()
    same = make_oracle(oracles.RandomSearchOracle, smoke_space(), BUDGET, max_trials=4, seed=SEED)
    same.set_state(json.loads(json.dumps(state)))  # as a resume reads it (keras-tuner's set_state edits it)
    assert same.rejections == oracle.rejections and same._duplicate(oracle.rejections[0]["hyperparameters"])
    raised = make_oracle(oracles.RandomSearchOracle, smoke_space(), 2000, max_trials=4, seed=SEED)
    raised.set_state(json.loads(json.dumps(state)))
    assert not raised._duplicate(oracle.rejections[0]["hyperparameters"])  # it fits now: it may be drawn


def test_a_space_where_almost_nothing_fits_ends_with_one_clear_line(splits, tmp_path, monkeypatch):
    monkeypatch.setattr(oracles, "MAX_CONSECUTIVE_REJECTIONS", 5)
    space = search_space.load(ROOT / "search_spaces" / "cnn2d.yaml")  # its smallest configuration has 120 params
    with pytest.raises(TunerAppError) as caught:
        search_run.run_search(space, splits, tmp_path, budget=Budget(120), seed=1)
    message = str(caught.value)
    assert "\n" not in message and re.match(r".*cnn2d\.yaml: 5 configurations in a row .*--max-params", message)


# --- check_budget never skips silently (defect 10c) ---

def _wide_space():
    """cnn2d: 11,520 size-relevant combinations when inactive fc_units count, 5,440 when they do not."""
    return search_space.load(ROOT / "search_spaces" / "cnn2d.yaml")


def test_budget_check_enumerates_only_what_changes_the_size(monkeypatch, caplog):
    monkeypatch.setattr(space_sizes, "MAX_ENUMERATED", 6_000)
    smallest = r"cnn2d.yaml: no configuration fits --max-params 100; the smallest has 120 params"
    with caplog.at_level(logging.WARNING), pytest.raises(TunerAppError, match=smallest):
        space_sizes.check_budget(_wide_space(), 100)
    assert not caplog.records  # exact: no sampling needed


def test_budget_check_too_large_to_enumerate_samples_and_says_so(monkeypatch, caplog):
    monkeypatch.setattr(space_sizes, "MAX_ENUMERATED", 1_000)
    with caplog.at_level(logging.WARNING):
        space_sizes.check_budget(_wide_space(), 10_000)  # plenty fit
    assert len(caplog.records) == 1 and "sampl" in caplog.records[0].getMessage()
    assert "cnn2d.yaml" in caplog.records[0].getMessage()
    with pytest.raises(TunerAppError, match=r"cnn2d.yaml: no sampled configuration fits --max-params 100"):
        space_sizes.check_budget(_wide_space(), 100)


def test_a_project_from_before_holding_stopped_rejections_resumes_under_bayesian(tmp_path):
    # tuner-app before this change ended rejected configurations as STOPPED trials; keras-tuner's
    # _vectorize_trials has no branch for them (UnboundLocalError, or the previous trial's score).
    space = smoke_space(name="bayesian")
    oracle = make_oracle(oracles.BayesianOptimizationOracle, space, None, max_trials=6, seed=3, num_initial_points=1)
    oracle._set_project_dir(str(tmp_path), "legacy")
    legacy = oracle.create_trial("tuner0")
    legacy.status, legacy.message = "STOPPED", "rejected: 1128 params > budget 300"
    oracle.end_trial(legacy)
    run_fake_trials(oracle, tmp_path, 2, score=_made_up)
    x, y = oracle._vectorize_trials()
    completed = [trial for trial in oracle.trials.values() if trial.status == "COMPLETED"]
    assert len(y) == len(x) == len(completed) == 2
    assert sorted(-score for score in y) == sorted(trial.score for trial in completed)
    assert oracle.create_trial("tuner0").status == "RUNNING"  # the GP phase proposes without crashing


@pytest.mark.parametrize("kind, options", [
    (oracles.RandomSearchOracle, {"max_trials": 4}),
    (oracles.BayesianOptimizationOracle, {"max_trials": 4, "num_initial_points": 2}),
    (oracles.HyperbandOracle, {"max_epochs": 3, "factor": 3}),
    (pareto_oracle.ParetoOracle, {"max_trials": 4}),
])
def test_seed_zero_draws_the_same_configurations_on_every_run(kind, options, tmp_path):
    # keras-tuner reads seed 0 as no seed; every space's default seed is 0.
    space = search_space.load(ROOT / "search_spaces" / "kws.yaml")
    runs = [[json.dumps(trial.hyperparameters.values, sort_keys=True)
             for trial in run_fake_trials(make_oracle(kind, space, None, seed=0, **options), tmp_path / str(run), 4)]
            for run in range(2)]
    assert len(runs[0]) == 4 and runs[0] == runs[1]
