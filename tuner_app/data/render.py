"""Rendering one planned take of the built-in corpus: espeak's dry 22,050 Hz word -> a finished 1 s, 16 kHz
clip, through the take's vocal-tract shift, place in the clip, room, noise, microphone and level."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tuner_app.data.channel import colour
from tuner_app.data.espeak import ESPEAK_RATE, trim_silence
from tuner_app.data.rooms import reverberate
from tuner_app.data.takes import NOISE_COLOURS, Take

RATE = 16000
FULL_SCALE = 32767 / 32768


def coloured_noise(rng: np.random.Generator, length: int, exponent: float) -> np.ndarray:
    """Unit-RMS noise whose power falls as 1/f**exponent (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    frequencies = np.fft.rfftfreq(length, 1 / RATE)
    frequencies[0] = frequencies[1]  # keep DC finite; it is removed below anyway
    spectrum *= frequencies ** (-exponent / 2)
    spectrum[0] = 0
    noise = np.fft.irfft(spectrum, length)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def shifted_speech(samples: np.ndarray, speed: float) -> np.ndarray:
    """espeak's int16 word, silence trimmed, at 16 kHz as if spoken `speed` times faster and higher (formants
    and pitch move together, as between shorter and longer vocal tracts); at most 1 s."""
    speech = trim_silence(samples.astype(np.float64) / 32768.0)
    length = max(1, round(speech.size * RATE / (ESPEAK_RATE * speed)))
    return resampled(speech, length)[:RATE]


def resampled(signal: np.ndarray, length: int) -> np.ndarray:
    """`signal` stretched to `length` samples by its spectrum, truncated or zero-padded (band-limited).
    numpy's FFT, not scipy.signal: importing that costs each synthesis process a second."""
    spectrum = np.fft.rfft(signal)
    kept = np.zeros(length // 2 + 1, complex)
    count = min(kept.size, spectrum.size)
    kept[:count] = spectrum[:count]
    return np.fft.irfft(kept, length) * (length / signal.size)


def placed(speech: np.ndarray, onset: float) -> tuple[np.ndarray, slice]:
    """A 1 s clip with `speech` starting `onset` (0-1) of the way through the free time; and where it lies."""
    start = int(onset * (RATE - speech.size))
    clip = np.zeros(RATE)
    clip[start:start + speech.size] = speech
    return clip, slice(start, start + speech.size)


def noise_for(take: Take, speech: np.ndarray) -> np.ndarray:
    """The take's background noise, at its SNR against the power of `speech` (the word alone)."""
    noise = coloured_noise(np.random.default_rng(take.seed), RATE, NOISE_COLOURS[take.colour])
    return noise * np.sqrt(np.mean(speech**2) / 10 ** (take.snr_db / 10))


def render(samples: np.ndarray, take: Take, rooms: Sequence[np.ndarray] = ()) -> np.ndarray:
    """espeak's 22,050 Hz int16 output -> the finished 1 s, 16 kHz int16 clip of `take`; `rooms` is the corpus's
    room bank that `take.room` indexes. Noise joins after the room (it is not the talker's) and before the
    microphone (which hears both); the level is set last, so no clip is clipped."""
    clip, word = placed(shifted_speech(samples, take.speed), take.onset)
    if take.room >= 0:
        clip = reverberate(clip, rooms[take.room])
    clip += noise_for(take, clip[word])
    if take.channel is not None:
        clip = colour(clip, take.channel)
    clip *= 10 ** (take.peak_db / 20) / (np.abs(clip).max() + 1e-9)
    return np.round(np.clip(clip, -1.0, FULL_SCALE) * 32768).astype(np.int16)
