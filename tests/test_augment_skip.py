"""Augmentation works on whole batches with one draw per clip: a skipped clip is returned as it is and goes
through none of the augmentation's ops (issue 15: band_limit's FFT pair and the noise mix ran for every clip
under tf.where, and a per-clip map cost more CPU than the arithmetic)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tuner_app.features import augment
from tuner_app.features.augment_config import AugmentConfig

NOISE = np.random.default_rng(0).normal(0, 0.1, 40000).astype(np.float32)


def _clips(count: int = 3) -> tf.Tensor:
    t = np.arange(16000) / 16000
    tone = 0.5 * np.sin(2 * np.pi * 7000 * t)  # above every lowpass cut-off
    return tf.constant(np.tile(tone, (count, 1)), tf.float32)


def _lowpass(probability: float):
    return lambda clips: augment._random_lowpass(clips, AugmentConfig(lowpass_probability=probability))


def _noise(probability: float):
    cfg = AugmentConfig(noise_probability=probability, snr_db_min=0, snr_db_max=0)
    return lambda clips: augment._mix_noise(clips, tf.constant(NOISE), cfg)


@pytest.mark.parametrize("make", [_lowpass, _noise], ids=["lowpass", "noise"])
def test_probability_zero_keeps_every_clip_and_probability_one_changes_each(make):
    clips = _clips()
    np.testing.assert_array_equal(tf.function(make(0.0))(clips).numpy(), clips.numpy())
    changed = tf.function(make(1.0))(clips).numpy()
    rms = np.sqrt(np.mean((changed - clips.numpy()) ** 2, axis=1))
    assert np.all(rms > 0.1)  # a 0.35 RMS tone removed, or noise at 0 dB, in every clip


def test_only_the_chosen_clips_go_through_the_augmentation():
    tf.random.set_seed(0)
    seen = tf.Variable(0)

    def plus_one(clips):
        seen.assign_add(tf.shape(clips)[0])
        return clips + 1.0

    out = tf.function(lambda clips: augment._applied(0.3, plus_one, clips))(tf.zeros([1000, 8])).numpy()
    changed = np.all(out == 1.0, axis=1)
    assert np.all(changed | np.all(out == 0.0, axis=1))  # each clip whole: augmented or as it was
    assert seen.numpy() == changed.sum()  # the others never reached it
    assert 200 <= changed.sum() <= 400  # Binomial(1000, 0.3) is outside that with p < 1e-11


def test_each_clip_gets_its_own_shift_and_cut_off():
    tf.random.set_seed(1)
    ramp = tf.tile(tf.range(16000, dtype=tf.float32)[None, :], [50, 1])
    shifted = augment._time_shift(ramp, 1600).numpy()
    offsets = shifted[:, 3000] - 3000  # the ramp moved by the clip's shift
    assert set(np.abs(offsets)) <= set(range(1601)) and len(set(offsets)) > 25
    t = np.arange(16000) / 16000
    tones = tf.constant(np.stack([np.sin(2 * np.pi * 5000 * t)] * 2), tf.float32)
    limited = augment.band_limit(tones, tf.constant([4000.0, 6000.0])).numpy()
    np.testing.assert_allclose(limited[0], 0, atol=1e-4)  # 5 kHz above the first clip's cut-off only
    np.testing.assert_allclose(limited[1], tones[1].numpy(), atol=1e-4)


def test_a_shift_longer_than_the_clip_leaves_silence():
    moved = augment._shifted(np.ones([2, 16000], np.float32), np.array([20000, -16000]))
    assert moved.shape == (2, 16000) and not moved.any()
