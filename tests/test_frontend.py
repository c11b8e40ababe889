import numpy as np
import pytest

from tuner_app.errors import TunerAppError
from tuner_app.features.frontend import FrontendConfig, features, output_shape


def numpy_log_stft(signal, frame=256, step=160, fft=512, offset=1e-6):
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frame) / frame)  # periodic Hann, as tf.signal
    starts = range(0, len(signal) - frame + 1, step)
    frames = np.stack([signal[s : s + frame] * window for s in starts])
    return np.log(np.abs(np.fft.rfft(frames, fft)) + offset).T


def test_default_is_the_seed_spectrogram_and_matches_numpy():
    signal = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    cfg = FrontendConfig()
    out = features(signal[None], cfg).numpy()
    assert out.shape == (1, 257, 99, 1) == (1, *output_shape(cfg))
    np.testing.assert_allclose(out[0, :, :, 0], numpy_log_stft(signal.astype(np.float64)), atol=2e-3)


@pytest.mark.parametrize(
    "values,shape",
    [({"kind": "mel", "num_mel_bins": 40}, (40, 99, 1)), ({"kind": "mfcc", "num_mfccs": 13}, (13, 99, 1)),
     ({"kind": "waveform"}, (16000, 1)), ({"frame_step": 128}, (257, 124, 1))],
)
def test_variants_have_the_declared_shape(values, shape):
    cfg = FrontendConfig.from_dict(values)
    assert output_shape(cfg) == shape
    assert features(np.zeros([2, 16000], np.float32), cfg).shape == (2, *shape)


@pytest.mark.parametrize(
    "values,message",
    [({"kind": "cqt"}, "frontend: kind 'cqt' is not one of"), ({"hop": 1}, "frontend.hop: unknown key"),
     ({"frame_length": "256"}, "frontend.frame_length: expected int"),
     ({"fft_length": 128}, "fft_length 128 is shorter than frame_length 256"),
     # sized from before anything is allocated: refused, not an out-of-memory kill at the first batch
     ({"fft_length": 10**9}, "fft_length 1000000000 is over 16384"),
     ({"kind": "mel", "num_mel_bins": 10**8}, "num_mel_bins 100000000 is not from 1 to 1024")],
)
def test_bad_config_names_the_key(values, message):
    with pytest.raises(TunerAppError, match=message):
        FrontendConfig.from_dict(values)


@pytest.mark.parametrize("kind", ["stft", "waveform"])
def test_clip_normalisation_standardises_each_clip(kind):
    rng = np.random.default_rng(1)
    clips = np.stack([rng.normal(0, 0.01, 16000), rng.normal(0, 0.5, 16000), np.zeros(16000)]).astype(np.float32)
    out = features(clips, FrontendConfig(kind=kind, normalize="clip")).numpy()
    flat = out.reshape(3, -1)
    np.testing.assert_allclose(flat[:2].mean(axis=1), 0, atol=1e-4)
    np.testing.assert_allclose(flat[:2].std(axis=1), 1, atol=1e-3)
    assert np.all(np.abs(flat[2]) < 0.1)  # a silent clip stays near 0, not amplified rounding noise


def test_unknown_normalisation_is_named():
    known = "\\['none', 'clip', 'coefficient', 'coefficient_mean'\\]"
    with pytest.raises(TunerAppError, match=f"frontend: normalize 'global' is not one of {known}"):
        FrontendConfig.from_dict({"normalize": "global"})


def test_mfccs_are_tf_signals_mfccs_of_the_log_mel_bands():
    import tensorflow as tf

    waveforms = np.random.default_rng(3).normal(0, 0.1, (2, 16000)).astype(np.float32)
    mel = FrontendConfig(kind="mel", num_mel_bins=40)
    mfcc = FrontendConfig(kind="mfcc", num_mel_bins=40, num_mfccs=10)
    log_mel = features(waveforms, mel)[..., 0].numpy().transpose(0, 2, 1)  # back to [batch, time, mel]
    expected = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :10].numpy().transpose(0, 2, 1)
    np.testing.assert_allclose(features(waveforms, mfcc)[..., 0].numpy(), expected, atol=1e-4)
