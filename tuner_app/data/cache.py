"""The decoded cache: a corpus decoded once (in parallel, inside tf.data) and kept on disk, so that every
trial only reads waveforms. Also the background-noise bank the augmentation mixes in. A split is an int16
`.npy` [n, 16000] (written a batch at a time, read memory-mapped) and an `.npz` of labels, paths and skips."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import mmap
import os
import struct
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from tuner_app.constants import CLIP_SAMPLES
from tuner_app.data import audio
from tuner_app.errors import TunerAppError, storage_errors
from tuner_app.files import atomic_path

log = logging.getLogger(__name__)
AUTOTUNE = tf.data.AUTOTUNE
EMPTY = "empty audio (no samples)"
NOT_FINITE = audio.NOT_FINITE
SCALE = 32768.0  # int16 full scale: the decoders' own float = int16 / 32768, so 16-bit audio round-trips exactly
CACHE_FORMAT = "int16 npy memmap 2"  # in the cache key: a cache of an older layout is decoded again, once
_OPTION = "--cache-dir"  # where a refused write of the cache may go instead
# Streaming writers leave these in a size field they never go back to fill in: not a truncation.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


@dataclasses.dataclass(frozen=True)
class DecodedClips:
    """One split, decoded: waveforms [n, 16000] and integer labels [n]; `skipped` names the files left out,
    `skip_reasons` says why, in the same order. `waveforms` is float32 in memory (`decode_clips`) or the
    memory-mapped int16 cache (`load_cached`, `decode_corpus`): read float32 through `batch`."""

    waveforms: np.ndarray
    labels: np.ndarray
    paths: tuple[str, ...]
    skipped: tuple[str, ...] = ()
    skip_reasons: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, indices) -> np.ndarray:
        """float32 waveforms of the clips at `indices` (an index array or slice); only these are read."""
        waveforms = as_float(self.waveforms[indices])
        _release_pages(self.waveforms)
        return waveforms


def _release_pages(samples: np.ndarray) -> None:
    # Pages read through a memmap stay mapped, so reading the whole cache each epoch would grow the process
    # by its size; unmapped, they stay in the kernel's page cache for the next read, reclaimable.
    mapping = getattr(samples, "_mmap", None)  # np.memmap's own mmap; absent for arrays in memory
    if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)


def as_float(samples: np.ndarray) -> np.ndarray:
    """float32 waveforms of int16 (scaled by 1/32768) or float samples."""
    return np.asarray(samples, np.float32) * np.float32(1 / SCALE if samples.dtype == np.int16 else 1)


def as_int16(waveforms: np.ndarray) -> np.ndarray:
    """int16 samples of float waveforms in [-1, 1] (rounded, clipped at full scale)."""
    return np.clip(np.rint(waveforms * SCALE), -32768, 32767).astype(np.int16)


def wav_truncation(path: str | Path) -> str | None:
    """Why a RIFF/WAV file is cut short (a chunk running past the end of the file), or None. The decoder
    reads what is there, so without this an interrupted copy passes as a shorter clip. A file that cannot be
    opened gives None: decoding it names the reason."""
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


@tf.function(input_signature=[tf.TensorSpec([], tf.int64), tf.TensorSpec([], tf.string)])  # traced once, not per map
def _decode_path(index, path):
    return (index, *audio.decode(tf.io.read_file(path)))  # (index, clip, frames)


def _decoded_batches(paths: Sequence[str]) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(indices that decoded, their clips, their frame counts), a batch at a time; failed files are absent."""
    if not paths:
        return
    dataset = (
        tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), list(paths)))
        .map(_decode_path, num_parallel_calls=AUTOTUNE, deterministic=True)
        .ignore_errors()  # drops the error message too: `_failure_reason` finds it again
        .batch(256)
    )
    yield from dataset.as_numpy_iterator()


def _failure_reason(path: str) -> str:
    """Why a file failed in tf.data, which has no per-element try: decode it once more, eagerly."""
    try:
        audio.read(path)
    except TunerAppError as err:
        return str(err).removeprefix(f"{path}: ")
    except Exception as err:  # noqa: BLE001 - the file is already known bad; only its reason is wanted
        return f"unreadable audio ({type(err).__name__})"
    return "unreadable audio"


def _decode_each(paths: Sequence[str], keep: Callable[[np.ndarray], object]) -> tuple[np.ndarray, dict[int, str]]:
    """Decode files in parallel, handing each batch of good clips to `keep` in file order (so no second copy
    of a split is ever made): (indices of the good clips, {index: why it was skipped})."""
    reasons = {index: why for index, path in enumerate(paths) if (why := wav_truncation(path))}
    tried = np.array([index for index in range(len(paths)) if index not in reasons], np.int64)
    decoded, kept = [np.zeros([0], np.int64)], [np.zeros([0], np.int64)]
    for found, clips, frames in _decoded_batches([paths[index] for index in tried]):
        found = tried[found]
        good = _sort_out(found, clips, frames, reasons)
        decoded.append(found)
        kept.append(found[good])
        keep(clips[good])
    failed = sorted(set(tried.tolist()) - set(np.concatenate(decoded).tolist()))
    reasons.update((index, _failure_reason(paths[index])) for index in failed)
    return np.concatenate(kept), dict(sorted(reasons.items()))


