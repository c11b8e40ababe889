"""Search-space YAML loading: the shipped spaces and the error messages for broken files."""

import math
import pathlib
import re
from pathlib import Path

import pytest
import yaml

from tuner_app.errors import TunerAppError
from tuner_app.model.space import bounded_yaml, search_space

SPACES = pathlib.Path(__file__).resolve().parent.parent / "search_spaces"


def write_space(tmp_path, document, name="space.yaml"):
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False))
    return path


def seed_document():
    return yaml.safe_load((SPACES / "seed_2d.yaml").read_text())


@pytest.mark.parametrize("name", ["seed_2d", "seed_1d", "smoke"])
def test_shipped_spaces_load(name):
    space = search_space.load(SPACES / f"{name}.yaml")
    assert space.source == f"{name}.yaml"
    assert space.model == ("cnn1d" if name == "seed_1d" else "cnn2d")


def test_seed_2d_keeps_yaml_order_and_tuner():
    space = search_space.load(SPACES / "seed_2d.yaml")
    assert list(space.hyperparameters)[:3] == ["conv_layers", "fc_layers", "batch_norm"]
    assert space.tuner == {"name": "grid"}
    assert space.training == {"epochs": 10, "batch_size": 64, "patience": 3, "seed": 0, "chance_epochs": 5,
                              "monitor": "val_loss", "int8": False}


def test_missing_hyperparameters_take_model_defaults(tmp_path):
    space = search_space.load(write_space(tmp_path, {"model": "cnn1d", "frontend": {"kind": "waveform"}}))
    fixed = {name: spec["value"] for name, spec in space.hyperparameters.items()}
    assert fixed["kernel_size"] == 25 and fixed["pool_size"] == 4
    assert fixed["fc_units_1"] == 1024 and fixed["learning_rate"] == 0.001


def expect_error(tmp_path, document, message):
    with pytest.raises(TunerAppError) as err:
        search_space.load(write_space(tmp_path, document, "seed_2d.yaml"))
    assert message in str(err.value)
    return str(err.value)


def test_wrong_type_names_file_key_and_expectation(tmp_path):
    document = seed_document()
    document["hyperparameters"]["conv_layers"]["max_value"] = "four"
    expect_error(tmp_path, document,
                 "seed_2d.yaml: hyperparameters.conv_layers.max_value: expected int, got 'four'")


@pytest.mark.parametrize("where, key", [
    ((), "optimizer"), (("hyperparameters",), "depth"), (("hyperparameters", "filters"), "min_value"),
    (("training",), "epoch"), (("tuner",), "max_epochs"), (("objective",), "mode"),
])
def test_unknown_keys_are_rejected_at_every_level(tmp_path, where, key):
    document = seed_document()
    section = document
    for part in where:
        section = section[part]
    section[key] = 1
    path = ".".join([*where, key])
    expect_error(tmp_path, document, f"seed_2d.yaml: {path}: unknown")


def test_unknown_frontend_key(tmp_path):
    document = seed_document()
    document["frontend"]["hop"] = 3
    expect_error(tmp_path, document, "seed_2d.yaml: frontend.hop: unknown key")


def test_empty_int_range(tmp_path):
    document = seed_document()
    document["hyperparameters"]["conv_layers"] = {"type": "int", "min_value": 4, "max_value": 1}
    expect_error(tmp_path, document, "hyperparameters.conv_layers: empty range: min_value 4 > max_value 1")


def test_empty_choice(tmp_path):
    document = seed_document()
    document["hyperparameters"]["head"] = {"type": "choice", "values": []}
    expect_error(tmp_path, document, "hyperparameters.head.values: expected a non-empty list")


def test_bad_choice_value(tmp_path):
    document = seed_document()
    document["hyperparameters"]["head"] = {"type": "choice", "values": ["flatten", "attention"]}
    expect_error(tmp_path, document, "hyperparameters.head.values[1]: expected one of ['flatten', 'gap']")


