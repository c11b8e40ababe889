"""The pipeline benchmark's augmentation timings (benchmarks/pipeline.py, item 5): the package's per-batch
augmentation, and with --compare the two ways it replaced, on the same clips and the same ops."""

from __future__ import annotations

import dataclasses
from unittest import mock

import numpy as np
import tensorflow as tf

import common
from tuner_app.constants import CLIP_SAMPLES, SAMPLE_RATE
from tuner_app.features import augment, dataset as dataset_module
from tuner_app.features.augment_config import AugmentConfig
from tuner_app.model.space import search_space


def cnn2d_augment() -> AugmentConfig:
    return search_space.load(search_space.locate("cnn2d")).augment


def _where_applied(probability: float, augmentation, waveforms):
    """The gating before the fix, for --compare, in place of `augment._applied`: the augmentation computed for
    every clip of the batch, tf.where then picks it or the clip per clip (only the gating differs)."""
    chosen = tf.random.uniform([tf.shape(waveforms)[0], 1]) < probability
    return tf.where(chosen, augmentation(waveforms), waveforms)


def _clip_augmentation(cfg: AugmentConfig, noise: np.ndarray):
    """The per-clip augmentation the package had until 2026-11-26 (git 75c50c7), kept for --compare: one clip
    at a time, each gated augmentation under tf.cond."""
    max_shift = int(cfg.time_shift_ms * SAMPLE_RATE / 1000)
    noise_tensor = tf.constant(noise, tf.float32) if len(noise) >= CLIP_SAMPLES else None

    def gated(probability, augmentation, waveform):
        return tf.cond(tf.random.uniform([]) < probability, lambda: augmentation(waveform), lambda: waveform)

    def shifted(waveform):
        shift = tf.random.uniform([], -max_shift, max_shift + 1, tf.int32)
        return tf.pad(waveform, [[max_shift, max_shift]])[max_shift - shift: max_shift - shift + CLIP_SAMPLES]

    def lowpassed(waveform):
        return augment.band_limit(waveform, tf.random.uniform([], cfg.lowpass_min_hz, SAMPLE_RATE / 2))

    def noisy(waveform):
        start = tf.random.uniform([], 0, tf.shape(noise_tensor)[0] - CLIP_SAMPLES + 1, tf.int32)
        segment = noise_tensor[start: start + CLIP_SAMPLES]
        snr_db = tf.random.uniform([], cfg.snr_db_min, cfg.snr_db_max)
        power = (tf.reduce_mean(tf.square(waveform)) + 1e-10) / (tf.reduce_mean(tf.square(segment)) + 1e-10)
        return waveform + tf.sqrt(power / tf.pow(10.0, snr_db / 10.0)) * segment

    def augment_clip(waveform, label):
        if max_shift > 0:
            waveform = shifted(waveform)
        if cfg.lowpass_probability > 0:
            waveform = gated(cfg.lowpass_probability, lowpassed, waveform)
        if noise_tensor is not None and cfg.noise_probability > 0:
            waveform = gated(cfg.noise_probability, noisy, waveform)
        return waveform, label

    return augment_clip


def _per_clip(train, config: AugmentConfig, noise: np.ndarray, batch: int) -> tf.data.Dataset:
    """The pipeline before batch-wise augmentation, for --compare: batches cut into clips, each augmented
    alone, then batched again."""
    plain = dataset_module.make_dataset(train, batch, training=True, seed=0)
    clips = plain.unbatch().map(_clip_augmentation(config, noise), num_parallel_calls=tf.data.AUTOTUNE)
    return clips.batch(batch).prefetch(tf.data.AUTOTUNE)


def augment_variants() -> dict[str, AugmentConfig | None]:
    """No augmentation; cnn2d's with its noise and lowpass probabilities both set to p; cnn2d's own."""
    own = cnn2d_augment()
    variants = {f"probabilities {p}": dataclasses.replace(own, noise_probability=p, lowpass_probability=p)
                for p in (0, 0.001, 1)}
    return {"none": None, **variants,
            f"cnn2d's (noise {own.noise_probability}, lowpass {own.lowpass_probability})": own}


def _pipelines(train, config, noise: np.ndarray, compare: bool, batch: int) -> dict:
    """Each way of running the augmentation: the package's, and with `compare` the two it replaced."""
    def package():
        return dataset_module.make_dataset(train, batch, training=True, augment=config, noise=noise, seed=0)

    pipelines = {"augmentation, per batch": package}
    if compare and config is not None and config.noise_probability > 0:
        pipelines["augmentation, per clip (before)"] = lambda: _per_clip(train, config, noise, batch)

        def where_gated():  # make_dataset traces the augmentation at once, looking `_applied` up as it goes
            with mock.patch.object(augment, "_applied", _where_applied):
                return package()
        pipelines["augmentation, tf.where (before)"] = where_gated
    return pipelines


def timings(train, noise: np.ndarray, compare: bool, batch: int) -> list[tuple[str, str, float]]:
    """(measure, variant, seconds): one epoch of the pipeline alone (no model), the fastest of 7 (the least
    disturbed by other processes), per augmentation; with `compare`, the gated ones also per clip and through
    tf.where."""
    rows = []
    for variant, config in augment_variants().items():
        for measure_name, make in _pipelines(train, config, noise, compare, batch).items():
            pipeline = make()
            sum(1 for _ in pipeline.take(1))  # start-up (threads, the noise constant) left out
            seconds = min(common.timed(lambda pipeline=pipeline: sum(1 for _ in pipeline))[1] for _ in range(7))
            rows.append((measure_name, variant, seconds))
    return rows


def before_after(rows: list[dict]) -> str:
    """Per corpus and gated variant: clips/s of the package's pipeline, then of each one it replaced."""
    speeds: dict = {}
    for r in rows:
        if r["measure"].startswith("augmentation") and r["variant"] not in ("none", "probabilities 0"):
            speeds.setdefault((r["corpus"], r["variant"]), {})[r["measure"]] = r["clips_per_s"]
    compared = {key: value for key, value in speeds.items() if len(value) > 1}
    return "; ".join(f"{corpus}, {variant}: " + " / ".join(f"{value:.0f}" for value in measured.values())
                     for (corpus, variant), measured in compared.items()) or "not run (--compare)"
