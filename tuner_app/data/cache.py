"""The decoded cache: a corpus decoded once (in parallel, inside tf.data) and kept on disk, so that every
trial only reads waveforms. Also the background-noise bank the augmentation mixes in."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import struct
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from tuner_app.constants import CLIP_SAMPLES
from tuner_app.data import audio
from tuner_app.errors import TunerAppError
from tuner_app.files import atomic_path

log = logging.getLogger(__name__)
AUTOTUNE = tf.data.AUTOTUNE
EMPTY = "empty audio (no samples)"
NOT_FINITE = "NaN or infinite samples"
# Streaming writers leave these in a size field they never go back to fill in: not a truncation.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


@dataclasses.dataclass(frozen=True)
class DecodedClips:
    """One split, decoded: waveforms [n, 16000] float32 and integer labels [n]; `skipped` names the files
    left out, `skip_reasons` says why, in the same order."""

    waveforms: np.ndarray
    labels: np.ndarray
    paths: tuple[str, ...]
    skipped: tuple[str, ...] = ()
    skip_reasons: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.labels)


def wav_truncation(path: str | Path) -> str | None:
    """Why a RIFF/WAV file is cut short (a chunk running past the end of the file), or None.

    The decoder reads what is there, so without this an interrupted copy passes as a shorter clip.
    A file that cannot be opened gives None: decoding it names the reason.
    """
    try:
        with open(path, "rb") as handle:
            return _riff_truncation(handle) if handle.read(4) == b"RIFF" else None
    except OSError:
        return None


def _riff_truncation(handle) -> str | None:
    length, offset = os.fstat(handle.fileno()).st_size, 12
    while True:
        handle.seek(offset)
        header = handle.read(8)
        if len(header) < 8:
            return "truncated WAV (no data chunk before the end of the file)"
        chunk, size = header[:4], struct.unpack("<I", header[4:])[0]
        if chunk == b"data":
            available = length - offset - 8
            if size > available and size not in _UNKNOWN_SIZES:
                return f"truncated WAV (data chunk of {size} bytes, {available} in the file)"
            return None
        offset += 8 + size + size % 2


def _decode_path(index, path):
    clip, frames = audio.decode(tf.io.read_file(path))
    return index, clip, frames


def _decode_parallel(paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices that decoded, their clips, their frame counts); files that fail are simply absent."""
    found = np.zeros([0], np.int64), np.zeros([0, CLIP_SAMPLES], np.float32), np.zeros([0], np.int32)
    if not paths:
        return found
    dataset = (
        tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), list(paths)))
        .map(_decode_path, num_parallel_calls=AUTOTUNE, deterministic=True)
        .ignore_errors()  # drops the error message too: `_failure_reason` finds it again
        .batch(256)
    )
    parts = list(dataset.as_numpy_iterator())
    return tuple(np.concatenate([part[k] for part in parts]) for k in range(3)) if parts else found


def _failure_reason(path: str) -> str:
    """Why a file failed in tf.data, which has no per-element try: decode it once more, eagerly."""
    try:
        audio.read(path)
    except TunerAppError as err:
        return str(err).removeprefix(f"{path}: ")
    except Exception as err:  # noqa: BLE001 - the file is already known bad; only its reason is wanted
        return f"unreadable audio ({type(err).__name__})"
    return "unreadable audio"


