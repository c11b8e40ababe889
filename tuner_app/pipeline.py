"""The tf.data pipeline: decode a corpus once, then feed every trial from that cache.

Decoding (and resampling) is the slow part, so it runs once per corpus, in parallel inside
tf.data, and the decoded waveforms are kept in memory and on disk. Each trial then only
shuffles, augments, computes features with `frontend.features`, batches and prefetches.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_io as tfio

from tuner_app import audio
from tuner_app.config import checked_fields
from tuner_app.errors import TunerAppError
from tuner_app.frontend import CLIP_SAMPLES, SAMPLE_RATE, FrontendConfig, features

log = logging.getLogger(__name__)
AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation; the YAML `augment:` mapping uses these exact keys."""

    time_shift_ms: float = 0.0
    noise_probability: float = 0.0
    snr_db_min: float = 5.0
    snr_db_max: float = 30.0
    freq_mask: int = 0
    time_mask: int = 0
    lowpass_probability: float = 0.0  # band-limit a clip, as an 8 kHz or telephone recording is
    lowpass_min_hz: float = 3000.0  # cut-off drawn from [lowpass_min_hz, 8000]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None, where: str = "augment") -> "AugmentConfig":
        cfg = cls(**checked_fields(cls, values, where))
        if not 0 <= cfg.noise_probability <= 1 or cfg.snr_db_min > cfg.snr_db_max:
            raise TunerAppError(f"{where}: need 0 <= noise_probability <= 1 and snr_db_min <= snr_db_max")
        if not 0 <= cfg.lowpass_probability <= 1 or not 0 < cfg.lowpass_min_hz <= SAMPLE_RATE / 2:
            raise TunerAppError(f"{where}: need 0 <= lowpass_probability <= 1 and 0 < lowpass_min_hz <= 8000")
        return cfg

    @property
    def waveform_active(self) -> bool:
        return self.time_shift_ms > 0 or self.noise_probability > 0 or self.lowpass_probability > 0

    @property
    def spectrogram_active(self) -> bool:
        return self.freq_mask > 0 or self.time_mask > 0


@dataclasses.dataclass(frozen=True)
class DecodedClips:
    """One split, decoded: waveforms [n, 16000] float32 and integer labels [n]."""

    waveforms: np.ndarray
    labels: np.ndarray
    paths: tuple[str, ...]
    skipped: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.labels)


def _decode_path(index, path):
    clip, frames = audio.decode(tf.io.read_file(path))
    return index, clip, frames


