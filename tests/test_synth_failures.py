"""libespeak-ng failing or speaking silence is a clear error, never a silent clip labelled as a word."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from tuner_app.data import synth
from tuner_app.data.espeak import MIN_SPEECH_RMS
from tuner_app.errors import TunerAppError

SPEECH_KNOBS = {"rate": 175, "pitch": 50, "pitch_range": 50, "seed": 1}


@pytest.fixture
def espeak():
    return synth.Espeak()


def _speak_samples(espeak, samples: np.ndarray, code: int = 0):
    """A stand-in for espeak_Synth that hands `samples` to the callback and returns `code`."""
    def fake_synth(*args):
        if samples.size:
            buffer = (ctypes.c_short * samples.size)(*samples.tolist())
            espeak._callback(ctypes.cast(buffer, ctypes.POINTER(ctypes.c_short)), samples.size, None)
        return code
    return fake_synth


def test_real_speech_passes(espeak):
    samples = espeak.say("cat", "en", **SPEECH_KNOBS)
    assert samples.dtype == np.int16 and np.sqrt(np.mean((samples / 32768.0) ** 2)) > MIN_SPEECH_RMS


def test_an_espeak_error_code_is_a_clear_error(espeak, monkeypatch):
    monkeypatch.setattr(espeak._lib, "espeak_Synth", _speak_samples(espeak, np.zeros(0, np.int16), code=2))
    with pytest.raises(TunerAppError, match=r"'cat'.*voice 'en-us\+m3'.*returned 2"):
        espeak.say("cat", "en-us+m3", **SPEECH_KNOBS)


def test_silence_is_detected(espeak, monkeypatch):
    monkeypatch.setattr(espeak._lib, "espeak_Synth", _speak_samples(espeak, np.zeros(4000, np.int16)))
    with pytest.raises(TunerAppError, match=r"no speech for 'dog' with voice 'en'"):
        espeak.say("dog", "en", **SPEECH_KNOBS)


def test_no_samples_at_all_is_detected(espeak, monkeypatch):
    monkeypatch.setattr(espeak._lib, "espeak_Synth", _speak_samples(espeak, np.zeros(0, np.int16)))
    with pytest.raises(TunerAppError, match="no speech for 'bed'"):
        espeak.say("bed", "en", **SPEECH_KNOBS)


def test_a_faint_hiss_is_not_speech(espeak, monkeypatch):
    hiss = np.random.default_rng(0).integers(-3, 4, 8000).astype(np.int16)  # about -80 dBFS
    monkeypatch.setattr(espeak._lib, "espeak_Synth", _speak_samples(espeak, hiss))
    with pytest.raises(TunerAppError, match="no speech"):
        espeak.say("tree", "en", **SPEECH_KNOBS)


def test_a_failing_shard_names_the_word_and_writes_nothing(tmp_path, monkeypatch):
    class SilentEspeak(synth.Espeak):
        def __init__(self):
            super().__init__()
            self._lib = type("Lib", (), {})()  # every call below is replaced
            self._lib.espeak_SetVoiceByName = lambda voice: 0
            self._lib.espeak_SetParameter = lambda *args: 0
            self._lib.espeak_ng_SetRandSeed = lambda seed: None
            self._lib.espeak_Synth = _speak_samples(self, np.zeros(100, np.int16))

    monkeypatch.setattr(synth, "Espeak", SilentEspeak)
    speaker = synth.Speaker("s1", "en", 175, 50)
    take = synth.Take("cat/s1_nohash_0.wav", "cat", text="cat", rate=175, pitch=50, pitch_range=50, speed=1.0,
                      onset=0.5, peak_db=-6.0, snr_db=20.0, colour="white", room=-1, channel=None, seed=3)
    (tmp_path / "cat").mkdir()
    with pytest.raises(TunerAppError, match="'cat'"):
        synth._speak_shard((str(tmp_path), [(speaker, take)], []))
    assert list((tmp_path / "cat").iterdir()) == []
