"""The CNN hypermodel: exact seed parameter counts, infeasible configs, dry runs and keras-tuner oracles."""

import pathlib
import random
from collections.abc import Sequence

import keras_tuner
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tuner_app import errors
from tuner_app.errors import TunerAppError
from tuner_app.model.architecture import build, configured, space_sizes
from tuner_app.model.space import configurations, search_space
from tuner_app.model.space import hyperparameters as hps

SPACES = pathlib.Path(__file__).resolve().parent.parent / "search_spaces"

SEED_2D = [49_956_064, 50_472_672, 22_368_624, 22_885_232, 8_586_128, 9_102_736, 2_640_848, 3_157_456]
SEED_1D = [32_736_480, 33_253_088, 16_290_160, 16_806_768, 7_996_304, 8_512_912, 3_689_424, 4_206_032,
           1_338_448, 1_855_056]


def load(name):
    return search_space.load(SPACES / f"{name}.yaml")


def without_batch_norm(rows):
    return [row for row in rows if not row["hyperparameters"]["batch_norm"]]


@pytest.mark.parametrize("name, expected", [("seed_2d", SEED_2D), ("seed_1d", SEED_1D)])
def test_dry_run_reproduces_seed_counts(name, expected):
    rows = [row for row in without_batch_norm(space_sizes.dry_run(load(name))) if not row["infeasible"]]
    assert [row["params"] for row in rows] == expected
    assert [(row["hyperparameters"]["conv_layers"], row["hyperparameters"]["fc_layers"]) for row in rows][:3] == [
        (1, 1), (1, 2), (2, 1)]
    assert all(row["params_conv"] + row["params_fc"] == row["params"] for row in rows)


def test_seed_2d_grid_has_the_seeds_20_configurations_4_infeasible():
    rows = space_sizes.dry_run(load("seed_2d"))
    assert len(rows) == 5 * 2 * 2
    infeasible = [row for row in rows if row["infeasible"]]
    assert [row["hyperparameters"]["conv_layers"] for row in infeasible] == [5, 5, 5, 5]
    assert all(row["params"] is None for row in infeasible)
    assert infeasible[0]["infeasible"] == ("b08_conv: conv 5x5 with stride 1x1 and 'valid' padding does not fit "
                                           "the 13x3 feature map")


def test_batch_norm_adds_four_params_per_conv_channel():
    rows = space_sizes.dry_run(load("seed_2d"))
    off, on = rows[4], rows[5]  # conv 2, fc 1: batch_norm False then True
    assert (off["hyperparameters"]["conv_layers"], on["hyperparameters"]["batch_norm"]) == (2, True)
    assert on["params"] - off["params"] == 4 * (8 + 16)


def test_five_conv_2d_is_reported_infeasible():
    space = load("seed_2d")
    values = hps.completed(space.hyperparameters, {**configurations.configurations(space)[0], "conv_layers": 5})
    with pytest.raises(errors.InfeasibleConfig, match="b08_conv: conv 5x5 .* does not fit the 13x3 feature map"):
        configured.sizes(space, values)
    with pytest.raises(errors.InfeasibleConfig):
        build.build_model(space, values)


def test_sampled_dry_run_is_seeded():
    space = load("seed_1d")
    first = space_sizes.dry_run(space, trials=5, seed=3)
    again = space_sizes.dry_run(space, trials=5, seed=3)
    assert len(first) == 5 and first == again
    assert all(1 <= row["hyperparameters"]["conv_layers"] <= 5 for row in first)


@pytest.mark.parametrize("name, overrides", [
    ("smoke", {"conv_layers": 2, "fc_layers": 1}),
    ("smoke", {"conv_layers": 2, "fc_layers": 0, "batch_norm": True, "head": "flatten"}),
    ("seed_2d", {"conv_layers": 4, "fc_layers": 2, "batch_norm": True}),
    ("seed_1d", {"conv_layers": 5, "fc_layers": 1, "batch_norm": True, "head": "gap"}),
])
def test_analytic_counts_match_keras(name, overrides):
    space = load(name)
    values = hps.completed(space.hyperparameters, {**configurations.configurations(space)[0], **overrides})
    model = build.build_model(space, values)
    counts = configured.sizes(space, values)
    trainable = sum(int(w.shape.num_elements()) for w in model.trainable_weights)
    assert counts["params_total"] == model.count_params()
    assert counts["params_trainable"] == trainable


