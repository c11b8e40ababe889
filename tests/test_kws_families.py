"""The DS-CNN, TC-ResNet and BC-ResNet families: their defaults are the reference models (the fixed spaces
dscnn_s, tcresnet8 and bcresnet1 take them), the published variants have their papers' counts, values outside a domain are refused naming the
hyperparameter, and on random configurations the Keras model agrees with the walk block by block (params,
and MACs counted independently over the built layers)."""

import math
import random

import pytest
from conftest import assert_build_matches_walk

from tuner_app.errors import InfeasibleConfig
from tuner_app.model.architecture import spec
from tuner_app.model.architecture.kws_families import (
    BCRESNET_HYPERPARAMETERS,
    DSCNN_HYPERPARAMETERS,
    TCRESNET_HYPERPARAMETERS,
    bcresnet_spec,
    dscnn_spec,
    tcresnet_spec,
)

FAMILIES = {
    "dscnn": (dscnn_spec, DSCNN_HYPERPARAMETERS),
    "tcresnet": (tcresnet_spec, TCRESNET_HYPERPARAMETERS),
    "bcresnet": (bcresnet_spec, BCRESNET_HYPERPARAMETERS),
}
MFCC_10x49, FEATURES_40x98 = (10, 49, 1), (40, 98, 1)
CASES_PER_FAMILY = 12


def _with(family, **changes):
    return {**FAMILIES[family][1], **changes}


def test_hyperparameter_names_defaults_and_types_are_the_contract():
    # The names are YAML keys, keras-tuner names and MLflow params; a default's type is its hp's type.
    contract = {
        "dscnn": {"dscnn_filters": 64, "dscnn_blocks": 4, "dscnn_kernel_freq": 4, "dscnn_kernel_time": 10,
                  "dscnn_stride": 2, "dscnn_dropout": 0.4},
        "tcresnet": {"tcresnet_width": 1.0, "tcresnet_depth": 8, "tcresnet_kernel": 9, "tcresnet_dropout": 0.5},
        "bcresnet": {"bcresnet_width": 8, "bcresnet_sub_bands": 5, "bcresnet_dropout": 0.1},
    }
    for family, (_, defaults) in FAMILIES.items():
        assert defaults == contract[family]
        assert {name: type(value) for name, value in defaults.items()} == \
               {name: type(value) for name, value in contract[family].items()}


@pytest.mark.parametrize("family, shape, trainable, total", [
    ("dscnn", MFCC_10x49, 23_756, 24_908),  # DS-CNN-S, MLPerf Tiny's Keras model
    ("tcresnet", FEATURES_40x98, 65_168, 65_824),  # TC-ResNet8
    ("bcresnet", FEATURES_40x98, 9_232, 11_648),  # BC-ResNet-1
])
def test_family_defaults_walk_to_the_reference_counts(family, shape, trainable, total):
    make, defaults = FAMILIES[family]
    walk = spec.walk(make(defaults, 12), shape, 12)
    assert (walk.params_trainable, walk.params_total) == (trainable, total)
    assert walk.output_shape == (12,)


# (depth, width, the paper's count in K, every variable the reference code creates): hyperconnect/TC-ResNet's
# slim convs are bias-free with BN (beta, gamma, moving mean and variance), and beside the classifier it
# builds an unused bias-free 2-output `fc2` head. So the code's count is our total + 2 x the last width.
TC_RESNET_PUBLISHED = [(8, 1.0, 66, 65_920), (14, 1.0, 137, 137_024), (8, 1.5, 145, 145_392),
                       (14, 1.5, 305, 304_752)]


@pytest.mark.parametrize("depth, width, paper_k, code_count", TC_RESNET_PUBLISHED)
def test_published_tc_resnets_have_the_papers_counts(depth, width, paper_k, code_count):
    values = _with("tcresnet", tcresnet_depth=depth, tcresnet_width=width)
    walk = spec.walk(tcresnet_spec(values, 12), FEATURES_40x98, 12)
    assert abs(walk.params_trainable - paper_k * 1000) <= 0.02 * paper_k * 1000
    unused_head = 2 * int(48 * width)
    assert walk.params_total + unused_head == code_count
    assert round(code_count / 1000) == paper_k


def test_tc_resnet14_adds_a_stride_one_block_with_an_identity_shortcut_per_stage():
    blocks = tcresnet_spec(_with("tcresnet", tcresnet_depth=14), 12)
    residual = [(block.filters, block.stride) for block in blocks if block.kind == "temporal_residual"]
    assert residual == [(24, 2), (24, 1), (32, 2), (32, 1), (48, 2), (48, 1)]
    walk = spec.walk(blocks, FEATURES_40x98, 12)
    stride_one = [row for row in walk.rows if row.kind == "temporal_residual"][1::2]
    for row in stride_one:
        width = row.output_shape[-1]
        assert row.input_shape == row.output_shape
        assert row.trainable == 2 * 9 * width * width + 2 * 2 * width  # two convs and two BNs, no projection


# Qualcomm-AI-research/bcresnet's code at 12 classes (tests/test_residual_blocks.py) and the paper's counts.
BC_RESNET_PUBLISHED = [(16, 27_300, 27_284), (24, 54_200, 54_168), (48, 187_900, 187_812),
                       (64, 321_000, 321_068)]


