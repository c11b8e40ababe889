"""The built-in corpus: the seed words spoken by libespeak-ng, varied and noised, in the
Speech Commands layout (`word/<speaker>_nohash_<k>.wav`, split lists, `_background_noise_/`).

Determinism: every random choice is drawn up front from one numpy Generator into a plan.
libespeak-ng keeps hidden state between calls (its output depends on what the process said
before), so the plan is cut into a fixed number of shards and each shard is spoken by a fresh
process in a fixed order; the files then do not depend on the machine's core count.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import time
import wave
from pathlib import Path
from typing import Sequence

import numpy as np

from tuner_app.data.corpus import BACKGROUND_NOISE, LIST_FILES, SEED_WORDS
from tuner_app.data.espeak import ESPEAK_RATE, Espeak, load_library, trim_silence, voice_variants
from tuner_app.errors import TunerAppError, storage_errors
from tuner_app.files import staged_directory

SYNTH_VERSION = 1
RATE = 16000
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-us-nyc")
SPEAKING_RATES = tuple(range(110, 261, 10))  # words per minute; espeak's default is 175
NUM_SHARDS = 4  # fixed, not the core count: shard membership shapes espeak's output
MAX_SPEAKERS = 2000
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}
BACKGROUND_SECONDS = 20


@dataclasses.dataclass(frozen=True)
class SynthSummary:
    """What `synthesize` wrote: clip counts per split, speaker counts per split, wall time."""

    out: Path
    clips: dict[str, int]
    speakers: dict[str, int]
    seconds: float


@dataclasses.dataclass(frozen=True)
class Speaker:
    """One espeak voice+variant at one speaking rate: the unit that never crosses splits."""

    name: str
    voice: str
    rate: int
    pitch: int


@dataclasses.dataclass(frozen=True)
class Take:
    """One clip to render: who says what, and every random knob already drawn."""

    path: str
    word: str
    pitch: int
    pitch_range: int
    onset: float
    peak_db: float
    snr_db: float
    colour: str
    seed: int


def _speaker_name(accent: str, variant: str, rate: int) -> str:
    return "".join(ch for ch in f"{accent}{variant}r{rate}".lower() if ch.isascii() and ch.isalnum())


def plan_speakers(rng: np.random.Generator, count: int) -> list[Speaker]:
    """Draw `count` distinct voice+variant+rate speakers with a base pitch each."""
    variants = voice_variants()
    shape = (len(ACCENTS), len(variants), len(SPEAKING_RATES))
    speakers, seen = [], set()
    for flat in rng.permutation(math.prod(shape)):
        accent, variant, rate = np.unravel_index(flat, shape)
        name = _speaker_name(ACCENTS[accent], variants[variant], SPEAKING_RATES[rate])
        if name not in seen:
            seen.add(name)
            voice = f"{ACCENTS[accent]}+{variants[variant]}"
            speakers.append(Speaker(name, voice, SPEAKING_RATES[rate], int(rng.integers(25, 76))))
        if len(speakers) == count:
            return speakers
    raise TunerAppError(f"only {len(speakers)} distinct espeak speakers exist, {count} requested")


def split_speakers(rng: np.random.Generator, speakers: Sequence[Speaker]) -> dict[str, str]:
    """Speaker name -> split (train/validation/test), whole speakers, about 80/10/10."""
    count = len(speakers)
    held_out = max(1, round(SPLIT_FRACTIONS[1] * count)) if count >= 3 else 0
    order = rng.permutation(count)
    splits = ["validation"] * held_out + ["test"] * held_out + ["train"] * (count - 2 * held_out)
    return {speakers[index].name: split for index, split in zip(order, splits)}


def plan_takes(rng: np.random.Generator, speakers: Sequence[Speaker], words: Sequence[str],
               per_class: int) -> list[tuple[Speaker, Take]]:
    """Every clip of the corpus, word-major; clip i of a word goes to speaker i mod len(speakers)."""
    shape = (len(words), per_class)
    knobs = {
        "pitch_jitter": rng.integers(-8, 9, shape), "pitch_range": rng.integers(20, 91, shape),
        "onset": rng.random(shape), "peak_db": rng.uniform(-24.0, -2.0, shape),
        "snr_db": rng.uniform(5.0, 30.0, shape), "colour": rng.integers(0, len(NOISE_COLOURS), shape),
        "seed": rng.integers(0, 2**31 - 1, shape),
    }
    colours = list(NOISE_COLOURS)
    takes = []
    for (w, i), word in ((index, words[index[0]]) for index in np.ndindex(shape)):
        speaker = speakers[i % len(speakers)]
        pitch = int(np.clip(speaker.pitch + knobs["pitch_jitter"][w, i], 0, 99))
        takes.append((speaker, Take(
            f"{word}/{speaker.name}_nohash_{i // len(speakers)}.wav", word, pitch, int(knobs["pitch_range"][w, i]),
            float(knobs["onset"][w, i]), float(knobs["peak_db"][w, i]), float(knobs["snr_db"][w, i]),
            colours[knobs["colour"][w, i]], int(knobs["seed"][w, i]))))
    return takes


def coloured_noise(rng: np.random.Generator, length: int, exponent: float) -> np.ndarray:
    """Unit-RMS noise whose power falls as 1/f**exponent (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    frequencies = np.fft.rfftfreq(length, 1 / RATE)
    frequencies[0] = frequencies[1]  # keep DC finite; it is removed below anyway
    spectrum *= frequencies ** (-exponent / 2)
    spectrum[0] = 0
    noise = np.fft.irfft(spectrum, length)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def render(samples: np.ndarray, take: Take) -> np.ndarray:
    """espeak's 22050 Hz int16 output -> the finished 1 s, 16 kHz int16 clip of `take`."""
    speech = trim_silence(samples.astype(np.float64) / 32768.0)[:ESPEAK_RATE]
    start = int(take.onset * (ESPEAK_RATE - speech.size))
    window = np.zeros(ESPEAK_RATE)
    window[start:start + speech.size] = speech
    # Band-limited resampling by spectrum truncation: exact because 1 s at both rates.
    spectrum = np.fft.rfft(window)[: RATE // 2 + 1]
    clip = np.fft.irfft(spectrum, RATE) * (RATE / ESPEAK_RATE)
    clip *= 10 ** (take.peak_db / 20) / (np.abs(clip).max() + 1e-9)
    active = clip[int(start * RATE / ESPEAK_RATE):int((start + speech.size) * RATE / ESPEAK_RATE)]
    speech_power = np.mean(active**2) if active.size else np.mean(clip**2)
    noise = coloured_noise(np.random.default_rng(take.seed), RATE, NOISE_COLOURS[take.colour])
    clip += noise * np.sqrt(speech_power / 10 ** (take.snr_db / 10))
    return np.round(np.clip(clip, -1.0, 32767 / 32768) * 32768).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray) -> None:
    """Write int16 mono samples as a 16 kHz WAV."""
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(RATE)
        handle.writeframes(samples.astype("<i2").tobytes())


def _speak_shard(args: tuple[str, list[tuple[Speaker, Take]]]) -> int:
    root, shard = args
    espeak = Espeak()
    for speaker, take in shard:
        samples = espeak.say(take.word, speaker.voice, speaker.rate, take.pitch, take.pitch_range, take.seed)
        write_wav(Path(root) / take.path, render(samples, take))
    return len(shard)


def _shards(takes: list[tuple[Speaker, Take]]) -> list[list[tuple[Speaker, Take]]]:
    # Speaker-major inside a shard, so each process says one speaker's words back to back.
    names = sorted({speaker.name for speaker, _ in takes})
    shard_of = {name: index % NUM_SHARDS for index, name in enumerate(names)}
    shards: list[list[tuple[Speaker, Take]]] = [[] for _ in range(NUM_SHARDS)]
    for speaker, take in sorted(takes, key=lambda pair: (pair[0].name, pair[1].path)):
        shards[shard_of[speaker.name]].append((speaker, take))
    return [shard for shard in shards if shard]


def _speak_all(root: Path, takes: list[tuple[Speaker, Take]], workers: int | None) -> None:
    shards = _shards(takes)
    workers = min(workers or os.cpu_count() or 1, len(shards))
    # Always fresh processes (spawn, one shard each): espeak's hidden state must start clean,
    # and the parent may hold TensorFlow threads that make fork unsafe.
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, maxtasksperchild=1) as pool:
        pool.map(_speak_shard, [(str(root), shard) for shard in shards], chunksize=1)


