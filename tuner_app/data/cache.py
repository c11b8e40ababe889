"""The decoded cache: a corpus decoded once (in parallel, inside tf.data) and kept on disk, so that every
trial only reads waveforms. Also the background-noise bank the augmentation mixes in."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from tuner_app.constants import CLIP_SAMPLES
from tuner_app.data import audio
from tuner_app.errors import TunerAppError

log = logging.getLogger(__name__)
AUTOTUNE = tf.data.AUTOTUNE


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


def noise_bank(noise_paths: Sequence[Path]) -> np.ndarray:
    """All background-noise recordings at 16 kHz, concatenated (whole files, not 1 s clips)."""
    recordings = []
    for path in noise_paths:
        samples, rate = audio.decode_any(tf.constant(Path(path).read_bytes()))
        recordings.append(audio.to_mono_16k(samples, rate).numpy())
    return np.concatenate(recordings) if recordings else np.zeros([0], np.float32)
