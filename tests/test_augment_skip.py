"""A skipped augmentation returns the clip as it is and runs none of its ops (issue 15: band_limit's FFT pair
and the noise mix ran under tf.where for every clip)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tuner_app.features import augment
from tuner_app.features.augment_config import AugmentConfig

NOISE = np.random.default_rng(0).normal(0, 0.1, 40000).astype(np.float32)


def _clip() -> tf.Tensor:
    t = np.arange(16000) / 16000
    return tf.constant(0.5 * np.sin(2 * np.pi * 7000 * t), tf.float32)  # above every lowpass cut-off


def _lowpass(probability: float):
    return lambda clip: augment._random_lowpass(clip, AugmentConfig(lowpass_probability=probability))


def _noise(probability: float):
    cfg = AugmentConfig(noise_probability=probability, snr_db_min=0, snr_db_max=0)
    return lambda clip: augment._mix_noise(clip, tf.constant(NOISE), cfg)


@pytest.mark.parametrize("make", [_lowpass, _noise], ids=["lowpass", "noise"])
def test_probability_zero_keeps_the_clip_and_probability_one_changes_it(make):
    clip = _clip()
    np.testing.assert_array_equal(tf.function(make(0.0))(clip).numpy(), clip.numpy())
    changed = tf.function(make(1.0))(clip).numpy()
    assert np.sqrt(np.mean((changed - clip.numpy()) ** 2)) > 0.1  # a 0.35 RMS tone removed, or noise at 0 dB


@pytest.mark.parametrize("make, op", [(_lowpass, "RFFT"), (_noise, "Sqrt")], ids=["lowpass", "noise"])
def test_the_augmentation_ops_run_only_in_the_branch_taken(make, op):
    graph = tf.function(make(0.5)).get_concrete_function(tf.TensorSpec([16000], tf.float32)).graph
    definition = graph.as_graph_def()
    top_level = {node.op for node in definition.node}
    branches = {node.op for function in definition.library.function for node in function.node_def}
    assert op not in top_level and op in branches
