"""The seed family as a spec of blocks: its walk gives exactly the counts, MACs and feasibility of
`architecture` for every seed-grid configuration and for seeded samples of the wide spaces, reproduces the
seed's 18 published counts, and builds the same layers as `build.build_model`."""

import dataclasses
import pathlib

import pytest

from tuner_app.errors import InfeasibleConfig, TunerAppError
from tuner_app.features import frontend
from tuner_app.model import architecture, build, configurations, families, spaces, spec

SPACES = pathlib.Path(__file__).resolve().parent.parent / "search_spaces"
SAMPLES = 200
# The seed study's published totals, batch norm off, in grid order (conv 1.. x FC 1-2), 16 classes.
SEED_2D = [49_956_064, 50_472_672, 22_368_624, 22_885_232, 8_586_128, 9_102_736, 2_640_848, 3_157_456]
SEED_1D = [32_736_480, 33_253_088, 16_290_160, 16_806_768, 7_996_304, 8_512_912, 3_689_424, 4_206_032,
           1_338_448, 1_855_056]


def load(name):
    return spaces.load(SPACES / f"{name}.yaml")


def walk_or_none(space, values, n_classes):
    """The walk of the seed spec, or None if it refuses the configuration as infeasible."""
    try:
        return spec.walk(families.seed_spec(space, values), frontend.output_shape(space.frontend), n_classes)
    except InfeasibleConfig:
        return None


def assert_walk_matches_architecture(space, values, n_classes):
    """The walk agrees with architecture's counts and MACs; returns whether the configuration is feasible."""
    walk = walk_or_none(space, values, n_classes)
    try:
        counts = architecture.count_params(space, values, n_classes)
    except InfeasibleConfig:
        assert walk is None, ("the walk accepts what architecture refuses", values)
        return False
    assert walk is not None, ("the walk refuses what architecture accepts", values)
    assert (walk.params_total, walk.params_trainable) == (counts["params_total"], counts["params_trainable"]), values
    assert walk.macs == architecture.count_macs(space, values, n_classes), values
    assert walk.output_shape == (n_classes,)
    return True


@pytest.mark.parametrize("n_classes", [16, 10])
@pytest.mark.parametrize("name", ["seed_2d", "seed_1d"])
def test_walk_matches_architecture_on_every_seed_grid_configuration(name, n_classes):
    grid = configurations.configurations(load(name))
    feasible = [assert_walk_matches_architecture(load(name), values, n_classes) for values in grid]
    assert len(grid) == 5 * 2 * 2
    assert feasible.count(False) == {"seed_2d": 4, "seed_1d": 0}[name]


@pytest.mark.parametrize("n_classes", [16, 10])
@pytest.mark.parametrize("name", ["cnn2d", "cnn1d", "default"])
def test_walk_matches_architecture_on_seeded_samples(name, n_classes):
    space = load(name)
    feasible = [assert_walk_matches_architecture(space, values, n_classes)
                for values in configurations.configurations(space, trials=SAMPLES, seed=n_classes)]
    assert feasible.count(True) > SAMPLES // 2
    if name != "default":  # the wide spaces hold collapsing stacks too, and the walk must refuse them
        assert feasible.count(False) > 0


@pytest.mark.parametrize("name, published", [("seed_2d", SEED_2D), ("seed_1d", SEED_1D)])
def test_walk_reproduces_the_seeds_published_counts(name, published):
    space = load(name)
    walks = [walk_or_none(space, values, 16) for values in configurations.configurations(space)
             if not values["batch_norm"]]
    assert [walk.params_total for walk in walks if walk is not None] == published


def test_seed_spec_refuses_a_space_of_another_model_naming_its_file():
    space = load("smoke")
    other = dataclasses.replace(space, model="dscnn")
    with pytest.raises(TunerAppError, match=r"smoke\.yaml: model: .*dscnn.* not .*seed"):
        families.seed_spec(other, configurations.configurations(space, trials=1)[0])


SMALL = [
    ("cnn2d", {"conv_layers": 3, "filters": 4, "filter_growth": 2, "kernel_size": 3, "batch_norm": True,
               "head": "gap", "fc_layers": 2, "fc_units_1": 16, "fc_units_2": 16, "dropout": 0.3}),
    ("cnn2d", {"conv_layers": 2, "filters": 4, "filter_growth": 1, "kernel_size": 5, "batch_norm": False,
               "head": "flatten", "fc_layers": 0}),
    ("default", {"conv_layers": 4, "filters": 4, "fc_units_1": 32}),
    ("cnn1d", {"conv_layers": 3, "filters": 8, "filter_growth": 2, "kernel_size": 9, "batch_norm": True,
               "head": "flatten", "fc_layers": 1, "fc_units_1": 16, "dropout": 0.1}),
    ("cnn1d", {"conv_layers": 2, "filters": 8, "filter_growth": 1, "kernel_size": 25, "batch_norm": False,
               "head": "gap", "fc_layers": 0}),
]


def _layers(model):
    """Per layer: its type, activation, output shape, trainable and total parameter counts."""
    return [(type(layer).__name__, layer.get_config().get("activation"), tuple(layer.output.shape[1:]),
             sum(int(weight.numpy().size) for weight in layer.trainable_weights), layer.count_params())
            for layer in model.layers]


@pytest.mark.parametrize("name, overrides", SMALL)
def test_spec_build_matches_build_model_layer_by_layer(name, overrides):
    space = load(name)
    values = {**configurations.configurations(space, trials=1)[0], **overrides}
    n_classes = 10
    built = build.build_model(space, values, n_classes)
    from_spec = spec.build(families.seed_spec(space, values), frontend.output_shape(space.frontend), n_classes)
    assert _layers(from_spec) == _layers(built)
    assert from_spec.count_params() == built.count_params()