def write_background_noise(rng: np.random.Generator, folder: Path) -> None:
    """Long noise recordings for mixing augmentation: white, pink, brown and mains hum."""
    folder.mkdir()
    length = BACKGROUND_SECONDS * RATE
    tracks = {f"{name}_noise": coloured_noise(rng, length, exponent) for name, exponent in NOISE_COLOURS.items()}
    t = np.arange(length) / RATE
    hum = sum(np.sin(2 * np.pi * 50 * h * t + rng.uniform(0, 2 * np.pi)) / h for h in range(1, 6))
    tracks["hum_noise"] = hum / np.sqrt(np.mean(hum**2)) + 0.1 * coloured_noise(rng, length, 1.0)
    for name, track in tracks.items():
        scaled = track * 0.1 / np.sqrt(np.mean(track**2))
        write_wav(folder / f"{name}.wav", np.round(np.clip(scaled, -1, 1) * 32767).astype(np.int16))


def _write_lists(root: Path, takes: list[tuple[Speaker, Take]], split_of: dict[str, str]) -> None:
    for split, list_name in LIST_FILES.items():
        paths = sorted(take.path for speaker, take in takes if split_of[speaker.name] == split)
        (root / list_name).write_text("".join(f"{path}\n" for path in paths))


def _check_target(out: Path) -> None:
    if out.is_file() or (out.is_dir() and any(out.iterdir())):
        raise TunerAppError(f"output {out} already exists and is not empty; choose a new directory")