def test_smoke_build_has_declared_input_and_16_way_softmax():
    space = load("smoke")
    hp = keras_tuner.HyperParameters()
    model = build.CnnHyperModel(space).build(hp)
    assert tuple(model.input_shape[1:]) == (16000,)  # the waveform: the front-end is the model's first layer
    assert model.get_layer("frontend").output.shape[1:] == (257, 99, 1)
    assert model.output_shape == (None, 16)
    assert model.layers[-1].activation.__name__ == "softmax"


def populate(tuner_class, space, tmp_path, trials, **options):
    tuner = tuner_class(build.CnnHyperModel(space), objective="val_accuracy", directory=str(tmp_path),
                        project_name=tuner_class.__name__, **options)
    created = []
    for index in range(trials):
        # Record and end each trial (no training) so the grid oracle moves on to the next point.
        trial = tuner.oracle.create_trial(f"worker{index}")
        tuner.oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
        tuner.oracle.end_trial(trial)
        created.append(dict(trial.hyperparameters.values))
    return tuner, created


def test_grid_search_enumerates_smoke_space(tmp_path):
    space = load("smoke")
    _, trials = populate(keras_tuner.GridSearch, space, tmp_path, 4, max_trials=4)
    seen = [(values["conv_layers"], values["fc_layers"]) for values in trials]
    assert seen == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert trials == [row["hyperparameters"] for row in space_sizes.dry_run(space)]


@pytest.mark.parametrize("tuner_class, options", [
    (keras_tuner.BayesianOptimization, {"max_trials": 2}),
    (keras_tuner.Hyperband, {"max_epochs": 2}),
])
def test_other_oracles_build_a_model(tmp_path, tuner_class, options):
    space = load("smoke")
    tuner, trials = populate(tuner_class, space, tmp_path, 1, **options)
    hp = keras_tuner.HyperParameters()
    search_space.declare(hp, space)
    hp.values.update(trials[0])
    model = tuner.hypermodel.build(hp)
    assert model.output_shape == (None, 16)


def test_macs_of_the_smallest_smoke_model_by_hand():
    values = hps.completed(load("smoke").hyperparameters, {**configurations.configurations(load("smoke"))[0], "conv_layers": 1, "fc_layers": 0})
    # 253x95 valid 5x5 outputs x 25 taps x 1 -> 4 channels, then GAP (4) -> Dense 16.
    assert configured.sizes(load("smoke"), values)["macs"] == 253 * 95 * 25 * 4 + 4 * 16


def test_smallest_configuration_and_budget_check():
    params, values = space_sizes.smallest_configuration(load("seed_2d"))
    assert params == 2_640_848 and (values["conv_layers"], values["fc_layers"]) == (4, 1)
    space_sizes.check_budget(load("seed_2d"), 2_640_848)  # exactly at the budget: fine
    with pytest.raises(TunerAppError, match=r"seed_2d.yaml: no configuration fits --max-params 1,000,000; "
                                            r"the smallest has 2,640,848 params \(conv_layers=4, fc_layers=1, "
                                            r"batch_norm=False\)"):
        space_sizes.check_budget(load("seed_2d"), 1_000_000)


def test_wide_spaces_reach_far_below_the_seed():
    smallest_2d, _ = space_sizes.smallest_configuration(load("cnn2d"))
    smallest_1d, _ = space_sizes.smallest_configuration(load("cnn1d"))
    assert smallest_2d < 1_000 and smallest_1d < 1_000  # the seed's smallest: 1,338,448 (1D)


# --- ranges are counted and drawn, never listed (issue 23, case 2) ---------------------------------------------

class Unlistable(Sequence):
    """A range that may be measured, indexed and drawn from, but whose walk fails the test: a listed range."""

    def __init__(self, values: range):
        self.values = values

    def __len__(self):
        return len(self.values)

    def __getitem__(self, index):
        return self.values[index]

    def __iter__(self):
        raise AssertionError(f"walked a range of {len(self.values):,} values")