@pytest.mark.parametrize("width, paper, code_count", BC_RESNET_PUBLISHED)
def test_published_bc_resnets_have_the_papers_counts(width, paper, code_count):
    walk = spec.walk(bcresnet_spec(_with("bcresnet", bcresnet_width=width), 12), FEATURES_40x98, 12)
    assert walk.params_trainable == code_count
    assert abs(walk.params_trainable - paper) <= 0.02 * paper


@pytest.mark.parametrize("family, name, value, message", [
    ("dscnn", "dscnn_filters", 0, "an integer of at least 1, not 0"),
    ("dscnn", "dscnn_blocks", 0, "at least 1"),
    ("dscnn", "dscnn_kernel_freq", -1, "at least 1"),
    ("dscnn", "dscnn_kernel_time", 2.5, "an integer"),
    ("dscnn", "dscnn_stride", True, "an integer"),
    ("dscnn", "dscnn_dropout", 1.0, r"a rate in \[0, 1\), not 1.0"),
    ("tcresnet", "tcresnet_depth", 10, "8 or 14, not 10"),
    ("tcresnet", "tcresnet_depth", 8.0, "8 or 14"),
    ("tcresnet", "tcresnet_width", 0.1, "a number of at least 0.125"),
    ("tcresnet", "tcresnet_width", math.inf, "at least 0.125"),
    ("tcresnet", "tcresnet_width", "1.0", "a number"),
    ("tcresnet", "tcresnet_kernel", 0, "at least 1"),
    ("tcresnet", "tcresnet_dropout", math.nan, "a rate"),
    ("bcresnet", "bcresnet_width", 0, "at least 1"),
    ("bcresnet", "bcresnet_sub_bands", 0, "at least 1"),
    ("bcresnet", "bcresnet_dropout", -0.1, "a rate"),
])
def test_values_outside_their_domain_are_refused_naming_the_hyperparameter(family, name, value, message):
    make, _ = FAMILIES[family]
    with pytest.raises(InfeasibleConfig, match=f"^{name} must be .*{message}"):
        make(_with(family, **{name: value}), 12)


def _another_value(name, value):
    if name == "tcresnet_depth":
        return 14
    return value + 1 if isinstance(value, int) else value / 2


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_hyperparameter_is_required_and_shapes_the_spec(family):
    make, defaults = FAMILIES[family]
    reference = make(defaults, 12)
    for name, value in defaults.items():
        with pytest.raises(KeyError, match=name):
            make({key: val for key, val in defaults.items() if key != name}, 12)
        assert make({**defaults, name: _another_value(name, value)}, 12) != reference, name


def _dscnn_case(rng):
    values = {"dscnn_filters": rng.randint(1, 12), "dscnn_blocks": rng.randint(1, 4),
              "dscnn_kernel_freq": rng.randint(1, 6), "dscnn_kernel_time": rng.randint(1, 12),
              "dscnn_stride": rng.randint(1, 3), "dscnn_dropout": rng.choice([0.0, 0.2, 0.5])}
    return values, (rng.randint(3, 16), rng.randint(5, 49), 1)


def _tcresnet_case(rng):
    values = {"tcresnet_width": rng.choice([0.125, 0.25, 0.3, 0.5]), "tcresnet_depth": rng.choice([8, 14]),
              "tcresnet_kernel": rng.randint(1, 11), "tcresnet_dropout": rng.choice([0.0, 0.5])}
    return values, (rng.randint(2, 40), rng.randint(16, 98), 1)


def _bcresnet_case(rng):
    values = {"bcresnet_width": rng.randint(1, 5), "bcresnet_sub_bands": rng.randint(1, 5),
              "bcresnet_dropout": rng.choice([0.0, 0.1, 0.3])}
    return values, (rng.randint(20, 48), rng.randint(17, 40), 1)


DRAWS = {"dscnn": _dscnn_case, "tcresnet": _tcresnet_case, "bcresnet": _bcresnet_case}


def _feasible_cases(family, seed):
    """CASES_PER_FAMILY (values, input shape, n_classes) that the walk accepts, and how many it refused."""
    rng, cases, refused = random.Random(seed), [], 0
    while len(cases) < CASES_PER_FAMILY:
        values, shape = DRAWS[family](rng)
        assert set(values) == set(FAMILIES[family][1])
        n_classes = rng.randint(2, 12)
        try:
            spec.walk(FAMILIES[family][0](values, n_classes), shape, n_classes)
        except InfeasibleConfig:
            refused += 1
            continue
        cases.append((values, shape, n_classes))
    return cases, refused


@pytest.mark.parametrize("family, seed", [("dscnn", 1), ("tcresnet", 2), ("bcresnet", 3)])
def test_random_configurations_build_as_they_walk_block_by_block(family, seed):
    cases, refused = _feasible_cases(family, seed)
    for values, shape, n_classes in cases:
        assert_build_matches_walk(FAMILIES[family][0](values, n_classes), shape, n_classes)
    if family == "tcresnet":
        assert {values["tcresnet_depth"] for values, _, _ in cases} == {8, 14}
    if family == "bcresnet":
        assert refused > 0, "the draws should also hit inputs the sub-bands do not divide"
        assert max(values["bcresnet_sub_bands"] for values, _, _ in cases) > 1