def decode_files(paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Decode files in parallel; returns (indices that decoded to a non-empty clip, clips)."""
    nothing = np.zeros([0], np.int64), np.zeros([0, CLIP_SAMPLES], np.float32)
    if not paths:
        return nothing
    dataset = (
        tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), list(paths)))
        .map(_decode_path, num_parallel_calls=AUTOTUNE, deterministic=True)
        .ignore_errors()
        .filter(lambda index, clip, frames: frames > 0)
        .map(lambda index, clip, frames: (index, clip))
        .batch(256)
    )
    parts = list(dataset.as_numpy_iterator())
    if not parts:
        return nothing
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def decode_clips(paths: Sequence[str], labels: Sequence[int], strict: bool = False) -> DecodedClips:
    """Decode a split; unreadable, empty or corrupt files are skipped and named in one warning."""
    kept, waveforms = decode_files(paths)
    kept_set = set(kept.tolist())
    skipped = tuple(p for i, p in enumerate(paths) if i not in kept_set)
    if skipped:
        message = f"{len(skipped)} unreadable, empty or corrupt file(s) skipped: {', '.join(skipped)}"
        if strict:
            raise TunerAppError(message.replace("skipped", "found (--strict)"))
        log.warning(message)
    labels = np.asarray(labels, np.int32)[kept]
    return DecodedClips(waveforms, labels, tuple(paths[i] for i in kept), skipped)


def load_cached(cache_file: Path, paths: Sequence[str], labels: Sequence[int], strict: bool = False) -> DecodedClips:
    """`decode_clips`, kept in an .npz so later searches on the same file list skip decoding."""
    if cache_file.exists():
        with np.load(cache_file, allow_pickle=False) as saved:
            return DecodedClips(saved["waveforms"], saved["labels"], tuple(saved["paths"].tolist()),
                                tuple(saved["skipped"].tolist()))
    decoded = decode_clips(paths, labels, strict)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    partial = cache_file.with_suffix(".partial.npz")
    np.savez(partial, waveforms=decoded.waveforms, labels=decoded.labels,
             paths=np.asarray(decoded.paths, dtype=str), skipped=np.asarray(decoded.skipped, dtype=str))
    partial.replace(cache_file)  # atomic: an interrupted write never leaves a half cache
    return decoded


def noise_bank(noise_paths: Sequence[Path]) -> np.ndarray:
    """All background-noise recordings at 16 kHz, concatenated (whole files, not 1 s clips)."""
    recordings = []
    for path in noise_paths:
        samples, rate = audio.decode_any(tf.constant(Path(path).read_bytes()))
        recordings.append(audio.to_mono_16k(samples, rate).numpy())
    return np.concatenate(recordings) if recordings else np.zeros([0], np.float32)


def _time_shift(waveform, max_shift: int):
    shift = tf.random.uniform([], -max_shift, max_shift + 1, tf.int32)
    padded = tf.pad(waveform, [[max_shift, max_shift]])
    return padded[max_shift - shift : max_shift - shift + CLIP_SAMPLES]


def _mix_noise(waveform, noise, cfg: AugmentConfig):
    start = tf.random.uniform([], 0, tf.shape(noise)[0] - CLIP_SAMPLES + 1, tf.int32)
    segment = noise[start : start + CLIP_SAMPLES]
    snr_db = tf.random.uniform([], cfg.snr_db_min, cfg.snr_db_max)
    signal_power = tf.reduce_mean(tf.square(waveform)) + 1e-10
    noise_power = tf.reduce_mean(tf.square(segment)) + 1e-10
    scale = tf.sqrt(signal_power / (noise_power * tf.pow(10.0, snr_db / 10.0)))
    mixed = waveform + scale * segment
    return tf.where(tf.random.uniform([]) < cfg.noise_probability, mixed, waveform)


def band_limit(waveform, cutoff_hz):
    """Remove everything above `cutoff_hz` (a brick-wall filter in the frequency domain)."""
    spectrum = tf.signal.rfft(waveform)
    bins = tf.cast(tf.range(tf.shape(spectrum)[0]), tf.float32) * (SAMPLE_RATE / CLIP_SAMPLES)
    return tf.signal.irfft(tf.where(bins <= cutoff_hz, spectrum, tf.zeros_like(spectrum)), [CLIP_SAMPLES])


def _random_lowpass(waveform, cfg: AugmentConfig):
    cutoff = tf.random.uniform([], cfg.lowpass_min_hz, SAMPLE_RATE / 2)
    return tf.where(tf.random.uniform([]) < cfg.lowpass_probability, band_limit(waveform, cutoff), waveform)


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


def _spec_augment(cfg: AugmentConfig):
    def mask_one(spectrogram):
        # tfio masks write zeros, which on a log scale is a loud band; centring first masks to the mean.
        mean = tf.reduce_mean(spectrogram)
        time_by_freq = tf.transpose(spectrogram[..., 0] - mean)  # tfio masks expect [time, freq]
        if cfg.freq_mask > 0:
            time_by_freq = tfio.audio.freq_mask(time_by_freq, param=cfg.freq_mask)
        if cfg.time_mask > 0:
            time_by_freq = tfio.audio.time_mask(time_by_freq, param=cfg.time_mask)
        return tf.transpose(time_by_freq)[..., tf.newaxis] + mean

    def mask_batch(batch, labels):
        masked = tf.map_fn(mask_one, batch)
        masked.set_shape(batch.shape)  # tfio's masks drop the static frame count
        return masked, labels

    return mask_batch


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


def decode_corpus(corpus, cache_dir: Path, strict: bool = False) -> dict[str, DecodedClips]:
    """Every split of a `corpus.Corpus`, decoded once and cached under its file-list fingerprint."""
    class_ids = {name: index for index, name in enumerate(corpus.classes)}
    key = _cache_key(corpus)
    splits = {}
    for split in ("train", "validation", "test"):
        clips = corpus.split(split)
        cache_file = Path(cache_dir) / "decoded" / f"{key}-{split}.npz"
        splits[split] = load_cached(cache_file, [str(c.path) for c in clips],
                                    [class_ids[c.label] for c in clips], strict)
    return splits


def _cache_key(corpus) -> str:
    # The fingerprint ignores where the corpus lives and when files changed; a cache must not.
    newest = max((clip.path.stat().st_mtime_ns for clip in corpus.clips), default=0)
    text = f"{corpus.fingerprint()}|{Path(corpus.root).resolve()}|{newest}|{','.join(corpus.classes)}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]
