"""Families as conditional spaces: the reference spaces' published counts (the seed grids': test_hypermodel), no aliases
from inactive hyperparameters, grids that enumerate only active combinations (also keras-tuner's grid), and
the built model (front-end layer included) equal to the walk for random configurations of every family."""

import pathlib
import random

import keras_tuner
import pytest
import yaml

from tuner_app.device import budget
from tuner_app.errors import InfeasibleConfig, TunerAppError
from tuner_app.model.architecture import build, configured, space_sizes
from tuner_app.model.space import configurations, search_space
from tuner_app.model.space import hyperparameters as hps
from tuner_app.search import oracles

SPACES = pathlib.Path(__file__).resolve().parent.parent / "search_spaces"


def load(name):
    return search_space.load(SPACES / f"{name}.yaml")


def from_document(document, name="family.yaml"):
    return search_space.from_dict(yaml.safe_load(yaml.safe_dump(document)), name)


@pytest.mark.parametrize("name, trainable", [("dscnn_s", 23_756), ("tcresnet8", 65_168), ("bcresnet1", 9_232)])
def test_reference_spaces_have_their_published_trainable_counts(name, trainable):
    space = load(name)
    (values,) = configurations.configurations(space)
    assert configured.sizes(space, values, n_classes=12)["params_trainable"] == trainable


def _model_key(space, values):
    """What the trained model depends on: front-end, blocks, and the recipe (every other value)."""
    return (configured.frontend_config(space, values), tuple(configured.blocks(space, values)),
            configured.family_of(space, values))


CNN2D_FINITE = {
    "model": "cnn2d",
    "hyperparameters": {
        "conv_layers": {"type": "int", "min_value": 1, "max_value": 2},
        "head": {"type": "choice", "values": ["gap", "flatten"]},
        "fc_layers": {"type": "int", "min_value": 0, "max_value": 2},
        "fc_units_1": {"type": "choice", "values": [16, 32]},
        "fc_units_2": {"type": "choice", "values": [16, 32]},
        "dropout": {"type": "choice", "values": [0.0, 0.3, 0.5]},
    },
}


def test_inactive_fc_hyperparameters_make_no_aliases():
    space = from_document(CNN2D_FINITE, "cnn2d.yaml")
    grid = configurations.configurations(space)
    without_fc = [values for values in grid if values["fc_layers"] == 0]
    # Before: 2 x 2 x 3 = 12 aliases of each fc_layers=0 model; now one configuration per model.
    assert len(without_fc) == 2 * 2 and all("fc_units_1" not in values and "dropout" not in values
                                            for values in without_fc)
    assert len(grid) == 2 * 2 * (1 + 2 * 3 + 2 * 2 * 3)
    keys = [(_model_key(space, values), values.get("dropout")) for values in grid]
    assert len(set(map(repr, keys))) == len(grid)


FAMILY_SPACE = {
    "model": "family",
    "frontend": {"kind": "mel", "num_mel_bins": 40, "frame_length": 480, "frame_step": 160},
    "frontends": {"mel40": {}, "mfcc10": {"kind": "mfcc", "num_mfccs": 10}},
    "hyperparameters": {
        "family": {"type": "choice", "values": ["dscnn", "bcresnet", "tcresnet"]},
        "frontend": {"type": "choice", "values": ["mel40", "mfcc10"]},
        "dscnn_filters": {"type": "choice", "values": [8, 16]},
        "bcresnet_width": {"type": "choice", "values": [4, 8]},
        "tcresnet_width": {"type": "fixed", "value": 0.5},
    },
    "tuner": {"name": "grid"},
}


def test_a_grid_over_families_enumerates_only_active_combinations():
    space = from_document(FAMILY_SPACE)
    grid = configurations.configurations(space)
    assert len(grid) == 2 * (2 + 2 + 1)  # frontends x (dscnn widths + bcresnet widths + tcresnet)
    for values in grid:
        own = {name for name in values if name.split("_")[0] in ("dscnn", "bcresnet", "tcresnet")}
        assert all(name.startswith(values["family"]) for name in own), values
    assert len({repr(_model_key(space, values)) for values in grid}) == len(grid)


def test_keras_tuners_grid_walks_the_same_active_configurations(tmp_path):
    space = from_document(FAMILY_SPACE)
    oracle = oracles.GridSearchOracle(space, None, 10, objective=keras_tuner.Objective("val_accuracy", "max"),
                                      max_trials=100)
    oracle._set_project_dir(str(tmp_path), "grid")
    declared = keras_tuner.HyperParameters()
    search_space.declare(declared, space)
    oracle.update_space(declared)  # what the tuner does with its hypermodel's hyperparameters
    seen = []
    while True:
        trial = oracle.create_trial("worker")
        if trial.status != "RUNNING":
            break
        seen.append(dict(trial.hyperparameters.values))
        oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
        oracle.end_trial(trial)
    feasible = [values for values in configurations.configurations(space)
                if budget.misfit(space, values, None, 10)[1] is None]
    assert sorted(map(repr, seen)) == sorted(map(repr, feasible))
    rejected = [entry["reason"] for entry in oracle.rejections]
    assert len(seen) + len(rejected) == len(configurations.configurations(space))


