"""`initial_configurations:` in a space: read and refused in one line naming file and key; completed at the
hyperparameters' defaults; proposed first by every tuner (an over-budget one turned away and reported), never
twice, also after a reload or a resumed search; and kws.yaml's are exactly the reference models."""

import io
import json
from pathlib import Path

import pytest
import yaml
from conftest import SMOKE_SPACE, make_oracle, one_line_error, run_fake_trials, tone_splits

from tuner_app.device.budget import Budget
from tuner_app.model.architecture import configured
from tuner_app.model.space import configurations, search_space
from tuner_app.search import oracles, pareto_oracle, progress, run as search_run

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "smoke_initial.yaml"
BUDGET = 300  # of the smoke space's (conv_layers, fc_layers): (1, 0) 184, (1, 1) 288, (2, 0) 1,056, (2, 1) 1,128
TWO_FC = {"name": "two-fc", "values": {"conv_layers": 2, "fc_layers": 1}}  # over the budget
ONE_FC = {"name": "one-fc", "values": {"conv_layers": 1, "fc_layers": 1}}
PLAIN = {"name": "plain", "values": {"conv_layers": 1, "fc_layers": 0}}
KINDS = {
    "random": (oracles.RandomSearchOracle, {"max_trials": 4}),
    "bayesian": (oracles.BayesianOptimizationOracle, {"max_trials": 4, "num_initial_points": 1}),
    "hyperband": (oracles.HyperbandOracle, {"max_epochs": 3, "factor": 3}),
    "grid": (oracles.GridSearchOracle, {"max_trials": 4}),
    "pareto": (pareto_oracle.ParetoOracle, {"max_trials": 4}),
}
REFERENCES = {"DS-CNN-S": "dscnn_s", "BC-ResNet-1": "bcresnet1", "TC-ResNet8": "tcresnet8"}


def _document(entries):
    return {**yaml.safe_load(Path(SMOKE_SPACE).read_text()), "initial_configurations": entries}


def _space(*entries, **tuner):
    """search_spaces/smoke.yaml listing `entries`, with the `tuner` section given, if any."""
    return search_space.from_dict({**_document(list(entries)), **({"tuner": tuner} if tuner else {})}, SOURCE)


def _searched(values):
    return {name: values[name] for name in ("conv_layers", "fc_layers")}


def _oracle(kind, space, max_params=None):
    oracle_class, options = KINDS[kind]
    return make_oracle(oracle_class, space, max_params, seed=1, **options)


# --- reading ---

KWS_ERRORS = [
    ({"values": {"family": "bcresnet", "dscnn_filters": 64}},
     "initial_configurations[0].values.dscnn_filters: inactive in this entry (it exists only where family is one "
     "of ['dscnn'], here 'bcresnet')"),
    ({"values": {"family": "dscnn", "frontend": "mel80"}},
     "initial_configurations[0].values.frontend: 'mel80' is not a value of frontend"),
    ({"values": {"learning_rate": 0.1}}, "initial_configurations[0].values.learning_rate: expected float from "
                                         "0.001 to 0.005, got 0.1"),
    ({"values": {"learning_rate": "fast"}}, "initial_configurations[0].values.learning_rate: expected float"),
    ({"values": {"dscnn_blocks": 2.0}}, "initial_configurations[0].values.dscnn_blocks: 2.0 is not a value of "
                                        "dscnn_blocks (1..5)"),
]
SMOKE_ERRORS = [
    ({"values": {"conv_layers": 3}}, "initial_configurations[0].values.conv_layers: 3 is not a value of "
                                     "conv_layers (1..2)"),
    ({"values": {"filters": 8}}, "initial_configurations[0].values.filters: 8 is not a value of filters ([4])"),
    ({"values": {"batch_norm": 0}}, "initial_configurations[0].values.batch_norm: 0 is not a value"),
    ({"values": {"conv_layerz": 1}}, "initial_configurations[0].values.conv_layerz: not a hyperparameter of "
                                     "this space"),
    ({"values": {"fc_layers": 0, "fc_units_1": 8}}, "initial_configurations[0].values.fc_units_1: inactive in "
                                                    "this entry"),
    ({"name": "a"}, "initial_configurations[0].values: expected a mapping of hyperparameter: value, got None"),
    ({"values": {}, "nmae": "a"}, "initial_configurations[0].nmae: unknown key"),
    ({"name": 7, "values": {}}, "initial_configurations[0].name: expected a non-empty string, got 7"),
    ("conv_layers: 1", "initial_configurations[0]: expected a mapping with `values`"),
]


@pytest.mark.parametrize("entry, message", SMOKE_ERRORS)
def test_a_bad_entry_is_refused_in_one_line_naming_file_and_key(entry, message):
    one_line_error(lambda: search_space.from_dict(_document([entry]), SOURCE), f"{SOURCE}: {message}")


