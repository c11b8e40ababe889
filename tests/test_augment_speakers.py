"""Augmentations for unheard speakers: speed perturbation moves a tone by its factor and keeps 16000 samples;
VTLP warps the frequency axis by its factor in training only; mixup's targets and loss; per-coefficient
normalisation (CMVN, CMN); and a front-end with the new keys at their defaults computes exactly what it did."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import serving_module

from tuner_app.features import augment
from tuner_app.features.augment_config import AugmentConfig
from tuner_app.features.frontend import FrontendConfig, features
from tuner_app.features.layers import Frontend, frontend_layers
from tuner_app.features.speed import SpeedPerturbation
from tuner_app.features.vtlp import source_bins
from tuner_app.model.space import recipe

SECONDS = np.arange(16000) / 16000
FRONTENDS = {"stft": FrontendConfig(), "mel": FrontendConfig(kind="mel", num_mel_bins=40),
             "mfcc": FrontendConfig(kind="mfcc", num_mel_bins=40, num_mfccs=13, normalize="coefficient")}


def tones(*hertz, amplitude=0.5):
    return np.stack([amplitude * np.sin(2 * np.pi * f * SECONDS) for f in hertz]).astype(np.float32)


def peak_hz(waveform) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(waveform))))  # 1 Hz per bin over 16000 samples


def test_speed_moves_a_tone_by_its_factor_and_keeps_16000_samples():
    perturbation = SpeedPerturbation(0.9, 1.1)
    slow, same, fast = (perturbation.rates.index(rate) for rate in (14400, 16000, 17600))
    clips = tones(1000, 1000, 1000)
    out = tf.function(perturbation.at_levels)(clips, tf.constant([slow, same, fast])).numpy()
    assert out.shape == (3, 16000)
    assert [peak_hz(clip) for clip in out] == [900.0, 1000.0, 1100.0]
    np.testing.assert_array_equal(out[1], clips[1])  # factor 1 is the clip itself


def test_speed_changes_the_duration_about_the_centre():
    burst = np.zeros([1, 16000], np.float32)
    burst[0, 4000:12000] = tones(500)[0, 4000:12000]  # 0.5 s of tone in the middle
    for factor, seconds in ((0.9, 0.5 / 0.9), (1.1, 0.5 / 1.1)):
        perturbation = SpeedPerturbation(factor, factor)
        loud = np.flatnonzero(np.abs(perturbation(burst).numpy()[0]) > 0.25)
        assert abs((loud[-1] - loud[0]) / 16000 - seconds) < 0.005
        assert abs((loud[-1] + loud[0]) / 2 - 8000) < 20  # still centred


def test_speed_draws_one_grid_rate_per_clip_within_the_range():
    perturbation = SpeedPerturbation(0.85, 1.15)
    assert perturbation.rates[0] == 13600 and perturbation.rates[-1] == 18400 and len(perturbation.rates) == 13
    tf.random.set_seed(3)
    out = tf.function(perturbation)(tones(*[1000] * 40)).numpy()
    peaks = {peak_hz(clip) for clip in out}
    assert peaks <= {rate / 16 for rate in perturbation.rates} and len(peaks) > 5


def test_speed_runs_in_the_batch_map_before_the_rest():
    cfg = AugmentConfig(speed_min=1.1, speed_max=1.1, time_shift_ms=10)
    waveforms, labels = augment._augment_batch(cfg, np.zeros([0], np.float32))(tf.constant(tones(1000, 2000)),
                                                                               tf.constant([0, 1]))
    assert [peak_hz(clip) for clip in waveforms.numpy()] == [1100.0, 2200.0]
    assert labels.numpy().tolist() == [0, 1]


@pytest.mark.parametrize("factor,expected_hz", [(1.1, 2200.0), (0.9, 1800.0)])
def test_vtlp_moves_a_spectral_peak_by_the_warp_factor(factor, expected_hz):
    cfg = FrontendConfig(frame_length=512, fft_length=512)
    warped = features(tones(2000), cfg, warp=tf.constant([factor])).numpy()[0, :, 50, 0]
    assert abs(np.argmax(warped) * 16000 / 512 - expected_hz) <= 16000 / 512  # within a bin


def test_vtlp_warp_is_piecewise_linear_and_keeps_nyquist():
    bins = source_bins(tf.constant([1.2, 0.8]), 4800.0, 257).numpy()
    np.testing.assert_allclose(bins[:, 0], 0)
    np.testing.assert_allclose(bins[:, -1], 256, atol=1e-4)
    np.testing.assert_allclose(bins[0, 100], 100 / 1.2, rtol=1e-6)  # 3125 Hz: below the boundary
    np.testing.assert_allclose(bins[1, 100], 100 / 0.8, rtol=1e-6)
    assert np.all(np.diff(bins) > 0)


@pytest.mark.parametrize("kind", list(FRONTENDS))
def test_a_warp_of_one_is_the_identity_for_every_spectral_front_end(kind):
    clips = np.random.default_rng(0).normal(0, 0.1, (2, 16000)).astype(np.float32)
    cfg = FRONTENDS[kind]
    np.testing.assert_array_equal(features(clips, cfg, warp=tf.constant([1.0, 1.0])).numpy(),
                                  features(clips, cfg).numpy())
    assert not np.allclose(features(clips, cfg, warp=tf.constant([1.1, 0.9])).numpy(), features(clips, cfg).numpy())


def test_vtlp_frontend_warps_in_training_only():
    clips = tones(2000, 3000)
    layer = Frontend(FRONTENDS["stft"], vtlp_alpha=0.2, seed=1)
    plain = features(clips, FRONTENDS["stft"]).numpy()
    for training in (False, None):
        np.testing.assert_array_equal(layer(clips, training=training).numpy(), plain)
    assert not np.allclose(layer(clips, training=True).numpy(), plain)
    off = Frontend(FRONTENDS["stft"], vtlp_alpha=0.0)
    np.testing.assert_array_equal(off(clips, training=True).numpy(), plain)
    waveform = Frontend(FrontendConfig(kind="waveform"), vtlp_alpha=0.2)  # no frequency axis: nothing to warp
    np.testing.assert_array_equal(waveform(clips, training=True).numpy(), clips[..., None])


def test_vtlp_frontend_round_trips_its_config_and_defaults_keep_the_old_one():
    layer = Frontend.from_config(Frontend(FRONTENDS["mel"], vtlp_alpha=0.1, vtlp_boundary_hz=4000.0, seed=2,
                                          name="fe").get_config())
    assert (layer.vtlp_alpha, layer.vtlp_boundary_hz, layer.seed, layer.config) == (0.1, 4000.0, 2, FRONTENDS["mel"])
    assert not {"vtlp_alpha", "vtlp_boundary_hz", "seed"} & set(Frontend(FRONTENDS["mel"]).get_config())


@pytest.mark.parametrize("kind", list(FRONTENDS))
def test_a_model_with_the_new_keys_infers_exactly_features(kind):
    """What an exported model serves: inference through the built layers, VTLP set or not, is features()."""
    clips = np.random.default_rng(1).normal(0, 0.1, (3, 16000)).astype(np.float32)
    expected = features(clips, FRONTENDS[kind]).numpy()
    for alpha in (0.0, 0.1):
        inputs = keras.Input((16000,))
        outputs = inputs
        for layer in frontend_layers(FRONTENDS[kind], freq_mask=4, time_mask=4, vtlp_alpha=alpha):
            outputs = layer(outputs)
        model = keras.Model(inputs, outputs)
        np.testing.assert_array_equal(model.predict(clips, verbose=0), expected)
        restored = keras.Model.from_config(model.get_config())
        np.testing.assert_array_equal(restored(clips, training=False).numpy(), expected)


def test_mixup_mixes_clips_and_targets_with_one_weight_per_clip():
    tf.random.set_seed(0)
    clips = np.eye(16, 16000, dtype=np.float32)  # clip i: one sample at i, so a mix shows its weight and partner
    mixed, targets = augment.mixed(tf.constant(clips), tf.constant(np.arange(16)), 0.4, 16)
    mixed, targets = mixed.numpy(), targets.numpy()
    np.testing.assert_allclose(targets.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(mixed[:, :16], targets, atol=1e-6)  # w * own + (1 - w) * partner's, in both
    assert np.all(mixed[:, 16:] == 0)
    assert len({round(float(row.max()), 4) for row in targets}) > 8  # one weight per clip


def crossentropy(labels, probabilities, smoothing):
    targets = np.eye(3)[labels] * (1 - smoothing) + smoothing / 3
    return -(targets * np.log(probabilities)).sum(axis=1)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_mixed_targets_loss_is_the_weighted_sum_of_the_two_cross_entropies(smoothing):
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], np.float32)
    first, second, weights = np.array([0, 2]), np.array([1, 0]), np.array([0.75, 0.4], np.float32)
    soft = weights[:, None] * np.eye(3)[first] + (1 - weights[:, None]) * np.eye(3)[second]
    loss = recipe.build_loss(smoothing, mixed_labels=True)
    expected = weights * crossentropy(first, probabilities, smoothing) + \
        (1 - weights) * crossentropy(second, probabilities, smoothing)
    np.testing.assert_allclose(loss(tf.constant(soft, tf.float32), tf.constant(probabilities)).numpy(), expected,
                               rtol=1e-5)
    np.testing.assert_allclose(loss(tf.constant(first[:, None]), tf.constant(probabilities)).numpy(),
                               crossentropy(first, probabilities, smoothing), rtol=1e-5)  # validation's labels


def test_mixup_model_trains_on_soft_targets_and_validates_on_labels():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    recipe.compile_model(model, {"label_smoothing": 0.1}, steps_per_epoch=2, epochs=1, mixed_labels=True)
    features_, labels = np.random.default_rng(0).normal(size=(8, 6)).astype(np.float32), np.arange(8) % 3
    soft = tf.data.Dataset.from_tensor_slices((features_, np.eye(3, dtype=np.float32)[labels])).batch(4)
    history = model.fit(soft, validation_data=(features_, labels), epochs=1, shuffle=False, verbose=0)
    predicted = np.argmax(model.predict(features_, verbose=0), axis=1)
    assert history.history["val_accuracy"][0] == pytest.approx(np.mean(predicted == labels))
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("kind", ["stft", "mel", "mfcc"])
def test_coefficient_normalisation_gives_each_row_mean_0_and_variance_1(kind):
    clips = np.random.default_rng(4).normal(0, 0.2, (2, 16000)).astype(np.float32) * np.linspace(0.1, 1, 16000)
    base = {"stft": {}, "mel": {"kind": "mel", "num_mel_bins": 40}, "mfcc": {"kind": "mfcc", "num_mel_bins": 40}}
    rows = features(clips, FrontendConfig(**base[kind], normalize="coefficient")).numpy()[..., 0]
    np.testing.assert_allclose(rows.mean(axis=2), 0, atol=1e-4)
    np.testing.assert_allclose(rows.std(axis=2), 1, atol=1e-3)
    raw = features(clips, FrontendConfig(**base[kind])).numpy()[..., 0]
    centred = features(clips, FrontendConfig(**base[kind], normalize="coefficient_mean")).numpy()[..., 0]
    np.testing.assert_allclose(centred.mean(axis=2), 0, atol=1e-4)
    np.testing.assert_allclose(centred, raw - raw.mean(axis=2, keepdims=True), atol=1e-4)  # CMN: mean only


def test_coefficient_normalisation_leaves_a_constant_row_at_zero():
    rows = features(np.zeros([1, 16000], np.float32), FrontendConfig(normalize="coefficient")).numpy()
    assert np.all(rows == 0)  # silence: log(log_offset) everywhere, not amplified rounding noise


def test_a_saved_model_with_vtlp_serves_exactly_what_it_would_without(tmp_path):
    model = keras.Sequential([keras.Input((16000,)), *frontend_layers(FRONTENDS["mel"], vtlp_alpha=0.2)])

    tf.saved_model.save(serving_module(model), str(tmp_path / "saved"))
    clips = np.random.default_rng(5).normal(0, 0.1, (2, 16000)).astype(np.float32)
    served = tf.saved_model.load(str(tmp_path / "saved")).serve(tf.constant(clips)).numpy()
    np.testing.assert_allclose(served, features(clips, FRONTENDS["mel"]).numpy(), atol=1e-6)
