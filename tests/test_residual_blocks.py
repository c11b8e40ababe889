"""The residual blocks (TC-ResNet, BC-ResNet and their stem/head pieces): their arithmetic agrees with the
Keras layers they build on random settings, the reference networks reproduce the reference code's trainable
counts exactly, SubSpectralNorm normalises per band, and infeasible settings are refused."""

import math
import random

import numpy as np
import pytest
from conftest import output_positions

from tuner_app.errors import InfeasibleConfig
from tuner_app.model.architecture import spec
from tuner_app.model.architecture.kws_families import (
    BCRESNET_HYPERPARAMETERS,
    TCRESNET_HYPERPARAMETERS,
    bcresnet_spec,
    tcresnet_spec,
)
from tuner_app.model.architecture.residual_blocks import (
    BroadcastResidual,
    FrequencyAsChannels,
    FrequencyCollapse,
    TemporalResidual,
    sub_spectral_norm,
)

TC_RESNET_INPUT_SHAPE = (40, 98, 1)  # 40 MFCCs x 98 frames (30 ms window, 10 ms hop)
BC_RESNET_INPUT_SHAPE = (40, 101, 1)  # 40 log-mel bands x 101 centred frames


def tc_resnet8(n_classes=12):
    return tcresnet_spec(TCRESNET_HYPERPARAMETERS, n_classes)


def bc_resnet(base_channels=8, n_classes=12):
    return bcresnet_spec({**BCRESNET_HYPERPARAMETERS, "bcresnet_width": base_channels}, n_classes)

N_CASES = 30


def _temporal_case(rng):
    shape = (rng.randint(4, 40), rng.randint(1, 6))
    filters = shape[1] if rng.random() < 0.4 else rng.randint(1, 12)
    return TemporalResidual(filters, kernel=rng.randint(1, 9), stride=rng.choice([1, 1, 2, 3])), shape


def _broadcast_case(rng):
    sub_bands, stride = rng.randint(1, 4), rng.choice([1, 1, 2])
    freq = sub_bands * rng.randint(1, 3) * stride - rng.choice([0, 0, 0, 1])
    shape = (max(freq, 1), rng.randint(3, 16), rng.randint(1, 6))
    filters = shape[2] if rng.random() < 0.5 else rng.randint(1, 8)
    kernel = rng.randint(1, 4) if rng.random() < 0.5 else (rng.randint(1, 4), rng.randint(1, 4))
    block = BroadcastResidual(filters, kernel=kernel, stride=stride, dilation=rng.randint(1, 3),
                              sub_bands=sub_bands, dropout=rng.choice([0.0, 0.1, 0.5]))
    return block, shape


def _collapse_case(rng):
    shape = (rng.randint(1, 8), rng.randint(1, 12), rng.randint(1, 5))
    kernel = rng.randint(1, 5) if rng.random() < 0.5 else (rng.randint(1, 5), rng.randint(1, 5))
    return FrequencyCollapse(kernel), shape


def _frequency_as_channels_case(rng):
    return FrequencyAsChannels(), (rng.randint(1, 40), rng.randint(1, 50), rng.randint(1, 3))


def _feasible_cases(draw, seed, count):
    """`count` (block, input shape) pairs the block accepts, and how many it refused."""
    rng, cases, refused = random.Random(seed), [], 0
    while len(cases) < count:
        block, shape = draw(rng)
        try:
            block.output_shape(shape)
        except InfeasibleConfig:
            refused += 1
            continue
        cases.append((block, shape))
    return cases, refused


def _weights(weights):
    return sum(math.prod(weight.shape) for weight in weights)


def _layer_macs(layer):
    """Multiply-accumulates of one built layer from its Keras config and shapes, not from the block."""
    import keras

    if not isinstance(layer, (keras.layers.DepthwiseConv2D, keras.layers.Conv1D, keras.layers.Conv2D,
                              keras.layers.Dense)):
        return 0
    positions = output_positions(layer)
    in_channels = layer.input.shape[-1]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return positions * math.prod(layer.kernel_size) * in_channels * layer.depth_multiplier
    if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D)):
        return positions * math.prod(layer.kernel_size) * in_channels // layer.groups * layer.filters
    return math.prod(layer.input.shape[1:-1]) * in_channels * layer.units


