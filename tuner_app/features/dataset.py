"""The tf.data pipeline of a search: shuffle clip indices, read each batch of waveforms from the decoded
cache (memory-mapped int16, scaled to float32 a batch at a time), augment each batch, prefetch.

It yields waveforms, not features: every model computes its own front-end as its first layer
(`features.layers.Frontend`), so one dataset feeds every trial whatever its front-end, and SpecAugment and VTLP
are training-only parts of the model.

A search whose hyperparameters set augment keys makes its training batches un-augmented, once, and each trial
maps them through its own settings (`augmented`); otherwise `make_dataset` augments them with the space's.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tuner_app.data.cache import DecodedClips
from tuner_app.features.augment import _augment_batch
from tuner_app.features.augment_config import AugmentConfig

AUTOTUNE = tf.data.AUTOTUNE


def make_dataset(
    clips: DecodedClips,
    batch_size: int,
    training: bool = False,
    augment: AugmentConfig | None = None,
    noise: np.ndarray | None = None,
    seed: int | None = None,
    n_classes: int | None = None,
) -> tf.data.Dataset:
    """(waveforms [batch, 16000] float32, labels) batches: shuffled and augmented when training, then
    prefetched. Indices are shuffled, not waveforms, so only the batches in flight are ever in memory.
    With mixup the labels are soft targets [batch, n_classes] (`n_classes` is then required)."""
    indices = tf.data.Dataset.range(len(clips))
    if training:
        indices = indices.shuffle(max(len(clips), 1), seed=seed, reshuffle_each_iteration=True)
    dataset = indices.batch(batch_size).map(_batch_reader(clips), num_parallel_calls=AUTOTUNE, deterministic=True)
    if training and augment and augment.waveform_active:
        return augmented(dataset, augment, noise, n_classes)
    return dataset.prefetch(AUTOTUNE)


def augmented(dataset: tf.data.Dataset, augment: AugmentConfig, noise: np.ndarray | None = None,
              n_classes: int | None = None) -> tf.data.Dataset:
    """Training batches through `augment`'s waveform augmentation (and mixup), prefetched; as they are if it
    has none."""
    if not augment.waveform_active:
        return dataset
    noise = np.zeros([0], np.float32) if noise is None else noise
    return dataset.map(_augment_batch(augment, noise, n_classes), num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def _batch_reader(clips: DecodedClips):
    """A tf.data map from a batch of indices to (waveforms, labels), read from `clips` outside the graph."""
    label_type = tf.as_dtype(np.asarray(clips.labels).dtype)
    clip_shape = tuple(clips.waveforms.shape[1:])

    def read(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return clips.batch(indices), np.asarray(clips.labels)[indices]

    def batch(indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        waveforms, labels = tf.numpy_function(read, [indices], (tf.float32, label_type), stateful=False)
        return tf.ensure_shape(waveforms, (None, *clip_shape)), tf.ensure_shape(labels, (None,))

    return batch