@pytest.mark.parametrize("entry, message", KWS_ERRORS)
def test_a_bad_entry_of_a_family_space_is_refused_naming_the_key(entry, message):
    document = yaml.safe_load((ROOT / "search_spaces" / "kws.yaml").read_text())
    one_line_error(lambda: search_space.from_dict({**document, "initial_configurations": [entry]}, "kws.yaml"),
                   f"kws.yaml: {message}")


def test_duplicates_and_a_section_that_is_no_list_are_refused():
    # fc_layers left out is its default, 0: the same configuration twice.
    same = [{"values": {"conv_layers": 1}}, {"values": {"conv_layers": 1, "fc_layers": 0}}]
    one_line_error(lambda: _space(*same), f"{SOURCE}: initial_configurations[1]: the same configuration as "
                                          "initial_configurations[0]")
    one_line_error(lambda: _space(ONE_FC, {**PLAIN, "name": "one-fc"}),
                   f"{SOURCE}: initial_configurations[1].name: 'one-fc' also names initial_configurations[0]")
    one_line_error(lambda: search_space.from_dict(_document(ONE_FC), SOURCE),
                   f"{SOURCE}: initial_configurations: expected a list")


def test_an_entry_is_completed_at_the_hyperparameters_defaults():
    space = _space({"values": {"conv_layers": 2}}, ONE_FC)
    unnamed, one_fc = space.initial_configurations
    assert unnamed.name == "initial_configurations[0]" and one_fc.name == "one-fc"
    assert unnamed.values == {**configurations.configurations(space)[0], "conv_layers": 2, "fc_layers": 0}
    assert "fc_units_1" not in unnamed.values and one_fc.values["fc_units_1"] == 8  # active only with an FC layer


def test_a_value_is_held_as_its_hyperparameter_holds_it():
    document = yaml.safe_load((ROOT / "search_spaces" / "kws.yaml").read_text())
    entry = {"values": {"family": "tcresnet", "tcresnet_width": 1, "learning_rate": 0.001}}
    space = search_space.from_dict({**document, "initial_configurations": [entry]}, "kws.yaml")
    (listed,) = space.initial_configurations
    assert type(listed.values["tcresnet_width"]) is float  # 1 of a float choice is 1.0: one key per configuration


def test_the_resolved_space_holds_them_and_reads_back_and_others_are_unchanged():
    space = _space(TWO_FC, ONE_FC)
    again = search_space.from_dict(yaml.safe_load(yaml.safe_dump(search_space.resolved(space))), "again.yaml")
    assert again.initial_configurations == space.initial_configurations
    names = [entry["name"] for entry in search_space.resolved(space)["initial_configurations"]]
    assert names == ["two-fc", "one-fc"]
    assert "initial_configurations" not in search_space.resolved(_space())  # so older searches keep their fingerprint


@pytest.mark.parametrize("name, reference", sorted(REFERENCES.items()))
def test_kws_lists_each_reference_model_exactly(name, reference):
    kws = search_space.load(ROOT / "search_spaces" / "kws.yaml")
    listed = {configuration.name: configuration.values for configuration in kws.initial_configurations}
    fixed = search_space.load(ROOT / "search_spaces" / f"{reference}.yaml")
    (values,) = configurations.configurations(fixed)
    assert {key: value for key, value in listed[name].items() if key not in ("family", "frontend", "normalize")} == values
    assert configured.frontend_config(kws, listed[name]) == fixed.frontend
    assert configured.sizes(kws, listed[name], 12) == configured.sizes(fixed, values, 12)
    assert list(listed) == list(REFERENCES)


# --- proposing ---

@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_tuner_proposes_them_first_in_order(kind, tmp_path):
    oracle = _oracle(kind, _space(TWO_FC, ONE_FC))
    trials = run_fake_trials(oracle, tmp_path, 4, score=lambda values, index: 0.1 * index)
    assert [_searched(trial.hyperparameters.values) for trial in trials[:2]] == [TWO_FC["values"], ONE_FC["values"]]
    if kind not in ("hyperband", "bayesian"):  # a later round continues a trial; keras-tuner's GP repeats its optimum
        assert len({json.dumps(trial.hyperparameters.values, sort_keys=True) for trial in trials}) == len(trials)


def test_grid_then_walks_its_order_skipping_them(tmp_path):
    trials = run_fake_trials(_oracle("grid", _space(TWO_FC, ONE_FC)), tmp_path, 4)
    assert [tuple(_searched(trial.hyperparameters.values).values()) for trial in trials] == [
        (2, 1), (1, 1), (1, 0), (2, 0)]