def _build_one(block, shape):
    import keras

    inputs = keras.Input(shape)
    return keras.Model(inputs, block.build(inputs, "blk"))


def _assert_block_matches_keras(block, shape):
    model, sizes = _build_one(block, shape), block.sizes(shape)
    layers = model.layers[1:]
    assert all(layer.name == "blk" or layer.name.startswith("blk_") for layer in layers)
    assert _weights(model.trainable_weights) == sizes.trainable, (block, shape)
    assert _weights(model.non_trainable_weights) == sizes.non_trainable, (block, shape)
    assert model.count_params() == sizes.params
    assert tuple(model.output.shape[1:]) == block.output_shape(shape), (block, shape)
    assert sum(_layer_macs(layer) for layer in layers) == sizes.macs, (block, shape)


@pytest.mark.parametrize("draw, seed", [(_temporal_case, 1), (_broadcast_case, 2), (_collapse_case, 3),
                                        (_frequency_as_channels_case, 4)])
def test_block_sizes_and_shape_match_the_keras_layers_it_builds(draw, seed):
    count = N_CASES if draw in (_temporal_case, _broadcast_case) else 8
    cases, refused = _feasible_cases(draw, seed, count)
    if draw is not _frequency_as_channels_case:
        assert refused > 0, "the draws should also hit infeasible settings"
    for block, shape in cases:
        _assert_block_matches_keras(block, shape)


def test_random_draws_cover_both_variants_of_each_residual_block():
    temporal, _ = _feasible_cases(_temporal_case, 1, N_CASES)
    broadcast, _ = _feasible_cases(_broadcast_case, 2, N_CASES)
    assert {block.filters != shape[-1] or block.stride != 1 for block, shape in temporal} == {True, False}
    assert {block.filters != shape[-1] or block.stride != 1 for block, shape in broadcast} == {True, False}
    assert {block.stride for block, _ in broadcast} == {1, 2}
    assert {block.dilation for block, _ in broadcast} == {1, 2, 3}


# Counted by running Qualcomm-AI-research/bcresnet at 656f947 (PyTorch 2.13, 12 classes):
# sum(p.numel() for p in BCResNets(base).parameters() if p.requires_grad), and its BN buffers for base 8.
BC_RESNET_TRAINABLE = {8: 9_232, 12: 17_154, 16: 27_284, 24: 54_168, 48: 187_812, 64: 321_068}


def test_tc_resnet8_has_the_reference_codes_trainable_count():
    walk = spec.walk(tc_resnet8(), TC_RESNET_INPUT_SHAPE, 12)
    assert walk.params_trainable == 65_168
    assert walk.output_shape == (12,)
    # The paper's "66K" is every variable of the code's graph: also BN statistics and its unused 2-output head.
    unused_head = 48 * 2
    assert walk.params_total + unused_head == 65_920
    assert round(walk.params_total / 1000) == 66


@pytest.mark.parametrize("base_channels, trainable", sorted(BC_RESNET_TRAINABLE.items()))
def test_bc_resnet_has_the_reference_codes_trainable_count(base_channels, trainable):
    walk = spec.walk(bc_resnet(base_channels), BC_RESNET_INPUT_SHAPE, 12)
    assert walk.params_trainable == trainable
    if base_channels == 8:
        assert walk.params_non_trainable == 2_416
        assert round(walk.params_trainable / 100) == 92  # the paper's 9.2K


@pytest.mark.parametrize("blocks, shape", [(tc_resnet8(), TC_RESNET_INPUT_SHAPE),
                                           (bc_resnet(8), BC_RESNET_INPUT_SHAPE)])
