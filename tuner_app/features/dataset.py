"""The tf.data pipeline of a search: shuffle the decoded clips, augment the waveforms, batch and prefetch.

It yields waveforms, not features: every model computes its own front-end as its first layer
(`features.layers.Frontend`), so one dataset feeds every trial whatever its front-end, and SpecAugment is a
training-only layer of the model.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tuner_app.data.cache import DecodedClips
from tuner_app.features.augment import _augment_waveform
from tuner_app.features.augment_config import AugmentConfig

AUTOTUNE = tf.data.AUTOTUNE


def make_dataset(
    clips: DecodedClips,
    batch_size: int,
    training: bool = False,
    augment: AugmentConfig | None = None,
    noise: np.ndarray | None = None,
    seed: int | None = None,
) -> tf.data.Dataset:
    """(waveforms [batch, 16000], labels) batches: shuffled and augmented when training, then prefetched."""
    dataset = tf.data.Dataset.from_tensor_slices((clips.waveforms, clips.labels))
    if training:
        dataset = dataset.shuffle(max(len(clips), 1), seed=seed, reshuffle_each_iteration=True)
    if training and augment and augment.waveform_active:
        noise = np.zeros([0], np.float32) if noise is None else noise
        dataset = dataset.map(_augment_waveform(augment, noise), num_parallel_calls=AUTOTUNE)
    return dataset.batch(batch_size).prefetch(AUTOTUNE)