def test_bayesian_counts_them_as_initial_points_and_its_gaussian_process_learns_from_them(tmp_path):
    oracle = make_oracle(oracles.BayesianOptimizationOracle, _space(TWO_FC, ONE_FC), None, seed=1, max_trials=3,
                         num_initial_points=2)
    fitted, fit = [], oracle.gpr.fit
    oracle.gpr.fit = lambda x, y: (fitted.append(sorted(y)), fit(x, y))[1]
    run_fake_trials(oracle, tmp_path, 3, score=lambda values, index: [0.7, 0.4][index] if index < 2 else 0.5)
    assert fitted == [[-0.7, -0.4]]  # the third trial is the GP's, fitted on the two listed ones' scores


def test_pareto_enqueues_them_so_the_sampler_learns_from_them(tmp_path):
    oracle = _oracle("pareto", _space(TWO_FC, ONE_FC))
    run_fake_trials(oracle, tmp_path, 2, score=lambda values, index: 0.6)
    learned = [trial.params for trial in oracle.study.trials if trial.state.name == "COMPLETE"]
    assert learned == [TWO_FC["values"], ONE_FC["values"]]  # the sampled hyperparameters; fc_units_1 is fixed


def test_pareto_gap_preference_never_passes_over_one(tmp_path):
    document = _document([PLAIN, TWO_FC, {"values": {"conv_layers": 2, "fc_layers": 0, "filters": 8}}])
    document["hyperparameters"]["filters"] = {"type": "choice", "values": [4, 8]}
    space = search_space.from_dict(document, SOURCE)
    oracle = make_oracle(pareto_oracle.ParetoOracle, space, None, seed=2, max_trials=4, gap_candidates=4)
    # Accuracy grows with size: every trial is on the front, which has two points before the third proposal.
    trials = run_fake_trials(oracle, tmp_path, 4,
                             lambda values, index: configured.sizes(space, values)["params_total"] / 1e5)
    assert [trial.hyperparameters.values for trial in trials[:3]] == [
        configuration.values for configuration in space.initial_configurations]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_one_over_the_budget_is_turned_away_and_recorded_by_name(kind, tmp_path):
    oracle = _oracle(kind, _space(TWO_FC, ONE_FC), BUDGET)
    first = run_fake_trials(oracle, tmp_path, 1)[0]
    assert _searched(first.hyperparameters.values) == ONE_FC["values"]
    (rejection,) = [entry for entry in oracle.rejections if _searched(entry["hyperparameters"]) == TWO_FC["values"]]
    assert rejection["reason"] == f"two-fc: 1128 params > budget {BUDGET}" and rejection["params"] == 1128


def test_max_trials_still_bounds_the_search(tmp_path):
    oracle = make_oracle(oracles.RandomSearchOracle, _space(TWO_FC, ONE_FC, PLAIN), None, seed=1, max_trials=2)
    assert len(run_fake_trials(oracle, tmp_path, 5)) == 2


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_reloaded_oracle_proposes_only_the_untried_ones(kind, tmp_path):
    space = _space(TWO_FC, ONE_FC, PLAIN)
    run_fake_trials(_oracle(kind, space), tmp_path, 1)
    again = _oracle(kind, space)
    again._set_project_dir(str(tmp_path), "fake")
    again.reload()  # keras-tuner's resume: the trials from their files, the rest from oracle.json
    later = run_fake_trials(again, tmp_path, 2)
    assert [_searched(trial.hyperparameters.values) for trial in later] == [ONE_FC["values"], PLAIN["values"]]


# --- one tiny real search, resumed ---

def test_a_search_and_its_resume_try_them_once_and_report_the_rejection_once(tmp_path):
    splits, stream = tone_splits(), io.StringIO()
    space = _space(TWO_FC, ONE_FC, PLAIN, name="random", max_trials=1)
    tuner = search_run.run_search(space, splits, tmp_path, budget=Budget(BUDGET), seed=0,
                                  observers=[progress.ProgressReporter(stream)])
    assert [_searched(trial.hyperparameters.values) for trial in tuner.oracle.trials.values()] == [ONE_FC["values"]]
    assert f"rejected, not trained: two-fc: 1128 params > budget {BUDGET}" in stream.getvalue()
    resumed_stream = io.StringIO()
    resumed = search_run.run_search(_space(TWO_FC, ONE_FC, PLAIN, name="random", max_trials=2), splits, tmp_path,
                                    budget=Budget(BUDGET), seed=0, observers=[progress.ProgressReporter(resumed_stream)])
    trials = sorted(resumed.oracle.trials.values(), key=lambda trial: trial.trial_id)
    assert [_searched(trial.hyperparameters.values) for trial in trials] == [ONE_FC["values"], PLAIN["values"]]
    assert all(trial.status == "COMPLETED" for trial in trials)
    assert "rejected" not in resumed_stream.getvalue()  # heard in the first search, not again