def test_unknown_tuner(tmp_path):
    document = seed_document()
    document["tuner"] = {"name": "annealing"}
    expect_error(tmp_path, document, "seed_2d.yaml: tuner.name: expected one of")


def test_unknown_model(tmp_path):
    document = seed_document()
    document["model"] = "rnn"
    expect_error(tmp_path, document, "seed_2d.yaml: model: expected one of ['cnn1d', 'cnn2d', 'dscnn', 'tcresnet', 'bcresnet', 'family'], got 'rnn'")


def test_model_frontend_mismatch(tmp_path):
    document = seed_document()
    document["model"] = "cnn1d"
    expect_error(tmp_path, document, "frontend.kind: model cnn1d needs waveform")


def test_unknown_hyperparameter_type(tmp_path):
    document = seed_document()
    document["hyperparameters"]["dropout"] = {"type": "normal", "value": 0.1}
    expect_error(tmp_path, document, "hyperparameters.dropout.type: expected one of")


def test_missing_fc_units_for_deeper_fc(tmp_path):
    document = seed_document()
    document["hyperparameters"]["fc_layers"]["max_value"] = 3
    expect_error(tmp_path, document, "seed_2d.yaml: hyperparameters.fc_units_3: missing")


def test_malformed_yaml_names_line(tmp_path):
    text = "model: cnn2d\nhyperparameters:\n  conv_layers: {type: int, min_value: 1\n"
    message = expect_error(tmp_path, text, "seed_2d.yaml: malformed YAML at line")
    assert "line 4" in message or "line 3" in message


def test_declare_creates_every_hyperparameter():
    import keras_tuner

    space = search_space.load(SPACES / "seed_2d.yaml")
    hp = keras_tuner.HyperParameters()
    search_space.declare(hp, space)
    assert [item.name for item in hp.space] == list(space.hyperparameters)
    assert hp.get("conv_layers") == 1 and hp.get("fc_units_1") == 1024
    assert not hp.is_active("fc_units_2")  # fc_layers' default is 1: fc_units_2 is in the scope of fc_layers=2


@pytest.mark.parametrize("name, spec, message", [
    ("dropout", {"type": "fixed", "value": 1.0}, "hyperparameters.dropout: values must be in [0.0, 1.0)"),
    ("kernel_size", {"type": "choice", "values": [0, 3]},
     "hyperparameters.kernel_size: values must be from 1 to 65,536"),
    ("batch_norm", {"type": "int", "min_value": 0, "max_value": 1}, "batch_norm.type: this hyperparameter takes bool"),
    ("fc_units_1", {"type": "int", "min_value": 8}, "hyperparameters.fc_units_1.max_value: missing"),
])
def test_hyperparameter_values_are_checked(tmp_path, name, spec, message):
    document = seed_document()
    document["hyperparameters"][name] = spec
    expect_error(tmp_path, document, message)


def test_unknown_hyperparameter_name(tmp_path):
    document = seed_document()
    document["hyperparameters"]["depthwise"] = {"type": "boolean"}
    expect_error(tmp_path, document, "seed_2d.yaml: hyperparameters.depthwise: unknown hyperparameter")


def test_unused_fc_units_defaults_are_dropped():
    smoke = search_space.load(SPACES / "smoke.yaml")
    assert "fc_units_1" in smoke.hyperparameters and "fc_units_2" not in smoke.hyperparameters


def test_locate_finds_a_space_by_name_or_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./search_spaces here: the source tree's folder answers
    assert search_space.locate("cnn2d") == SPACES.resolve() / "cnn2d.yaml"
    mine = tmp_path / "search_spaces" / "cnn2d.yaml"
    mine.parent.mkdir()
    mine.write_text("model: cnn2d\n")
    assert search_space.locate("cnn2d").resolve() == mine  # the working directory's own spaces come first
    assert search_space.locate("elsewhere/x.yaml") == Path("elsewhere/x.yaml")
    with pytest.raises(TunerAppError, match=r"--space nope: no such file, and no space of that name \(known: .*seed_2d"):
        search_space.locate("nope")