def synthesize(out: Path, per_class: int = 200, seed: int = 0, words: Sequence[str] = SEED_WORDS,
               workers: int | None = None, option: str = "OUT") -> SynthSummary:
    """Speak `per_class` clips of each word into a new Speech Commands corpus at `out`.

    Built in a temporary sibling directory and renamed into place, so `out` is either absent
    or complete. Same arguments -> byte-identical files. A write the disk refuses is one line
    naming `out` and the `option` to change.
    """
    out = Path(out)
    _check_target(out)
    if per_class < 1 or seed < 0:
        raise TunerAppError(f"per_class must be >= 1 and seed >= 0, got {per_class} and {seed}")
    load_library()  # fail here, with a clear message, rather than inside a worker
    started = time.monotonic()
    rng = np.random.default_rng(seed)
    speakers = plan_speakers(rng, min(per_class, MAX_SPEAKERS))
    split_of = split_speakers(rng, speakers)
    takes = plan_takes(rng, speakers, list(words), per_class)
    with storage_errors(out, option), staged_directory(out) as staging:
        for word in words:
            (staging / word).mkdir()
        write_background_noise(rng, staging / BACKGROUND_NOISE)
        _write_lists(staging, takes, split_of)
        _speak_all(staging, takes, workers)
        _check_target(out)  # another process may have made it meanwhile
    return _summary(out, takes, split_of, time.monotonic() - started)


def _summary(out: Path, takes, split_of: dict[str, str], seconds: float) -> SynthSummary:
    clips = {split: 0 for split in ("train", "validation", "test")}
    for speaker, _ in takes:
        clips[split_of[speaker.name]] += 1
    speakers = {split: sum(1 for value in split_of.values() if value == split) for split in clips}
    return SynthSummary(out, clips, speakers, round(seconds, 2))


def default_corpus(cache_dir: Path, per_class: int = 200, seed: int = 0) -> Path:
    """The built-in corpus, synthesized once into `cache_dir` and reused afterwards."""
    target = Path(cache_dir) / f"synth-v{SYNTH_VERSION}-n{per_class}-s{seed}"
    if _is_complete(target):
        return target
    try:
        synthesize(target, per_class=per_class, seed=seed, option="--cache-dir")
    except TunerAppError:
        if not _is_complete(target):  # another job may have finished it first
            raise
    return target


def _is_complete(corpus: Path) -> bool:
    return all((corpus / name).is_file() for name in LIST_FILES.values())