def test_a_configuration_the_front_end_cannot_carry_is_infeasible():
    space = from_document(FAMILY_SPACE)
    values = hps.completed(space.hyperparameters, {"family": "bcresnet", "frontend": "mfcc10"})
    with pytest.raises(InfeasibleConfig, match="b0"):  # 10 MFCCs halve to 3 rows: 5 sub-bands cannot split them
        configured.sizes(space, values)
    assert configured.sizes(space, {**values, "frontend": "mel40"})["params_total"] > 0


@pytest.mark.parametrize("document, message", [
    ({**FAMILY_SPACE, "model": "cnn2d"}, "hyperparameters.family: only with `model: family`"),
    ({**FAMILY_SPACE, "hyperparameters": {"frontend": {"type": "fixed", "value": "mel40"}}},
     "hyperparameters.family: missing"),
    ({**FAMILY_SPACE, "hyperparameters": {**FAMILY_SPACE["hyperparameters"],
                                          "family": {"type": "choice", "values": ["dscnn", "rnn"]}}},
     "hyperparameters.family.values[1]: expected one of"),
    ({**FAMILY_SPACE, "hyperparameters": {**FAMILY_SPACE["hyperparameters"],
                                          "frontend": {"type": "choice", "values": ["mel64"]}}},
     "hyperparameters.frontend.values[0]: expected one of ['mel40', 'mfcc10']"),
    ({**FAMILY_SPACE, "hyperparameters": {**FAMILY_SPACE["hyperparameters"],
                                          "dscnn_filters": {"type": "fixed", "value": 8,
                                                            "conditional_scope": {"frontend": ["mel64"]}}}},
     "dscnn_filters.conditional_scope.frontend: 'mel64' is not a value of frontend"),
    ({**FAMILY_SPACE, "hyperparameters": {**FAMILY_SPACE["hyperparameters"],
                                          "conv_layers": {"type": "fixed", "value": 2}}},
     "hyperparameters.conv_layers: unknown hyperparameter for model family"),
    ({**FAMILY_SPACE, "hyperparameters": {**FAMILY_SPACE["hyperparameters"],
                                          "warmup_epochs": {"type": "fixed", "value": 10}}},
     "hyperparameters.warmup_epochs: values must be below the 10 training epochs"),
])
def test_bad_family_spaces_name_the_key(document, message):
    with pytest.raises(TunerAppError) as error:
        from_document(document)
    assert message in str(error.value)


def test_a_user_conditional_scope_nests_inside_the_family_scope():
    document = {**FAMILY_SPACE, "hyperparameters": {
        **FAMILY_SPACE["hyperparameters"],
        "dscnn_blocks": {"type": "choice", "values": [1, 2], "conditional_scope": {"frontend": ["mfcc10"]}}}}
    space = from_document(document)
    assert space.hyperparameters["dscnn_blocks"]["conditional_scope"] == {"family": ["dscnn"], "frontend": ["mfcc10"]}
    grid = configurations.configurations(space)
    assert sum(values["family"] == "dscnn" for values in grid) == 2 * 1 + 2 * 2  # mel40: blocks fixed; mfcc10: 2
    resolved = search_space.from_dict(yaml.safe_load(yaml.safe_dump(search_space.resolved(space))), "again.yaml")
    assert resolved.hyperparameters == space.hyperparameters


def _count_params(model):
    trainable = sum(int(weight.numpy().size) for weight in model.trainable_weights)
    return model.count_params(), trainable


@pytest.mark.parametrize("seed", range(8))
def test_the_built_model_has_the_walks_params_for_random_kws_configurations(seed):
    space = load("kws")
    rng = random.Random(seed)
    for _ in range(50):  # the first feasible draw
        (values,) = configurations.configurations(space, trials=1, seed=rng.randrange(10**6))
        try:
            sizes = configured.sizes(space, values, 10)
        except InfeasibleConfig:
            continue
        if sizes["params_total"] < 400_000:
            break
    model = build.build_model(space, values, 10)
    assert _count_params(model) == (sizes["params_total"], sizes["params_trainable"]), values
    assert model.input_shape == (None, 16000) and model.output_shape == (None, 10)


def test_front_end_keys_as_hyperparameters_set_the_input_and_the_size():
    document = {"model": "dscnn", "frontend": {"kind": "mfcc", "num_mel_bins": 40, "num_mfccs": 10},
                "hyperparameters": {"num_mfccs": {"type": "choice", "values": [10, 20, 64]},
                                    "frame_step": {"type": "choice", "values": [160, 320]},
                                    "dscnn_filters": {"type": "fixed", "value": 8}}}
    space = from_document(document, "frontend.yaml")
    rows = space_sizes.dry_run(space)
    shapes = {(row["hyperparameters"]["num_mfccs"], row["hyperparameters"]["frame_step"]):
              configured.frontend_config(space, row["hyperparameters"]) for row in rows if not row["infeasible"]}
    assert sorted(shapes) == [(10, 160), (10, 320), (20, 160), (20, 320)]
    assert shapes[(20, 320)].num_mfccs == 20 and shapes[(20, 320)].frame_step == 320
    # 64 MFCCs of 40 mel bands cannot be: infeasible, so turned away unspent, and the reason names the key
    assert {row["infeasible"] for row in rows if row["infeasible"]} == {
        "frontend: num_mfccs must be between 1 and num_mel_bins"}
    model = build.build_model(space, rows[0]["hyperparameters"], 10)
    assert model.get_layer("frontend").output.shape[1:] == (10, 99, 1)  # frame 256, step 160: 99 frames