def test_reference_networks_build_as_they_walk_layer_by_layer(blocks, shape):
    walk, model = spec.walk(blocks, shape, 12), spec.build(blocks, shape, 12)
    for row in walk.rows:
        layers = [layer for layer in model.layers if layer.name == row.name or layer.name.startswith(row.name + "_")]
        assert _weights(w for layer in layers for w in layer.trainable_weights) == row.trainable, row
        assert _weights(w for layer in layers for w in layer.non_trainable_weights) == row.non_trainable, row
        assert sum(_layer_macs(layer) for layer in layers) == row.macs, row
    assert _weights(model.trainable_weights) == walk.params_trainable
    assert model.count_params() == walk.params_total
    probabilities = model(np.random.default_rng(0).normal(size=(2, *shape)).astype("float32"))
    assert probabilities.shape == (2, 12)
    np.testing.assert_allclose(np.sum(probabilities, axis=-1), 1.0, rtol=1e-5)


def test_sub_spectral_norm_normalises_each_band_and_channel_on_its_own():
    import keras

    freq, time, channels, sub_bands = 6, 7, 2, 3
    inputs = keras.Input((freq, time, channels))
    model = keras.Model(inputs, sub_spectral_norm(inputs, sub_bands, "ssn"))
    rng = np.random.default_rng(0)
    # Each (band, channel) gets its own offset and scale, which per-channel BN would leave in place.
    offsets = rng.normal(scale=10, size=(sub_bands, 1, 1, channels))
    scales = rng.uniform(1, 5, size=(sub_bands, 1, 1, channels))
    x = rng.normal(size=(16, sub_bands, freq // sub_bands, time, channels)) * scales + offsets
    y = np.asarray(model(x.reshape(16, freq, time, channels).astype("float32"), training=True))
    epsilon = model.get_layer("ssn").epsilon
    mean, variance = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
    expected = (x - mean) / np.sqrt(variance + epsilon)
    np.testing.assert_allclose(y, expected.reshape(y.shape), atol=1e-3)
    assert _weights(model.trainable_weights) == 2 * sub_bands * channels


@pytest.mark.parametrize("block, shape, message", [
    (TemporalResidual(8), (40, 98, 1), "needs a (time, channels) input"),
    (TemporalResidual(8, kernel=9), (8, 4), "kernel spans 9 time steps, the feature map has 8"),
    (TemporalResidual(8, kernel=9, stride=2), (12, 4), "the feature map has 6"),
    (TemporalResidual(0), (40, 4), "filters must be at least 1"),
    (BroadcastResidual(8), (40, 101), "needs a (freq, time, channels) input"),
    (BroadcastResidual(8, sub_bands=5), (12, 20, 8), "sub_bands 5 do not divide its 12 frequency rows"),
    (BroadcastResidual(8, stride=2, sub_bands=4), (20, 20, 8), "sub_bands 4 do not divide its 10"),
    (BroadcastResidual(8, dilation=8, sub_bands=1), (5, 10, 8), "kernel spans 17 time steps"),
    (BroadcastResidual(8, kernel=(7, 3), sub_bands=1), (5, 10, 8), "kernel spans 7 frequency steps"),
    (BroadcastResidual(8, dropout=1.0, sub_bands=1), (5, 10, 8), "dropout must be in [0, 1)"),
    (BroadcastResidual(8, kernel=(3, 3, 3), sub_bands=1), (5, 10, 8), "has 3 axes"),
    (FrequencyCollapse(5), (4, 20, 8), "kernel spans 5 frequency steps, the feature map has 4"),
    (FrequencyAsChannels(), (98, 40), "needs a (freq, time, channels) input"),
])
def test_infeasible_settings_are_refused_with_the_reason(block, shape, message):
    with pytest.raises(InfeasibleConfig) as error:
        block.sizes(shape)
    assert message in str(error.value)
    with pytest.raises(InfeasibleConfig):
        block.output_shape(shape)


def test_the_walk_names_the_residual_block_that_does_not_fit():
    too_deep = [FrequencyAsChannels(), *[TemporalResidual(16, stride=2) for _ in range(4)]]
    with pytest.raises(InfeasibleConfig, match=r"^b04_temporal_residual: .*kernel spans 9"):
        spec.walk(too_deep, (10, 98, 1))
    assert spec.walk(too_deep[:-1], (10, 98, 1)).output_shape == (13, 16)
