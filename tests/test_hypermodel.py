"""The CNN hypermodel: exact seed parameter counts, infeasible configs, dry runs and keras-tuner oracles."""

import pathlib

import keras_tuner
import pytest

from tuner_app import errors
from tuner_app.errors import TunerAppError
from tuner_app.model import hyperparameters as hps
from tuner_app.model import architecture, build, configurations, spaces

SPACES = pathlib.Path(__file__).resolve().parent.parent / "search_spaces"

SEED_2D = [49_956_064, 50_472_672, 22_368_624, 22_885_232, 8_586_128, 9_102_736, 2_640_848, 3_157_456]
SEED_1D = [32_736_480, 33_253_088, 16_290_160, 16_806_768, 7_996_304, 8_512_912, 3_689_424, 4_206_032,
           1_338_448, 1_855_056]


def load(name):
    return spaces.load(SPACES / f"{name}.yaml")


def without_batch_norm(rows):
    return [row for row in rows if not row["hyperparameters"]["batch_norm"]]


@pytest.mark.parametrize("name, expected", [("seed_2d", SEED_2D), ("seed_1d", SEED_1D)])
def test_dry_run_reproduces_seed_counts(name, expected):
    rows = [row for row in without_batch_norm(configurations.dry_run(load(name))) if not row["infeasible"]]
    assert [row["params"] for row in rows] == expected
    assert [(row["hyperparameters"]["conv_layers"], row["hyperparameters"]["fc_layers"]) for row in rows][:3] == [
        (1, 1), (1, 2), (2, 1)]
    assert all(row["params_conv"] + row["params_fc"] == row["params"] for row in rows)


def test_seed_2d_grid_has_the_seeds_20_configurations_4_infeasible():
    rows = configurations.dry_run(load("seed_2d"))
    assert len(rows) == 5 * 2 * 2
    infeasible = [row for row in rows if row["infeasible"]]
    assert [row["hyperparameters"]["conv_layers"] for row in infeasible] == [5, 5, 5, 5]
    assert all(row["params"] is None for row in infeasible)
    assert infeasible[0]["infeasible"] == ("b08_conv: conv 5x5 with stride 1x1 and 'valid' padding does not fit "
                                           "the 13x3 feature map")


def test_batch_norm_adds_four_params_per_conv_channel():
    rows = configurations.dry_run(load("seed_2d"))
    off, on = rows[4], rows[5]  # conv 2, fc 1: batch_norm False then True
    assert (off["hyperparameters"]["conv_layers"], on["hyperparameters"]["batch_norm"]) == (2, True)
    assert on["params"] - off["params"] == 4 * (8 + 16)


def test_five_conv_2d_is_reported_infeasible():
    space = load("seed_2d")
    values = hps.completed(space.hyperparameters, {**configurations.configurations(space)[0], "conv_layers": 5})
    with pytest.raises(errors.InfeasibleConfig, match="b08_conv: conv 5x5 .* does not fit the 13x3 feature map"):
        architecture.sizes(space, values)
    with pytest.raises(errors.InfeasibleConfig):
        build.build_model(space, values)


def test_sampled_dry_run_is_seeded():
    space = load("seed_1d")
    first = configurations.dry_run(space, trials=5, seed=3)
    again = configurations.dry_run(space, trials=5, seed=3)
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
    counts = architecture.sizes(space, values)
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
    assert trials == [row["hyperparameters"] for row in configurations.dry_run(space)]


@pytest.mark.parametrize("tuner_class, options", [
    (keras_tuner.BayesianOptimization, {"max_trials": 2}),
    (keras_tuner.Hyperband, {"max_epochs": 2}),
])
def test_other_oracles_build_a_model(tmp_path, tuner_class, options):
    space = load("smoke")
    tuner, trials = populate(tuner_class, space, tmp_path, 1, **options)
    hp = keras_tuner.HyperParameters()
    spaces.declare(hp, space)
    hp.values.update(trials[0])
    model = tuner.hypermodel.build(hp)
    assert model.output_shape == (None, 16)


def test_macs_of_the_smallest_smoke_model_by_hand():
    values = hps.completed(load("smoke").hyperparameters, {**configurations.configurations(load("smoke"))[0], "conv_layers": 1, "fc_layers": 0})
    # 253x95 valid 5x5 outputs x 25 taps x 1 -> 4 channels, then GAP (4) -> Dense 16.
    assert architecture.sizes(load("smoke"), values)["macs"] == 253 * 95 * 25 * 4 + 4 * 16


def test_smallest_configuration_and_budget_check():
    params, values = configurations.smallest_configuration(load("seed_2d"))
    assert params == 2_640_848 and (values["conv_layers"], values["fc_layers"]) == (4, 1)
    configurations.check_budget(load("seed_2d"), 2_640_848)  # exactly at the budget: fine
    with pytest.raises(TunerAppError, match=r"seed_2d.yaml: no configuration fits --max-params 1,000,000; "
                                            r"the smallest has 2,640,848 params \(conv_layers=4, fc_layers=1, "
                                            r"batch_norm=False\)"):
        configurations.check_budget(load("seed_2d"), 1_000_000)


def test_wide_spaces_reach_far_below_the_seed():
    smallest_2d, _ = configurations.smallest_configuration(load("cnn2d"))
    smallest_1d, _ = configurations.smallest_configuration(load("cnn1d"))
    assert smallest_2d < 1_000 and smallest_1d < 1_000  # the seed's smallest: 1,338,448 (1D)
