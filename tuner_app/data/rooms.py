"""Simulated rooms for the built-in corpus: a bank of room impulse responses (shoebox rooms by the image-source
method of pyroomacoustics), drawn from the corpus seed, so that espeak's dry, close-talk voice sounds as if
spoken into a laptop or phone across a real room."""

from __future__ import annotations

import dataclasses

import numpy as np

RATE = 16000
ROOM_COUNT = 64  # the bank each corpus draws from: varied enough, and ~2 s to compute
ROOM_SIZE_RANGES = ((3.0, 9.0), (2.5, 7.0), (2.3, 3.5))  # metres: living rooms to small halls
RT60_RANGE = (0.15, 0.8)  # seconds: furnished homes to bare rooms
MIC_DISTANCE_RANGE = (0.3, 2.5)  # metres from the mouth: phone in hand to laptop across a desk
MAX_ORDER = 40  # image-source order cap: later reflections add little at these RT60s and cost time
WALL_MARGIN = 0.4  # metres kept between any wall and the talker or the microphone
PRE_DELAY = 40  # samples kept before the direct path: the fractional-delay filter's leading half


@dataclasses.dataclass(frozen=True)
class Room:
    """One drawn room: its size (m), reverberation time (s), talker and microphone positions (m)."""

    size: tuple[float, float, float]
    rt60: float
    source: tuple[float, float, float]
    microphone: tuple[float, float, float]


def draw_room(rng: np.random.Generator) -> Room:
    """A random shoebox room with the talker and the microphone inside it, apart by MIC_DISTANCE_RANGE."""
    size = np.array([rng.uniform(low, high) for low, high in ROOM_SIZE_RANGES])
    rt60 = float(rng.uniform(*RT60_RANGE))
    source = _inside(rng.uniform(0, 1, 3), size)
    direction = rng.standard_normal(3)
    direction[2] *= 0.2  # mostly level: the microphone sits about at mouth height
    distance = rng.uniform(*MIC_DISTANCE_RANGE)
    microphone = _inside_clamped(source + distance * direction / np.linalg.norm(direction), size)
    return Room(tuple(size.tolist()), rt60, tuple(source.tolist()), tuple(microphone.tolist()))


def _inside(fractions: np.ndarray, size: np.ndarray) -> np.ndarray:
    return WALL_MARGIN + fractions * (size - 2 * WALL_MARGIN)


def _inside_clamped(point: np.ndarray, size: np.ndarray) -> np.ndarray:
    return np.clip(point, WALL_MARGIN, size - WALL_MARGIN)


def impulse_response(room: Room) -> np.ndarray:
    """The room's impulse response at 16 kHz from the talker to the microphone, starting just before the
    direct sound (so convolving does not move the word), its direct peak at 1."""
    import pyroomacoustics  # here: only synthesis needs it, and it takes a second to import

    absorption, max_order = pyroomacoustics.inverse_sabine(room.rt60, list(room.size))
    shoebox = pyroomacoustics.ShoeBox(list(room.size), fs=RATE, materials=pyroomacoustics.Material(absorption),
                                      max_order=min(max_order, MAX_ORDER))
    shoebox.add_source(list(room.source))
    shoebox.add_microphone(list(room.microphone))
    shoebox.compute_rir()
    response = np.asarray(shoebox.rir[0][0], np.float64)
    peak = int(np.argmax(np.abs(response)))
    response = response[max(0, peak - PRE_DELAY):RATE]
    return response / np.abs(response).max()


def room_bank(rng: np.random.Generator, count: int = ROOM_COUNT) -> list[np.ndarray]:
    """`count` impulse responses of rooms drawn from `rng`: same generator state, same responses."""
    return [impulse_response(draw_room(rng)) for _ in range(count)]


def reverberate(clip: np.ndarray, response: np.ndarray) -> np.ndarray:
    """`clip` heard through `response`, cut to the clip's length (a tail past the clip's end is lost, as in a
    recording that stops)."""
    size = 1 << int(np.ceil(np.log2(clip.size + response.size - 1)))  # a power of two: numpy's fastest FFT
    spectrum = np.fft.rfft(clip, size) * np.fft.rfft(response, size)
    return np.fft.irfft(spectrum, size)[:clip.size]