def decode_files(paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Decode files in parallel: (indices of the good clips, those clips, {index: why it was skipped})."""
    reasons = {index: why for index, path in enumerate(paths) if (why := wav_truncation(path))}
    tried = np.array([index for index in range(len(paths)) if index not in reasons], np.int64)
    found, clips, frames = _decode_parallel([paths[index] for index in tried])
    found = tried[found]
    failed = sorted(set(tried.tolist()) - set(found.tolist()))
    reasons.update((index, _failure_reason(paths[index])) for index in failed)
    empty, not_finite = frames == 0, ~np.isfinite(clips).all(axis=1)
    reasons.update((index, EMPTY) for index in found[empty].tolist())
    reasons.update((index, NOT_FINITE) for index in found[not_finite & ~empty].tolist())
    good = ~(empty | not_finite)
    return found[good], clips[good], dict(sorted(reasons.items()))


def _decode(paths: Sequence[str], labels: Sequence[int]) -> DecodedClips:
    kept, waveforms, reasons = decode_files(paths)
    labels = np.asarray(labels, np.int32)[kept]
    return DecodedClips(waveforms, labels, tuple(paths[i] for i in kept.tolist()),
                        tuple(paths[i] for i in reasons), tuple(reasons.values()))


def report_skipped(skipped: Sequence[str], reasons: Sequence[str], strict: bool = False) -> None:
    """One warning naming every skipped file with its reason; with `strict`, a TunerAppError instead."""
    if not skipped:
        return
    named = ", ".join(f"{path} ({why})" for path, why in zip(skipped, reasons))
    message = f"{len(skipped)} unreadable, empty or corrupt file(s) skipped: {named}"
    if strict:
        raise TunerAppError(message.replace("skipped", "found (--strict)", 1))
    log.warning(message)


def decode_clips(paths: Sequence[str], labels: Sequence[int], strict: bool = False) -> DecodedClips:
    """Decode a split; unreadable, empty or corrupt files are skipped and named in one warning."""
    decoded = _decode(paths, labels)
    report_skipped(decoded.skipped, decoded.skip_reasons, strict)
    return decoded


def load_cached(cache_file: Path, paths: Sequence[str], labels: Sequence[int], strict: bool = False) -> DecodedClips:
    """`decode_clips`, kept in an .npz so later searches on the same file list skip decoding. A hit reports
    its skipped files just as the decoding did; the cache is written before `strict` refuses them."""
    decoded = _cached_or_decoded(cache_file, paths, labels)
    report_skipped(decoded.skipped, decoded.skip_reasons, strict)
    return decoded


def _cached_or_decoded(cache_file: Path, paths: Sequence[str], labels: Sequence[int]) -> DecodedClips:
    decoded = _read_cache(cache_file)
    if decoded is None:
        decoded = _decode(paths, labels)
        _write_cache(cache_file, decoded)
    return decoded


def _read_cache(cache_file: Path) -> DecodedClips | None:
    if not cache_file.exists():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as saved:
            skipped = tuple(saved["skipped"].tolist())
            reasons = saved["skip_reasons"].tolist() if "skip_reasons" in saved else ["not recorded"] * len(skipped)
            return DecodedClips(saved["waveforms"], saved["labels"], tuple(saved["paths"].tolist()), skipped,
                                tuple(reasons))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        log.warning(f"{cache_file}: unreadable decoded cache ({err}); decoding again")
        return None


def _write_cache(cache_file: Path, decoded: DecodedClips) -> None:
    with atomic_path(cache_file) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, waveforms=decoded.waveforms, labels=decoded.labels,
                 paths=np.asarray(decoded.paths, dtype=str), skipped=np.asarray(decoded.skipped, dtype=str),
                 skip_reasons=np.asarray(decoded.skip_reasons, dtype=str))


def decode_corpus(corpus, cache_dir: Path, strict: bool = False) -> dict[str, DecodedClips]:
    """Every split of a `corpus.Corpus`, decoded once and cached under its file-list fingerprint; the
    skipped files of all splits are named in one warning (or one error with `strict`)."""
    class_ids = {name: index for index, name in enumerate(corpus.classes)}
    key = _cache_key(corpus)
    splits = {}
    for split in ("train", "validation", "test"):
        clips = corpus.split(split)
        cache_file = Path(cache_dir) / "decoded" / f"{key}-{split}.npz"
        splits[split] = _cached_or_decoded(cache_file, [str(c.path) for c in clips],
                                           [class_ids[c.label] for c in clips])
    report_skipped([path for clips in splits.values() for path in clips.skipped],
                   [why for clips in splits.values() for why in clips.skip_reasons], strict)
    return splits


def _cache_key(corpus) -> str:
    # The fingerprint ignores where the corpus lives and when files changed; a cache must not. Nor may it
    # serve waveforms an older decoder made.
    newest = max((clip.path.stat().st_mtime_ns for clip in corpus.clips), default=0)
    text = (f"{corpus.fingerprint()}|{Path(corpus.root).resolve()}|{newest}|{','.join(corpus.classes)}"
            f"|decoder {audio.DECODER_VERSION}")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def noise_bank(noise_paths: Sequence[Path], strict: bool = False) -> np.ndarray:
    """All background-noise recordings at 16 kHz, concatenated (whole files, not 1 s clips). A file that
    cannot be read is skipped and named in one warning, as corpus files are; with `strict`, an error."""
    recordings, skipped = [], []
    for path in noise_paths:
        try:
            recordings.append(_noise_recording(Path(path)))
        except TunerAppError as err:
            skipped.append(str(err))
    if skipped:
        message = f"{len(skipped)} unreadable background-noise file(s) skipped: {'; '.join(skipped)}"
        if strict:
            raise TunerAppError(message.replace("skipped", "found (--strict)", 1))
        log.warning(message)
    return np.concatenate(recordings) if recordings else np.zeros([0], np.float32)


def _noise_recording(path: Path) -> np.ndarray:
    """One noise file at 16 kHz; TunerAppError naming the file if it is unreadable, empty or not finite."""
    reason = wav_truncation(path)
    if reason is None:
        recording = audio.read_recording(path)
        reason = EMPTY if recording.size == 0 else None if np.isfinite(recording).all() else NOT_FINITE
    if reason:
        raise TunerAppError(f"{path}: {reason}")
    return recording
