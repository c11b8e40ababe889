"""Training-time augmentation of the waveforms in the tf.data graph: speed (features.speed), time shift,
band-limiting, background noise, then mixup of the augmented clips. SpecAugment masks the features inside the
model (features.layers.SpecAugment), and VTLP warps them there (features.vtlp, in the Frontend layer).

Each augmentation works on a whole batch [clips, samples] with one draw per clip: on 2 cores the pipeline's
CPU is taken from training, and a map over single clips spent more of it on per-op overhead than on the
arithmetic."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tuner_app.constants import CLIP_SAMPLES, SAMPLE_RATE
from tuner_app.features.augment_config import AugmentConfig
from tuner_app.features.speed import SpeedPerturbation


def _clip_count(waveforms):
    return tf.shape(waveforms)[0]


def _cut(signal: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """[clips, CLIP_SAMPLES]: row i is signal[starts[i] : starts[i] + CLIP_SAMPLES]."""
    windows = np.empty((len(starts), CLIP_SAMPLES), np.float32)
    for row, start in enumerate(starts.tolist()):
        windows[row] = signal[start : start + CLIP_SAMPLES]
    return windows


def _shifted(waveforms: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Row i delayed by shifts[i] samples (advanced when negative), zeros let in at the edge."""
    moved = np.zeros_like(waveforms)
    length = waveforms.shape[1]
    for row, shift in enumerate(shifts.tolist()):
        shift = max(-length, min(length, shift))  # a shift past the clip leaves only zeros
        if shift >= 0:
            moved[row, shift:] = waveforms[row, : length - shift]
        else:
            moved[row, : length + shift] = waveforms[row, -shift:]
    return moved


def _in_numpy(function, *tensors):
    # Row slices run in numpy: TensorFlow's gather of every sample's index cost more CPU than all the
    # augmentation's arithmetic (benchmarks/pipeline.py).
    return tf.ensure_shape(tf.numpy_function(function, tensors, tf.float32, stateful=False), [None, CLIP_SAMPLES])


def _time_shift(waveforms, max_shift: int):
    shifts = tf.random.uniform([_clip_count(waveforms)], -max_shift, max_shift + 1, tf.int32)
    return _in_numpy(_shifted, waveforms, shifts)


def _applied(probability: float, augmentation, waveforms):
    """`augmentation` applied to each clip with `probability`, the others kept as they are. Only the chosen
    clips go through it, so a skipped clip costs its draw (tf.where ran every clip's FFT pair and noise mix)."""
    chosen = tf.where(tf.random.uniform([_clip_count(waveforms)]) < probability)  # [chosen, 1] row indices
    return tf.tensor_scatter_nd_update(waveforms, chosen, augmentation(tf.gather_nd(waveforms, chosen)))


def _noisy(waveforms, noise, cfg: AugmentConfig):
    count = _clip_count(waveforms)
    starts = tf.random.uniform([count], 0, tf.shape(noise)[0] - CLIP_SAMPLES + 1, tf.int32)
    segments = _in_numpy(_cut, noise, starts)
    snr_db = tf.random.uniform([count, 1], cfg.snr_db_min, cfg.snr_db_max)
    signal_power = tf.reduce_mean(tf.square(waveforms), axis=-1, keepdims=True) + 1e-10
    noise_power = tf.reduce_mean(tf.square(segments), axis=-1, keepdims=True) + 1e-10
    scale = tf.sqrt(signal_power / (noise_power * tf.pow(10.0, snr_db / 10.0)))
    return waveforms + scale * segments


def _mix_noise(waveforms, noise, cfg: AugmentConfig):
    return _applied(cfg.noise_probability, lambda clips: _noisy(clips, noise, cfg), waveforms)


def band_limit(waveforms, cutoff_hz):
    """Remove everything above `cutoff_hz` (a brick-wall filter in the frequency domain): one clip [samples]
    and one cut-off, or a batch [clips, samples] and one cut-off per clip ([clips]) or for all."""
    spectrum = tf.signal.rfft(waveforms)
    bins = tf.cast(tf.range(tf.shape(spectrum)[-1]), tf.float32) * (SAMPLE_RATE / CLIP_SAMPLES)
    passed = bins <= tf.expand_dims(tf.cast(cutoff_hz, tf.float32), -1)
    return tf.signal.irfft(tf.where(passed, spectrum, tf.zeros_like(spectrum)), [CLIP_SAMPLES])


def _lowpassed(waveforms, cfg: AugmentConfig):
    return band_limit(waveforms, tf.random.uniform([_clip_count(waveforms)], cfg.lowpass_min_hz, SAMPLE_RATE / 2))


def _random_lowpass(waveforms, cfg: AugmentConfig):
    return _applied(cfg.lowpass_probability, lambda clips: _lowpassed(clips, cfg), waveforms)


def _beta(count, alpha: float):
    """[count] draws of Beta(alpha, alpha), as X / (X + Y) of two Gamma(alpha) draws."""
    first, second = tf.random.gamma([count], alpha), tf.random.gamma([count], alpha)
    return tf.math.divide_no_nan(first, first + second)  # both 0 (tiny alpha underflows): all partner


def mixed(waveforms, labels, alpha: float, n_classes: int):
    """Mixup (Zhang et al., 2018): each clip with a partner drawn from the batch, weights w ~ Beta(alpha, alpha)
    per clip: w * clip + (1 - w) * partner, and soft targets [clips, n_classes], w * one-hot(label) +
    (1 - w) * one-hot(partner's), summing to 1 (the loss takes them: model.space.recipe)."""
    count = _clip_count(waveforms)
    weights = _beta(count, alpha)[:, tf.newaxis]
    partners = tf.random.shuffle(tf.range(count))
    targets = tf.one_hot(tf.cast(labels, tf.int32), n_classes)
    mixed_waveforms = weights * waveforms + (1.0 - weights) * tf.gather(waveforms, partners)
    return mixed_waveforms, weights * targets + (1.0 - weights) * tf.gather(targets, partners)


def _augment_batch(cfg: AugmentConfig, noise: np.ndarray, n_classes: int | None = None):
    """A tf.data map over batches: (waveforms [clips, samples], labels) -> the same, augmented; with mixup the
    labels become soft targets [clips, n_classes]."""
    max_shift = int(cfg.time_shift_ms * SAMPLE_RATE / 1000)
    noise_tensor = tf.constant(noise, tf.float32) if len(noise) >= CLIP_SAMPLES else None
    speed = SpeedPerturbation(cfg.speed_min, cfg.speed_max) if cfg.speed_active else None
    if cfg.mixup_alpha > 0 and not n_classes:
        raise ValueError("mixup needs the number of classes for its soft targets")

    def augment(waveforms, labels):
        if speed is not None:  # the speaker's own rate and pitch, before the room and the channel
            waveforms = speed(waveforms)
        if max_shift > 0:
            waveforms = _time_shift(waveforms, max_shift)
        if cfg.lowpass_probability > 0:  # the recording channel, before the room's noise
            waveforms = _random_lowpass(waveforms, cfg)
        if noise_tensor is not None and cfg.noise_probability > 0:
            waveforms = _mix_noise(waveforms, noise_tensor, cfg)
        if cfg.mixup_alpha > 0:
            return mixed(waveforms, labels, cfg.mixup_alpha, n_classes)
        return waveforms, labels

    return augment
