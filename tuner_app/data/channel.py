"""Microphone and channel colouring for the built-in corpus: each take passes through a random band-limited,
tilted, resonant response, as cheap microphones, phone codecs and browsers record speech (Speech Commands
clips carry little energy above 4 kHz, where espeak's formant synthesis is bright)."""

from __future__ import annotations

import dataclasses

import numpy as np

RATE = 16000
HIGHPASS_RANGE = (40.0, 200.0)  # Hz: from good microphones to small phone capsules
LOWPASS_RANGE = (3000.0, 7000.0)  # Hz: narrow-band codecs to wide-band ones
TILT_RANGE = (-2.0, 2.0)  # dB per octave around 1 kHz: microphones and rooms dull or brighten the top
# espeak's voices carry 5-10 dB less energy at 0.5-3 kHz (against their total) than the Speech Commands sample's
# speakers (long-term average spectra of its 160 clips of the 16 words against the built-in corpus): every channel
# lifts it. The sample's 140 clips of its other 14 words, never evaluated, have the same spectrum within 2 dB from
# 0.3 to 4 kHz, so the lift is the recording population's, not the evaluated clips'.
PRESENCE_HZ = 1300.0
PRESENCE_DB = 6.0
PRESENCE_OCTAVES = 2.0
RESONANCE_HZ_RANGE = (300.0, 5000.0)
RESONANCE_DB_RANGE = (-8.0, 8.0)
RESONANCE_OCTAVES = 1.0  # width of a resonance bump (between its half-gain points, roughly)
RESONANCES = 1  # per channel: 3 measured no better (benchmarks/results/builtin_transfer.md)
SLOPE_ORDERS = (1, 2, 4)  # Butterworth-like orders of the band edges: 6, 12 or 24 dB per octave


@dataclasses.dataclass(frozen=True)
class Channel:
    """One drawn microphone and channel: band edges (Hz) and their orders, tilt (dB/octave), resonances (Hz, dB)."""

    highpass_hz: float
    lowpass_hz: float
    order: int
    tilt_db: float
    resonances: tuple[tuple[float, float], ...]


def draw_channel(rng: np.random.Generator) -> Channel:
    """A random channel; every draw comes from `rng`, in a fixed order."""
    return Channel(highpass_hz=float(rng.uniform(*HIGHPASS_RANGE)), lowpass_hz=float(rng.uniform(*LOWPASS_RANGE)),
                   order=int(rng.choice(SLOPE_ORDERS)), tilt_db=float(rng.uniform(*TILT_RANGE)),
                   resonances=tuple(_draw_resonance(rng) for _ in range(RESONANCES)))


def _draw_resonance(rng: np.random.Generator) -> tuple[float, float]:
    """(centre Hz, uniform on a log scale; gain dB)."""
    return float(np.exp(rng.uniform(*np.log(RESONANCE_HZ_RANGE)))), float(rng.uniform(*RESONANCE_DB_RANGE))


def gain(channel: Channel, frequencies: np.ndarray) -> np.ndarray:
    """The channel's magnitude response at `frequencies` (Hz), 1 at 1 kHz before the band edges."""
    safe = np.maximum(frequencies, 1.0)  # DC: the high-pass takes it to ~0 anyway
    highpass = 1 / np.sqrt(1 + (channel.highpass_hz / safe) ** (2 * channel.order))
    lowpass = 1 / np.sqrt(1 + (safe / channel.lowpass_hz) ** (2 * channel.order))
    octaves_from_1k = np.log2(safe / 1000.0)
    tilt_db = channel.tilt_db * octaves_from_1k
    resonance_db = sum(_bump_db(safe, hz, db, RESONANCE_OCTAVES) for hz, db in channel.resonances)
    presence_db = _bump_db(safe, PRESENCE_HZ, PRESENCE_DB, PRESENCE_OCTAVES)
    return highpass * lowpass * 10 ** ((tilt_db + resonance_db + presence_db) / 20)


def _bump_db(frequencies: np.ndarray, centre_hz: float, height_db: float, octaves: float) -> np.ndarray:
    """A bell in dB over log frequency: `height_db` at `centre_hz`, about half of it `octaves`/2 either side."""
    distance = np.log2(frequencies / centre_hz) / (octaves / 2)
    return height_db * np.exp(-0.7 * distance**2)


def colour(clip: np.ndarray, channel: Channel) -> np.ndarray:
    """`clip` (16 kHz) through the channel, zero-phase: the response is smooth, so its time smear is short."""
    spectrum = np.fft.rfft(clip)
    spectrum *= gain(channel, np.fft.rfftfreq(clip.size, 1 / RATE))
    return np.fft.irfft(spectrum, clip.size)