def test_the_default_space_is_tc_resnet_on_log_mel():
    space = search_space.load(SPACES / "default.yaml")
    assert space.model == "tcresnet" and space.frontend.kind == "mel" and space.frontend.num_mel_bins == 40
    assert space.hyperparameters["tcresnet_width"]["values"] == [1.0, 1.5]


@pytest.mark.parametrize("name", ["cnn2d", "cnn1d"])
def test_wide_spaces_load(name):
    space = search_space.load(SPACES / f"{name}.yaml")
    assert space.model == name
    assert space.hyperparameters["head"]["type"] in ("choice", "fixed")


# --- bounded input (issue 23): a space's size, aliases, depth and numbers are checked before they cost -------

def smoke_document():
    return yaml.safe_load((SPACES / "smoke.yaml").read_text())


@pytest.mark.parametrize("section, key, value, message", [
    ("tuner", "max_trials", 0, "tuner.max_trials: expected a number from 1 to 100,000, got 0"),
    ("tuner", "max_trials", 10**6, "tuner.max_trials: expected a number from 1 to 100,000, got 1000000"),
    ("tuner", "executions_per_trial", 0, "tuner.executions_per_trial: expected a number from 1 to 100, got 0"),
    ("tuner", "max_retries_per_trial", -1, "tuner.max_retries_per_trial: expected a number from 0 to 100"),
    ("tuner", "max_consecutive_failed_trials", 0, "tuner.max_consecutive_failed_trials: expected a number from 1"),
    ("tuner", "seed", -1, "tuner.seed: expected a number from 0 to 4,294,967,295, got -1"),
    ("tuner", "seed", 2**32, "tuner.seed: expected a number from 0 to 4,294,967,295, got 4294967296"),
    ("training", "seed", 2**32, "training.seed: expected a number from 0 to 4,294,967,295, got 4294967296"),
    ("training", "batch_size", 2**63, "training.batch_size: expected a number from 1 to 65,536"),
    ("training", "epochs", 10**9, "training.epochs: expected a number from 1 to 10,000"),
])
def test_tuner_and_training_numbers_are_within_their_range(section, key, value, message):
    document = smoke_document()
    document[section][key] = value
    with pytest.raises(TunerAppError, match=r"^smoke.yaml: " + re.escape(message)):
        search_space.from_dict(document, "smoke.yaml")


@pytest.mark.parametrize("tuner, message", [
    ({"name": "bayesian", "max_trials": 5, "num_initial_points": 0}, "tuner.num_initial_points: expected a number "
                                                                     "from 1 to 100,000, got 0"),
    ({"name": "bayesian", "max_trials": 5, "alpha": math.nan}, "tuner.alpha: expected a number from 1e-12"),
    ({"name": "bayesian", "max_trials": 5, "beta": -1.0}, "tuner.beta: expected a number from 0.0"),
    ({"name": "hyperband", "factor": 1}, "tuner.factor: expected a number from 2 to 100, got 1"),
    ({"name": "hyperband", "max_epochs": 0}, "tuner.max_epochs: expected a number from 1 to 10,000, got 0"),
    ({"name": "hyperband", "hyperband_iterations": 0}, "tuner.hyperband_iterations: expected a number from 1"),
    ({"name": "pareto", "max_trials": 5, "gap_candidates": 0}, "tuner.gap_candidates: expected a number from 1"),
])
def test_each_tuners_options_are_within_their_range(tuner, message):
    with pytest.raises(TunerAppError, match=r"^smoke.yaml: " + re.escape(message)):
        search_space.from_dict({**smoke_document(), "tuner": tuner}, "smoke.yaml")


def test_only_grid_may_leave_max_trials_out_and_none_may_ask_for_zero():
    # issue 23, case 8: max_trials 0 searched every configuration, printing [1/0], [2/0], ...
    for name in ("grid", "random", "pareto"):
        with pytest.raises(TunerAppError, match=r"^smoke.yaml: tuner.max_trials: expected a number from 1"):
            search_space.from_dict({**smoke_document(), "tuner": {"name": name, "max_trials": 0}}, "smoke.yaml")
    grid = search_space.from_dict({**smoke_document(), "tuner": {"name": "grid"}}, "smoke.yaml")
    assert grid.tuner == {"name": "grid"}


