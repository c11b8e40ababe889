"""Architecture as data: the walk over a spec of blocks agrees with the Keras model built from the same list
(params layer by layer, shapes, MACs counted independently over the built layers), refuses infeasible
specs naming the block, and reproduces DS-CNN-S's published count."""

import random
import subprocess
import sys

import pytest
from conftest import assert_build_matches_walk

from tuner_app.errors import InfeasibleConfig
from tuner_app.model.architecture import kws_families, spec
from tuner_app.model.architecture.blocks import (
    BLOCK_TYPES,
    Conv,
    Dense,
    DepthwiseSeparable,
    Dropout,
    Flatten,
    GlobalAveragePool,
    Pool,
)

N_SPECS = 80


def _kernel(rng, rank):
    if rank == 2 and rng.random() < 0.5:
        return tuple(rng.randint(1, 5) for _ in range(rank))
    return rng.randint(1, 5)


def _feature_block(rng, rank):
    kind = rng.choice(["conv", "conv", "depthwise_separable", "pool", "dropout"])
    padding, stride = rng.choice(["same", "valid"]), rng.choice([1, 1, 2])
    if kind == "conv":
        return Conv(rng.randint(1, 12), _kernel(rng, rank), stride, padding, use_bias=rng.random() < 0.7,
                    batch_norm=rng.random() < 0.5, activation=rng.choice(["relu", None]))
    if kind == "depthwise_separable":
        return DepthwiseSeparable(rng.randint(1, 12), _kernel(rng, rank), stride, padding,
                                  use_bias=rng.random() < 0.7, batch_norm=rng.random() < 0.7)
    if kind == "pool":
        return Pool(rng.choice(["max", "avg"]), rng.randint(1, 3), rng.choice([None, 1, 2]), padding)
    return Dropout(rng.choice([0.0, 0.2, 0.5]))


def _random_spec(rng, rank, n_classes):
    blocks = [_feature_block(rng, rank) for _ in range(rng.randint(1, 5))]
    blocks.append(rng.choice([GlobalAveragePool(), Flatten()]))
    blocks += [Dense(rng.randint(1, 16), rng.choice(["relu", None]), rng.random() < 0.8)
               for _ in range(rng.randint(0, 2))]
    if rng.random() < 0.3:
        blocks.append(Dense(n_classes, activation="softmax"))
    return blocks


def _input_shape(rng, rank):
    if rank == 1:
        return rng.randint(4, 64), rng.randint(1, 6)
    return rng.randint(3, 16), rng.randint(3, 24), rng.randint(1, 3)


def _feasible_specs(seed, count):
    """(blocks, input_shape, n_classes) drawn until `count` pass the walk, and how many it refused."""
    rng, specs, refused = random.Random(seed), [], 0
    while len(specs) < count:
        rank, n_classes = rng.choice([1, 2]), rng.randint(2, 12)
        blocks, shape = _random_spec(rng, rank, n_classes), _input_shape(rng, rank)
        try:
            spec.walk(blocks, shape, n_classes)
        except InfeasibleConfig:
            refused += 1
            continue
        specs.append((blocks, shape, n_classes))
    return specs, refused


def test_walk_matches_keras_layer_by_layer_on_random_specs():
    specs, refused = _feasible_specs(seed=10, count=N_SPECS)
    assert refused > 0, "the generator should also draw infeasible specs, for the walk to refuse"
    kinds_seen = set()
    for blocks, shape, n_classes in specs:
        kinds_seen |= assert_build_matches_walk(blocks, shape, n_classes)
    assert kinds_seen == set(BLOCK_TYPES)


def test_walk_refuses_a_kernel_larger_than_the_feature_map_naming_the_block():
    blocks = [Conv(8, kernel=3), Conv(8, kernel=5, padding="valid"), GlobalAveragePool()]
    with pytest.raises(InfeasibleConfig, match=r"^b01_conv: conv 5x5 .*'valid'.* does not fit the 3x40 feature map"):
        spec.walk(blocks, (3, 40, 1), n_classes=4)


def test_walk_refuses_too_many_strides_naming_the_block():
    blocks = [Conv(4, kernel=3, stride=2), *[Pool("max", 2) for _ in range(4)], Flatten()]
    with pytest.raises(InfeasibleConfig, match=r"^b04_pool: pool 2 with stride 2 .* does not fit the 1 feature map"):
        spec.walk(blocks, (16, 1), n_classes=4)


def test_build_refuses_an_infeasible_spec_with_the_walks_message():
    with pytest.raises(InfeasibleConfig, match="^b00_depthwise_separable: "):
        spec.build([DepthwiseSeparable(4, kernel=4, padding="valid"), Flatten()], (3, 3, 1), n_classes=2)


def test_walk_refuses_a_classifier_on_a_map_and_a_softmax_of_the_wrong_width():
    with pytest.raises(InfeasibleConfig, match="classifier gets a 8x4 map"):
        spec.walk([Conv(4)], (8, 1), n_classes=3)
    with pytest.raises(InfeasibleConfig, match="softmax over 10 classes, the data has 3"):
        spec.walk([Flatten(), Dense(10, activation="softmax")], (8, 1), n_classes=3)


def test_walk_refuses_a_kernel_of_the_wrong_rank_and_empty_layers():
    with pytest.raises(InfeasibleConfig, match=r"^b00_conv: conv kernel \[3, 3\] has 2 axes, the input has 1"):
        spec.walk([Conv(4, kernel=(3, 3)), Flatten()], (8, 1), n_classes=3)
    with pytest.raises(InfeasibleConfig, match="^b01_pool: pool stride must be at least 1, not 0"):
        spec.walk([Conv(4), Pool(stride=0), Flatten()], (8, 1), n_classes=3)
    with pytest.raises(InfeasibleConfig, match="^b01_dense: dense units must be at least 1, not 0"):
        spec.walk([Flatten(), Dense(0)], (8, 1), n_classes=3)


def test_the_walk_imports_no_tensorflow():
    code = ("import sys; from tuner_app.model.architecture import kws_families, spec; "
            "spec.walk(kws_families.dscnn_spec(kws_families.DSCNN_HYPERPARAMETERS, 12), (10, 49, 1), 12); "
            "sys.exit(int('tensorflow' in sys.modules or 'keras' in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_dscnn_s_matches_the_mlperf_tiny_reference_count():
    # mlcommons/tiny benchmark/training/keyword_spotting/keras_model.py, model 'ds_cnn' with 12 labels, built
    # in Keras: 23,756 trainable params (+ 1,152 BN moving statistics = 24,908 count_params()).
    dscnn_s = kws_families.dscnn_spec(kws_families.DSCNN_HYPERPARAMETERS, 12)  # its defaults are DS-CNN-S
    walk = spec.walk(dscnn_s, (10, 49, 1), 12)  # 10 MFCCs x 49 frames
    assert walk.params_trainable == 23_756
    assert walk.params_total == 24_908
    assert walk.rows[0].output_shape == (5, 25, 64)
    model = spec.build(dscnn_s, (10, 49, 1), 12)
    assert model.count_params() == 24_908
    assert tuple(model.output.shape[1:]) == (12,)