@pytest.mark.parametrize("low, high, step", [(1, 6, None), (2, 17, 3), (-3, 4, 2), (0, 0, None)])
def test_an_int_range_holds_keras_tuners_values_as_a_range(low, high, step):
    spec = {"type": "int", "min_value": low, "max_value": high, **({"step": step} if step else {})}
    hp = keras_tuner.HyperParameters()
    hp.Int("x", low, high, step=step)
    values = hps.candidate_values(spec)
    assert isinstance(values, range) and list(values) == list(hp.space[0].values)
    assert (hps.bound(spec, min), hps.bound(spec, max)) == (values[0], values[-1])


def test_a_huge_range_is_bounded_and_searched_without_listing_it():
    spec = {"type": "int", "min_value": 1, "max_value": 10**9, "step": 3}
    values = hps.candidate_values(spec)
    assert isinstance(values, range) and len(values) == 333_333_334
    assert (hps.bound(spec, min), hps.bound(spec, max)) == (1, 10**9)
    assert hps.holds(values, 999_999_997) and not hps.holds(values, 999_999_998)
    assert not hps.holds(values, 1.5) and not hps.holds(values, "1")  # `in` would walk the range for these
    assert hps.describe(values) == "1..1000000000 step 3"


SCOPED = {"depth": {"type": "choice", "values": [0, 1, 2]},
          "width": {"type": "int", "min_value": 1, "max_value": 10**9},
          "units": {"type": "int", "min_value": 1, "max_value": 10**9, "conditional_scope": {"depth": [1, 2]}},
          "rate": {"type": "int", "min_value": 1, "max_value": 10**9, "conditional_scope": {"depth": [2]}}}


def test_counting_multiplies_the_leaves_and_enumerates_only_the_parents():
    axes = {"depth": [0, 1, 2], **{name: Unlistable(range(1, 10**9 + 1)) for name in ("width", "units", "rate")}}
    assert hps.count_active(SCOPED, axes, limit=10**30) == 10**9 + 10**18 + 10**27
    assert hps.count_active(SCOPED, axes, limit=1_000) == 1_001
    drawn = [hps.sample_active(SCOPED, axes, random.Random(seed)) for seed in range(20)]
    listed = {"depth": [0, 1, 2], **{name: range(1, 10**9 + 1) for name in ("width", "units", "rate")}}
    assert drawn == [hps.sample_active(SCOPED, listed, random.Random(seed)) for seed in range(20)]


SMALL_SPECS = st.lists(st.tuples(st.integers(1, 4), st.integers(0, 3), st.lists(st.integers(0, 3), max_size=2)),
                       min_size=1, max_size=5)


@settings(max_examples=60, derandomize=True, database=None, deadline=None)
@given(declared=SMALL_SPECS, limit=st.integers(0, 300))
def test_counting_agrees_with_the_enumeration(declared, limit):
    # hp i takes `size` values; scoped, if `parent` names an earlier hp, to its values `allowed`
    specs = {}
    for index, (size, parent, allowed) in enumerate(declared):
        scope = {f"h{parent}": allowed or [0]} if parent < index else {}
        specs[f"h{index}"] = {"type": "int", "min_value": 0, "max_value": size - 1,
                              **({"conditional_scope": scope} if scope else {})}
    parents = {parent for spec in specs.values() for parent in hps.scope(spec)}
    axes = {name: hps.candidate_values(spec) if name in parents else Unlistable(hps.candidate_values(spec))
            for name, spec in specs.items()}
    listed = {name: list(hps.candidate_values(spec)) for name, spec in specs.items()}
    every = sum(1 for _ in hps.active_configurations(specs, listed))
    assert hps.count_active(specs, axes, limit) == min(every, limit + 1)


def test_a_grid_too_large_to_list_is_sampled_not_enumerated():
    document = yaml.safe_load((SPACES / "smoke.yaml").read_text())
    document["hyperparameters"]["filters"] = {"type": "int", "min_value": 1, "max_value": 65_536}
    document["hyperparameters"]["fc_units_1"] = {"type": "int", "min_value": 1, "max_value": 65_536}
    space = search_space.from_dict(document, "wide.yaml")
    assert not configurations.is_grid(space)  # 8.6 billion configurations
    assert isinstance(space_sizes._size_axes(space)["filters"], range)
    assert len(configurations.configurations(space, trials=3)) == 3
    with pytest.raises(TunerAppError, match=r"^wide.yaml: the space has continuous hyperparameters or more than "
                                            r"100,000 configurations; give a number of trials to sample$"):
        configurations.configurations(search_space.from_dict({**document, "tuner": {"name": "grid"}}, "wide.yaml"))
