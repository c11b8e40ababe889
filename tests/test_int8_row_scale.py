"""Per-row int8 input scales folded into the first conv, where the network takes the feature rows as channels
(TC-ResNet): exact in float, carried by the features-in file and applied by whoever quantizes its input; a
network of 2D convolutions over the feature map has none and converts as before."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from conftest import tone_clips

from tuner_app.device import features_in, micro, row_scale
from tuner_app.model.architecture import build
from tuner_app.model.space import search_space

ROOT = Path(__file__).resolve().parents[1]


def _built(space_file: str, n_classes: int = 4, **overrides):
    import keras

    keras.utils.set_random_seed(0)  # a module fixture builds it before the autouse seed: the weights of run order
    space = search_space.load(ROOT / "search_spaces" / space_file)
    values = {name: spec.get("value", spec.get("min_value")) for name, spec in space.hyperparameters.items()}
    augment = dataclasses.replace(space.augment, freq_mask=4, time_mask=4)  # SpecAugment between the two
    return build.build_model(space, {**values, **overrides}, n_classes, augment=augment)


@pytest.fixture(scope="module")
def tcresnet():
    """TC-ResNet8 at its smallest width on 40 clip-normalised MFCCs, untrained: c0 far wider than the rest."""
    return _built("tcresnet8.yaml", tcresnet_width=0.125)


@pytest.fixture(scope="module")
def calibration(tcresnet):
    return features_in.features_of(tcresnet, tone_clips(0).waveforms)


@pytest.fixture(scope="module")
def blob(tcresnet) -> bytes:
    return features_in.convert(tcresnet, tone_clips(0).waveforms)


def test_the_rows_are_found_through_the_layers_that_keep_them_as_channels(tcresnet):
    assert row_scale.first_conv(tcresnet) is tcresnet.get_layer("b01_conv")
    assert any(type(layer).__name__ == "SpecAugment" for layer in tcresnet.layers)


def test_the_scaled_network_computes_what_the_network_computes(tcresnet, calibration):
    kernel = tcresnet.get_layer("b01_conv").get_weights()[0]
    scales = row_scale.scales(tcresnet, calibration)
    assert scales.shape == (40,) and scales.max() == 1 and scales.min() < 0.5  # c0 apart from the rest
    features = features_in.features_of(tcresnet, tone_clips(3).waveforms)
    expected = features_in.network(tcresnet)(features, training=False).numpy()
    divided = row_scale.divided(features, scales)
    scaled = row_scale.scaled_network(tcresnet, scales)(divided, training=False).numpy()
    np.testing.assert_allclose(scaled, expected, atol=1e-5)
    unscaled = features_in.network(tcresnet)(divided, training=False).numpy()
    assert np.abs(unscaled - expected).max() > 1e-3  # the kernel's fold is what makes them equal
    np.testing.assert_array_equal(tcresnet.get_layer("b01_conv").get_weights()[0], kernel)  # the model unchanged


def test_the_features_in_file_carries_its_row_scales_and_quantizing_applies_them(tcresnet, calibration, blob):
    entry = features_in.describe(blob, tcresnet.get_layer("frontend").config.to_dict())["input"]
    np.testing.assert_allclose(entry["row_scale"], row_scale.scales(tcresnet, calibration), rtol=1e-7)
    features = features_in.features_of(tcresnet, tone_clips(3).waveforms)
    by_hand = np.round(features / np.array(entry["row_scale"])[:, None, None] / entry["scale"]) + entry["zero_point"]
    quantized = features_in.quantized(features, entry)
    np.testing.assert_array_equal(quantized, np.clip(by_hand, -128, 127).astype(np.int8))
    one_scale = features_in.quantized(features, {**entry, "row_scale": None})
    narrowest = int(np.argmin(entry["row_scale"]))
    assert len(np.unique(quantized[:, narrowest])) > 2 * len(np.unique(one_scale[:, narrowest]))  # more steps


def test_the_int8_network_with_row_scales_follows_the_float_one_in_litert_and_tflm(tcresnet, blob):
    features = features_in.features_of(tcresnet, tone_clips(3).waveforms)
    expected = tcresnet(tone_clips(3).waveforms, training=False).numpy()
    np.testing.assert_allclose(features_in.probabilities(blob, features), expected, atol=0.05)
    described = features_in.tensors(blob)
    on_micro = micro.scores(blob, features_in.quantized(features, described["input"]))
    np.testing.assert_allclose(features_in.dequantized(on_micro, described["output"]), expected, atol=0.05)


def test_a_network_of_2d_convolutions_has_no_row_scales():
    model = _built("smoke.yaml")
    blob = features_in.convert(model, tone_clips(0).waveforms)
    assert row_scale.first_conv(model) is None and row_scale.scales(model, np.ones([1, 1, 1, 1])) is None
    assert features_in.tensors(blob)["input"]["row_scale"] is None and row_scale.stored(blob) is None
    assert row_scale.waveform_model(model, tone_clips(0).waveforms) is model


def test_a_reshape_that_mixes_rows_and_frames_is_no_fold():
    import keras

    from tuner_app.features.frontend import FrontendConfig
    from tuner_app.features.layers import Frontend

    config = FrontendConfig(kind="mfcc", num_mel_bins=16, num_mfccs=16, upper_edge_hertz=4000.0)
    waveform = keras.Input((16000,))
    features = Frontend(config, name="frontend")(waveform)
    bins, frames = features.shape[1:3]
    x = keras.layers.Reshape((frames, bins))(features)  # no transpose: row b is not channel b
    x = keras.layers.Conv1D(4, 3)(x)
    model = keras.Model(waveform, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(x)))
    assert row_scale.first_conv(model) is None


def test_predict_s_int8_runtimes_apply_the_row_scales(tcresnet, blob, tmp_path):
    from tuner_app.serving import runtimes

    (tmp_path / features_in.TFLITE_INT8_FEATURES).write_bytes(blob)
    metadata = {"tflite": {"int8_features": {"frontend": tcresnet.get_layer("frontend").config.to_dict()}}}
    waveforms = tone_clips(3).waveforms
    expected = tcresnet(waveforms, training=False).numpy()
    for runtime in ("int8-features", "tflm"):
        scores = runtimes.scorer(tmp_path, metadata, runtime)(waveforms)
        np.testing.assert_allclose(scores, expected, atol=0.05)
