"""Training-time augmentation of the waveforms in the tf.data graph: time shift, band-limiting, background
noise. SpecAugment masks the features inside the model (features.layers.SpecAugment)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tuner_app.constants import CLIP_SAMPLES, SAMPLE_RATE
from tuner_app.features.augment_config import AugmentConfig


def _time_shift(waveform, max_shift: int):
    shift = tf.random.uniform([], -max_shift, max_shift + 1, tf.int32)
    padded = tf.pad(waveform, [[max_shift, max_shift]])
    return padded[max_shift - shift : max_shift - shift + CLIP_SAMPLES]


def _applied(probability: float, augmentation, waveform):
    """`augmentation(waveform)` with `probability`, else the clip as it is. tf.cond runs only the branch taken
    (tf.where ran both), so a skipped augmentation costs one random draw; its own draws happen inside it."""
    return tf.cond(tf.random.uniform([]) < probability, lambda: augmentation(waveform), lambda: waveform)


def _noisy(waveform, noise, cfg: AugmentConfig):
    start = tf.random.uniform([], 0, tf.shape(noise)[0] - CLIP_SAMPLES + 1, tf.int32)
    segment = noise[start : start + CLIP_SAMPLES]
    snr_db = tf.random.uniform([], cfg.snr_db_min, cfg.snr_db_max)
    signal_power = tf.reduce_mean(tf.square(waveform)) + 1e-10
    noise_power = tf.reduce_mean(tf.square(segment)) + 1e-10
    scale = tf.sqrt(signal_power / (noise_power * tf.pow(10.0, snr_db / 10.0)))
    return waveform + scale * segment


def _mix_noise(waveform, noise, cfg: AugmentConfig):
    return _applied(cfg.noise_probability, lambda clip: _noisy(clip, noise, cfg), waveform)


def band_limit(waveform, cutoff_hz):
    """Remove everything above `cutoff_hz` (a brick-wall filter in the frequency domain)."""
    spectrum = tf.signal.rfft(waveform)
    bins = tf.cast(tf.range(tf.shape(spectrum)[0]), tf.float32) * (SAMPLE_RATE / CLIP_SAMPLES)
    return tf.signal.irfft(tf.where(bins <= cutoff_hz, spectrum, tf.zeros_like(spectrum)), [CLIP_SAMPLES])


def _lowpassed(waveform, cfg: AugmentConfig):
    return band_limit(waveform, tf.random.uniform([], cfg.lowpass_min_hz, SAMPLE_RATE / 2))


def _random_lowpass(waveform, cfg: AugmentConfig):
    return _applied(cfg.lowpass_probability, lambda clip: _lowpassed(clip, cfg), waveform)


def _augment_waveform(cfg: AugmentConfig, noise: np.ndarray):
    max_shift = int(cfg.time_shift_ms * SAMPLE_RATE / 1000)
    noise_tensor = tf.constant(noise, tf.float32) if len(noise) >= CLIP_SAMPLES else None

    def augment(waveform, label):
        if max_shift > 0:
            waveform = _time_shift(waveform, max_shift)
        if cfg.lowpass_probability > 0:  # the recording channel, before the room's noise
            waveform = _random_lowpass(waveform, cfg)
        if noise_tensor is not None and cfg.noise_probability > 0:
            waveform = _mix_noise(waveform, noise_tensor, cfg)
        return waveform, label

    return augment
