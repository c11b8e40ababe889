"""The plan of the built-in corpus: who speaks, who is held out, and every random knob of every clip, all
drawn up front from one numpy Generator (so a clip never depends on the order clips are rendered in)."""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from tuner_app.data.channel import Channel, draw_channel
from tuner_app.data.espeak import voice_variants
from tuner_app.data.rooms import ROOM_COUNT
from tuner_app.errors import TunerAppError

ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-us-nyc",
           "en-gb-x-gbcwmd")
SPEAKING_RATES = tuple(range(110, 261, 10))  # words per minute; espeak's default is 175
# espeak variants that sound like no person (robots, croaks, whispers): left out of the built-in corpus.
INHUMAN_VARIANTS = ("Demonic", "UniRobot", "anikaRobot", "croak", "whisper", "whisperf") + tuple(
    f"robosoft{suffix}" for suffix in ("", "2", "3", "4", "5", "6", "7", "8"))
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}
ENDINGS = ("", ".", "!", "?", ",")  # espeak's clause types: each its own intonation contour
RATE_JITTER = 0.15  # a take's speaking rate: its speaker's, +-15%
SPEED_RANGE = (0.85, 1.15)  # resampling factor: shifts formants and pitch together, as vocal tracts differ
DRY_FRACTION = 0.15  # takes heard with no room at all (close-talking microphones)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The realism stages a corpus goes through; the built-in corpus uses them all (benchmarks turn them off
    one at a time to measure each). Every knob is drawn whatever the recipe, so turning one stage off leaves
    the others' draws as they were."""

    reverb: bool = True
    colouring: bool = True
    speed: bool = True
    prosody: bool = True
    human_voices: bool = True
    snr_db: tuple[float, float] = (5.0, 50.0)
    peak_db: tuple[float, float] = (-24.0, -1.0)


@dataclasses.dataclass(frozen=True)
class Speaker:
    """One espeak voice+variant at one speaking rate: the unit that never crosses splits."""

    name: str
    voice: str
    rate: int
    pitch: int


@dataclasses.dataclass(frozen=True)
class Take:
    """One clip to render: who says what, and every random knob already drawn. `room` indexes the corpus's
    room bank (-1: no room); `channel` None: no colouring; `speed` 1: no resampling shift."""

    path: str
    word: str
    text: str
    rate: int
    pitch: int
    pitch_range: int
    speed: float
    onset: float
    peak_db: float
    snr_db: float
    colour: str
    room: int
    channel: Channel | None
    seed: int


def _speaker_name(accent: str, variant: str, rate: int) -> str:
    return "".join(ch for ch in f"{accent}{variant}r{rate}".lower() if ch.isascii() and ch.isalnum())


def speaker_variants(recipe: Recipe) -> list[str]:
    """The espeak variants speakers are drawn from, sorted."""
    variants = voice_variants()
    return [name for name in variants if name not in INHUMAN_VARIANTS] if recipe.human_voices else variants


def plan_speakers(rng: np.random.Generator, count: int, variants: Sequence[str]) -> list[Speaker]:
    """Draw `count` distinct voice+variant+rate speakers with a base pitch each."""
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


def _draw_knobs(rng: np.random.Generator, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Every per-take random number, as arrays of `shape` (words, clips per word); unit ranges where the
    recipe sets the scale."""
    knobs = {
        "pitch_jitter": rng.integers(-8, 9, shape), "pitch_range": rng.integers(20, 91, shape),
        "onset": rng.random(shape), "peak": rng.random(shape), "snr": rng.random(shape),
        "colour": rng.integers(0, len(NOISE_COLOURS), shape), "seed": rng.integers(0, 2**31 - 1, shape),
        "ending": rng.integers(0, len(ENDINGS), shape), "rate": rng.uniform(-RATE_JITTER, RATE_JITTER, shape),
        "speed": rng.uniform(*SPEED_RANGE, shape), "dry": rng.random(shape) < DRY_FRACTION,
        "room": rng.integers(0, ROOM_COUNT, shape),
    }
    knobs["channel"] = np.array([draw_channel(rng) for _ in range(math.prod(shape))], dtype=object).reshape(shape)
    return knobs


def _within(unit: float, bounds: tuple[float, float]) -> float:
    return float(bounds[0] + unit * (bounds[1] - bounds[0]))


def _take(path: str, word: str, speaker: Speaker, knobs: dict[str, object], recipe: Recipe) -> Take:
    """One take from its drawn knobs (scalars), with the stages the recipe leaves out made neutral."""
    rate = round(speaker.rate * (1 + knobs["rate"])) if recipe.prosody else speaker.rate
    return Take(path, word, word + (ENDINGS[knobs["ending"]] if recipe.prosody else ""), rate,
                int(np.clip(speaker.pitch + knobs["pitch_jitter"], 0, 99)), int(knobs["pitch_range"]),
                float(knobs["speed"]) if recipe.speed else 1.0, float(knobs["onset"]),
                _within(knobs["peak"], recipe.peak_db), _within(knobs["snr"], recipe.snr_db),
                list(NOISE_COLOURS)[knobs["colour"]], -1 if knobs["dry"] or not recipe.reverb else int(knobs["room"]),
                knobs["channel"] if recipe.colouring else None, int(knobs["seed"]))


def plan_takes(rng: np.random.Generator, speakers: Sequence[Speaker], words: Sequence[str], per_class: int,
               recipe: Recipe = Recipe()) -> list[tuple[Speaker, Take]]:
    """Every clip of the corpus, word-major; clip i of a word goes to speaker i mod len(speakers)."""
    shape = (len(words), per_class)
    knobs = _draw_knobs(rng, shape)
    takes = []
    for w, i in np.ndindex(shape):
        speaker = speakers[i % len(speakers)]
        path = f"{words[w]}/{speaker.name}_nohash_{i // len(speakers)}.wav"
        own = {name: values[w, i] for name, values in knobs.items()}
        takes.append((speaker, _take(path, words[w], speaker, own, recipe)))
    return takes
