"""The built-in corpus: the seed words spoken by libespeak-ng, then made to sound recorded (takes.py plans
every clip, render.py renders one: vocal-tract shift, simulated room, noise, microphone, level), in the
Speech Commands layout (`word/<speaker>_nohash_<k>.wav`, split lists, `_background_noise_/`).

Determinism: every random choice is drawn up front from one numpy Generator into a plan.
libespeak-ng keeps hidden state between calls (its output depends on what the process said
before), so the plan is cut into a fixed number of shards and each shard is spoken by a fresh
process in a fixed order; the files then do not depend on the machine's core count.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import time
import wave
from pathlib import Path
from typing import Sequence

import numpy as np

from tuner_app.data.corpus import BACKGROUND_NOISE, LIST_FILES, SEED_WORDS
from tuner_app.data.espeak import Espeak, load_library
from tuner_app.data.render import coloured_noise, render
from tuner_app.data.rooms import room_bank
from tuner_app.data.takes import (NOISE_COLOURS, Recipe, Speaker, Take, plan_speakers, plan_takes,
                                  speaker_variants, split_speakers)
from tuner_app.errors import TunerAppError, storage_errors
from tuner_app.files import staged_directory

SYNTH_VERSION = 2  # in the cache's folder name: a new recipe never reuses a corpus an older one wrote
RATE = 16000
NUM_SHARDS = 4  # fixed, not the core count: shard membership shapes espeak's output
MAX_SPEAKERS = 2000
BACKGROUND_SECONDS = 20


@dataclasses.dataclass(frozen=True)
class SynthSummary:
    """What `synthesize` wrote: clip counts per split, speaker counts per split, wall time."""

    out: Path
    clips: dict[str, int]
    speakers: dict[str, int]
    seconds: float


def write_wav(path: Path, samples: np.ndarray) -> None:
    """Write int16 mono samples as a 16 kHz WAV."""
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(RATE)
        handle.writeframes(samples.astype("<i2").tobytes())


def _speak_shard(args: tuple[str, list[tuple[Speaker, Take]], list[np.ndarray]]) -> int:
    root, shard, rooms = args
    espeak = Espeak()
    for speaker, take in shard:
        samples = espeak.say(take.text, speaker.voice, take.rate, take.pitch, take.pitch_range, take.seed)
        write_wav(Path(root) / take.path, render(samples, take, rooms))
    return len(shard)


def _shards(takes: list[tuple[Speaker, Take]]) -> list[list[tuple[Speaker, Take]]]:
    # Speaker-major inside a shard, so each process says one speaker's words back to back.
    names = sorted({speaker.name for speaker, _ in takes})
    shard_of = {name: index % NUM_SHARDS for index, name in enumerate(names)}
    shards: list[list[tuple[Speaker, Take]]] = [[] for _ in range(NUM_SHARDS)]
    for speaker, take in sorted(takes, key=lambda pair: (pair[0].name, pair[1].path)):
        shards[shard_of[speaker.name]].append((speaker, take))
    return [shard for shard in shards if shard]


def _speak_all(root: Path, takes: list[tuple[Speaker, Take]], rooms: list[np.ndarray], workers: int | None) -> None:
    shards = _shards(takes)
    workers = min(workers or os.cpu_count() or 1, len(shards))
    # Always fresh processes (spawn, one shard each): espeak's hidden state must start clean,
    # and the parent may hold TensorFlow threads that make fork unsafe.
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, maxtasksperchild=1) as pool:
        pool.map(_speak_shard, [(str(root), shard, rooms) for shard in shards], chunksize=1)


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
               workers: int | None = None, option: str = "OUT", recipe: Recipe = Recipe()) -> SynthSummary:
    """Speak `per_class` clips of each word into a new Speech Commands corpus at `out`, through the stages
    of `recipe` (all of them for the built-in corpus).

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
    speakers = plan_speakers(rng, min(per_class, MAX_SPEAKERS), speaker_variants(recipe))
    split_of = split_speakers(rng, speakers)
    takes = plan_takes(rng, speakers, list(words), per_class, recipe)
    room_seed = int(rng.integers(0, 2**31 - 1))  # drawn either way: a recipe without rooms keeps other draws
    rooms = room_bank(np.random.default_rng(room_seed)) if recipe.reverb else []
    with storage_errors(out, option), staged_directory(out) as staging:
        for word in words:
            (staging / word).mkdir()
        write_background_noise(rng, staging / BACKGROUND_NOISE)
        _write_lists(staging, takes, split_of)
        _speak_all(staging, takes, rooms, workers)
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
