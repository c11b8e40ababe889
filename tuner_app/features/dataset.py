"""The tf.data pipeline of one trial: shuffle the decoded clips, augment, compute features with
`frontend.features`, batch and prefetch."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tuner_app.data.cache import DecodedClips
from tuner_app.features.augment import _augment_waveform, _spec_augment
from tuner_app.features.augment_config import AugmentConfig
from tuner_app.features.frontend import FrontendConfig, features

AUTOTUNE = tf.data.AUTOTUNE


def make_dataset(
    clips: DecodedClips,
    frontend: FrontendConfig,
    batch_size: int,
    training: bool = False,
    augment: AugmentConfig | None = None,
    noise: np.ndarray | None = None,
    seed: int | None = None,
) -> tf.data.Dataset:
    """(features, label) batches for one trial: shuffle, augment, features, batch, prefetch."""
    dataset = tf.data.Dataset.from_tensor_slices((clips.waveforms, clips.labels))
    if training:
        dataset = dataset.shuffle(max(len(clips), 1), seed=seed, reshuffle_each_iteration=True)
    if training and augment and augment.waveform_active:
        noise = np.zeros([0], np.float32) if noise is None else noise
        dataset = dataset.map(_augment_waveform(augment, noise), num_parallel_calls=AUTOTUNE)
    dataset = dataset.batch(batch_size).map(
        lambda waveforms, labels: (features(waveforms, frontend), labels), num_parallel_calls=AUTOTUNE
    )
    if training and augment and augment.spectrogram_active and frontend.kind != "waveform":
        dataset = dataset.map(_spec_augment(augment), num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)
