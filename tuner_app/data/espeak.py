"""libespeak-ng through ctypes (the library and voices ship in the PyPI wheel `espeakng-loader`): speak a
word with a voice, rate and pitch, and check that what came out is speech."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

from tuner_app.errors import TunerAppError

ESPEAK_RATE = 22050
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_PARAMS = {"rate": 1, "pitch": 3, "range": 4}
_ESPEAK_CHARS_UTF8 = 1
_EE_OK = 0
# -60 dBFS: espeak's quietest voices speak a word at about -37 dBFS RMS; a silent clip sits far below.
MIN_SPEECH_RMS = 1e-3


class Espeak:
    """A thin ctypes binding to libespeak-ng from the `espeakng-loader` wheel."""

    def __init__(self) -> None:
        self._lib, data_path = load_library()
        self._lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self._lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                           ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self._lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), 0)
        if rate != ESPEAK_RATE:
            raise TunerAppError(f"libespeak-ng failed to initialise with data {data_path} (returned {rate})")
        self._chunks: list[np.ndarray] = []
        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
        self._callback = callback_type(self._collect)  # kept alive: espeak holds a raw pointer
        self._lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, samples, count, _events) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0

    def say(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int, seed: int) -> np.ndarray:
        """Speak `text`; returns int16 samples at 22050 Hz."""
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise TunerAppError(f"espeak voice {voice!r} is not available")
        for name, value in (("rate", rate), ("pitch", pitch), ("range", pitch_range)):
            self._lib.espeak_SetParameter(_ESPEAK_PARAMS[name], value, 0)
        self._lib.espeak_ng_SetRandSeed(seed)
        self._chunks = []
        text_buffer = ctypes.create_string_buffer(text.encode())
        code = self._lib.espeak_Synth(text_buffer, len(text_buffer), 0, 0, 0, _ESPEAK_CHARS_UTF8, None, None)
        if code != _EE_OK:
            raise TunerAppError(f"libespeak-ng failed to speak {text!r} with voice {voice!r} "
                                f"(espeak_Synth returned {code})")
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        _check_speech(samples, text, voice)
        return samples


def _check_speech(samples: np.ndarray, text: str, voice: str) -> None:
    """TunerAppError unless espeak's output (before any noise is added) holds audible speech."""
    speech = trim_silence(samples.astype(np.float64) / 32768.0) if samples.size else samples
    level = float(np.sqrt(np.mean(speech**2))) if speech.size else 0.0
    if level < MIN_SPEECH_RMS:
        raise TunerAppError(f"libespeak-ng produced no speech for {text!r} with voice {voice!r} "
                            f"(RMS {level:.1e} of full scale, below {MIN_SPEECH_RMS:.0e})")


def load_library() -> tuple[ctypes.CDLL, str]:
    try:
        import espeakng_loader
    except ImportError as err:
        raise TunerAppError("cannot synthesize the default corpus: package espeakng-loader is not installed "
                            "(pip install espeakng-loader)") from err
    library_path = espeakng_loader.get_library_path()
    try:
        return ctypes.CDLL(library_path), espeakng_loader.get_data_path()
    except (OSError, RuntimeError) as err:
        raise TunerAppError(f"cannot load libespeak-ng from {library_path}: {err}") from err


def voice_variants() -> list[str]:
    """The espeak voice variants shipped with espeakng-loader, sorted by name."""
    import espeakng_loader
    return sorted(os.listdir(Path(espeakng_loader.get_data_path()) / "voices" / "!v"))


def trim_silence(samples: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(samples) > 0.01 * (np.abs(samples).max() + 1e-9))
    return samples[loud[0]:loud[-1] + 1] if loud.size else samples