def _sort_out(found: np.ndarray, clips: np.ndarray, frames: np.ndarray, reasons: dict[int, str]) -> np.ndarray:
    """Which decoded clips are good (a mask); why the others are not goes into `reasons`."""
    empty, not_finite = frames == 0, ~np.isfinite(clips).all(axis=1)
    reasons.update((index, EMPTY) for index in found[empty].tolist())
    reasons.update((index, NOT_FINITE) for index in found[not_finite & ~empty].tolist())
    return ~(empty | not_finite)


def decode_files(paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Decode files in parallel, in memory: (indices of the good clips, those clips float32, {index: why it
    was skipped}). For a few files; a corpus goes through the cache, which never holds it whole."""
    parts = [np.zeros([0, CLIP_SAMPLES], np.float32)]
    kept, reasons = _decode_each(paths, parts.append)
    return kept, np.concatenate(parts), reasons


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
    kept, waveforms, reasons = decode_files(paths)
    decoded = DecodedClips(waveforms, np.asarray(labels, np.int32)[kept], tuple(paths[i] for i in kept.tolist()),
                           tuple(paths[i] for i in reasons), tuple(reasons.values()))
    report_skipped(decoded.skipped, decoded.skip_reasons, strict)
    return decoded


def load_cached(cache_file: Path, paths: Sequence[str], labels: Sequence[int], strict: bool = False) -> DecodedClips:
    """`decode_clips`, kept as `cache_file` (an .npz of labels, paths and skips) and the int16 .npy of that
    name, so later searches on the same file list skip decoding; waveforms come back memory-mapped. A hit
    reports its skipped files just as the decoding did; the cache is written before `strict` refuses them."""
    decoded = _cached_or_decoded(cache_file, paths, labels)
    report_skipped(decoded.skipped, decoded.skip_reasons, strict)
    return decoded


def _cached_or_decoded(cache_file: Path, paths: Sequence[str], labels: Sequence[int]) -> DecodedClips:
    decoded = _read_cache(cache_file)
    if decoded is None:
        _write_cache(cache_file, paths, labels)
        decoded = _read_cache(cache_file)
    if decoded is None:
        raise TunerAppError(f"{cache_file}: the decoded cache just written cannot be read back")
    return decoded


def _read_cache(cache_file: Path) -> DecodedClips | None:
    if not Path(cache_file).exists():
        return None
    try:
        return _read_split(Path(cache_file))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        log.warning(f"{cache_file}: unreadable decoded cache ({err}); decoding again")
        return None


def _read_split(cache_file: Path) -> DecodedClips:
    with np.load(cache_file, allow_pickle=False) as saved:
        if str(saved["format"]) != CACHE_FORMAT:
            raise ValueError(f"format {saved['format']}, not {CACHE_FORMAT}")
        labels, paths = saved["labels"], tuple(saved["paths"].tolist())
        skipped, reasons = tuple(saved["skipped"].tolist()), tuple(saved["skip_reasons"].tolist())
    samples = np.load(cache_file.with_suffix(".npy"), mmap_mode="r", allow_pickle=False)
    if samples.dtype != np.int16 or samples.shape[1:] != (CLIP_SAMPLES,) or len(samples) < len(labels):
        raise ValueError(f"{samples.dtype} waveforms of shape {samples.shape} for {len(labels)} clips")
    return DecodedClips(samples[: len(labels)], labels, paths, skipped, reasons)


def _write_cache(cache_file: Path, paths: Sequence[str], labels: Sequence[int]) -> None:
    """Decode straight into the .npy, then write the .npz: last, so no reader finds labels without waveforms."""
    with storage_errors(npy := Path(cache_file).with_suffix(".npy"), _OPTION), atomic_path(npy) as temporary:
        kept, reasons = _decode_into(temporary, paths)
    kept_paths = [paths[index] for index in kept.tolist()]
    with storage_errors(cache_file, _OPTION), atomic_path(cache_file) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, format=np.asarray(CACHE_FORMAT), labels=np.asarray(labels, np.int32)[kept],
                 paths=np.asarray(kept_paths, dtype=str), skipped=np.asarray([paths[i] for i in reasons], dtype=str),
                 skip_reasons=np.asarray(list(reasons.values()), dtype=str))


def _decode_into(npy_file: Path, paths: Sequence[str]) -> tuple[np.ndarray, dict[int, str]]:
    """Decode into an int16 .npy with a row per file, good clips first: (kept indices, skip reasons). Plain
    writes, not a writable memmap, whose written pages would count in this process's memory."""
    rows = max(len(paths), 1)  # an empty .npy cannot be memory-mapped
    with open(npy_file, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": np.dtype(np.int16).str, "fortran_order": False,
                                                      "shape": (rows, CLIP_SAMPLES)})
        start = handle.tell()
        kept, reasons = _decode_each(paths, lambda clips: handle.write(as_int16(clips).tobytes()))
        handle.truncate(start + rows * CLIP_SAMPLES * np.dtype(np.int16).itemsize)  # skipped files' rows: zeros
    return kept, reasons


def decode_corpus(corpus, cache_dir: Path, strict: bool = False) -> dict[str, DecodedClips]:
    """Every split of a `corpus.Corpus`, decoded once and cached under its file-list fingerprint; the
    skipped files of all splits are named in one warning (or one error with `strict`)."""
    class_ids = {name: index for index, name in enumerate(corpus.classes)}
    key = _cache_key(corpus)
    splits = {}
    for split in ("train", "validation", "test"):
        clips = corpus.split(split)
        cache_file = Path(cache_dir) / "decoded" / f"{key}-{split}.npz"  # and its waveforms, {key}-{split}.npy
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
            f"|decoder {audio.DECODER_VERSION}|{CACHE_FORMAT}")
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