@pytest.mark.parametrize("name, spec, message", [
    # issue 23, case 2: listing these values took 22.5 GB; now a domain refuses them before anything is listed
    ("conv_layers", {"type": "int", "min_value": 1, "max_value": 10**9}, "conv_layers: values must be from 1 to 32"),
    ("fc_layers", {"type": "int", "min_value": 0, "max_value": 10**8}, "fc_layers: values must be from 0 to 16"),
    ("filters", {"type": "choice", "values": [8, 10**6]}, "filters: values must be from 1 to 65,536"),
    ("frame_length", {"type": "int", "min_value": 1, "max_value": 2**63}, "frame_length: values must be from 1"),
    ("filter_growth", {"type": "fixed", "value": 10**50}, "filter_growth: values must be from 1 to 65,536"),
    ("fc_units_17", {"type": "fixed", "value": 8}, "fc_units_17: unknown hyperparameter for model cnn2d"),
    ("dropout", {"type": "float", "min_value": math.nan, "max_value": 0.5}, "dropout.min_value: expected a finite"),
    ("learning_rate", {"type": "float", "min_value": 1e-4, "max_value": math.inf},
     "learning_rate.max_value: expected a finite number, got inf"),
    ("kernel_size", {"type": "int", "min_value": 0, "max_value": 9, "sampling": "log"},
     "kernel_size.min_value: sampling log needs a positive min_value, got 0"),
    ("filters", {"type": "int", "min_value": 4, "max_value": 64, "step": 1, "sampling": "log"},
     "filters.step: sampling log multiplies by the step: it must be above 1, got 1"),
])
def test_hyperparameters_are_refused_beyond_their_domain_without_listing_it(tmp_path, name, spec, message):
    document = smoke_document()
    document["hyperparameters"][name] = spec
    with pytest.raises(TunerAppError, match=r"^smoke.yaml: hyperparameters\." + re.escape(message)):
        search_space.load(write_space(tmp_path, document, "smoke.yaml"))



def test_a_space_file_is_refused_beyond_its_size_before_it_is_parsed(tmp_path):
    path = tmp_path / "padded.yaml"
    path.write_text((SPACES / "smoke.yaml").read_text() + "#" * bounded_yaml.MAX_BYTES)
    with pytest.raises(TunerAppError, match=r"^padded.yaml: larger than 1,024 KiB, the most a search space may be"):
        search_space.load(path)


def _laughs(levels: int) -> str:
    """10 ** (levels + 1) ones in a flow list of 10 values and 9 aliases per level (a 'billion laughs')."""
    ones = "[" + ", ".join(["1"] * 10) + "]"
    return ones if levels == 0 else f"[&l{levels} {_laughs(levels - 1)}, " + ", ".join([f"*l{levels}"] * 9) + "]"


@pytest.mark.parametrize("text, message", [
    (f"model: {_laughs(4)}\n", "line 1: more than 20,000 values, each alias counted as the values it repeats"),
    (f"model: {_laughs(3)}\n", "model: expected one of"),  # 10,000 values: within the bound, and only a wrong model
    ("model: &loop [*loop]\n", "line 1: alias *loop is inside its own anchor"),
    ("model: " + "[" * 65 + "]" * 65 + "\n", "line 1: nested deeper than 64 levels; a search space needs 4"),
    ("tuner: {max_trials: " + "9" * 101 + "}\n", "line 1: an integer of 101 characters; at most 100"),
    ("model: cnn2d\x00\n", "malformed YAML: unacceptable character #x0000: special characters are not allowed, "
                            "position 12"),
])
def test_aliases_nesting_and_numbers_are_bounded_as_the_yaml_is_composed(tmp_path, text, message):
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    with pytest.raises(TunerAppError) as refused:
        search_space.load(path)
    assert str(refused.value).startswith(f"hostile.yaml: {message}") and "\n" not in str(refused.value)
