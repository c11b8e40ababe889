"""The built-in corpus's realism stages (rooms, channel, speed, prosody, levels): drawn from the seed alone,
neutral when a recipe leaves them out, and every rendered clip a 1 s, 16 kHz, unclipped int16 clip."""

from __future__ import annotations

import dataclasses
import wave

import numpy as np
import pytest

from tuner_app.data import channel, render, rooms, synth, takes
from tuner_app.data.espeak import ESPEAK_RATE

WORDS = ["cat", "dog"]
UNCLIPPED = 32768 * 10 ** (-1 / 20)  # the recipe's loudest peak, -1 dBFS, in int16 steps


def _plan(seed: int, recipe: takes.Recipe = takes.Recipe()) -> list:
    rng = np.random.default_rng(seed)
    speakers = takes.plan_speakers(rng, 6, takes.speaker_variants(recipe))
    return takes.plan_takes(rng, speakers, WORDS, 6, recipe)


def _word(seconds: float = 0.4) -> np.ndarray:
    """A stand-in for espeak's output: a vowel-like buzz at 22,050 Hz with silence either side."""
    t = np.arange(int(seconds * ESPEAK_RATE)) / ESPEAK_RATE
    buzz = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 20)) * np.hanning(t.size)
    padded = np.concatenate([np.zeros(2000), buzz, np.zeros(2000)])
    return np.round(padded / np.abs(padded).max() * 12000).astype(np.int16)


def test_room_bank_is_drawn_from_the_seed_alone():
    first = rooms.room_bank(np.random.default_rng(3), count=4)
    again = rooms.room_bank(np.random.default_rng(3), count=4)
    other = rooms.room_bank(np.random.default_rng(4), count=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(first, other))


def test_rooms_are_inside_their_walls_and_responses_start_at_the_direct_sound():
    rng = np.random.default_rng(0)
    for _ in range(20):
        room = rooms.draw_room(rng)
        for point in (room.source, room.microphone):
            assert all(rooms.WALL_MARGIN - 1e-9 <= x <= side - rooms.WALL_MARGIN + 1e-9
                       for x, side in zip(point, room.size))
    response = rooms.impulse_response(rooms.draw_room(rng))
    assert np.argmax(np.abs(response)) <= rooms.PRE_DELAY and np.abs(response).max() == 1.0
    assert 0 < response.size <= rooms.RATE


def test_reverberation_keeps_the_clip_length_and_the_word_in_place():
    clip = np.zeros(rooms.RATE)
    clip[8000] = 1.0
    response = rooms.impulse_response(rooms.draw_room(np.random.default_rng(1)))
    heard = rooms.reverberate(clip, response)
    assert heard.size == rooms.RATE
    assert 8000 <= int(np.argmax(np.abs(heard))) <= 8000 + rooms.PRE_DELAY


def test_channels_are_drawn_from_the_seed_and_lift_the_presence_band():
    drawn = [channel.draw_channel(np.random.default_rng(5)) for _ in range(2)]
    assert drawn[0] == drawn[1]
    flat = channel.Channel(20.0, 7900.0, 1, 0.0, ((1000.0, 0.0),))
    response = channel.gain(flat, np.array([channel.PRESENCE_HZ, 200.0]))
    assert 20 * np.log10(response[0] / response[1]) > channel.PRESENCE_DB / 2


def test_the_plan_is_the_same_for_the_same_seed_and_differs_for_another():
    assert _plan(7) == _plan(7)
    assert _plan(7) != _plan(8)


def test_a_recipe_without_a_stage_makes_it_neutral_and_keeps_the_other_draws():
    full = _plan(2)
    bare = _plan(2, takes.Recipe(reverb=False, colouring=False, speed=False, prosody=False))
    for (_, take), (_, plain) in zip(full, bare):
        assert (plain.room, plain.channel, plain.speed, plain.text) == (-1, None, 1.0, plain.word)
        assert (plain.onset, plain.snr_db, plain.peak_db, plain.seed) == (take.onset, take.snr_db, take.peak_db,
                                                                         take.seed)
    assert any(take.room >= 0 for _, take in full) and any(take.text != take.word for _, take in full)


def test_inhuman_variants_are_left_out():
    variants = takes.speaker_variants(takes.Recipe())
    assert variants and not set(variants) & set(takes.INHUMAN_VARIANTS)
    assert set(takes.speaker_variants(takes.Recipe(human_voices=False))) >= set(variants)


@pytest.mark.parametrize("speed", [0.85, 1.15])
def test_speed_shifts_the_word_length(speed):
    normal = render.shifted_speech(_word(0.4), 1.0).size
    assert abs(render.shifted_speech(_word(0.4), speed).size - normal / speed) <= 1


def test_rendered_clips_are_one_second_int16_and_never_clipped():
    bank = rooms.room_bank(np.random.default_rng(0), count=rooms.ROOM_COUNT)
    loud = takes.Recipe(peak_db=(-1.0, -1.0), snr_db=(5.0, 5.0))
    for _, take in _plan(3, loud):
        clip = render.render(_word(), take, bank)
        assert clip.dtype == np.int16 and clip.shape == (render.RATE,)
        assert np.abs(clip.astype(np.int32)).max() <= UNCLIPPED + 1


def test_a_long_word_is_cut_to_one_second():
    take = dataclasses.replace(_plan(0)[0][1], speed=0.85, room=-1, channel=None)
    assert render.render(_word(1.5), take).shape == (render.RATE,)


def test_synthesized_clips_are_16khz_one_second_and_unclipped(tmp_path):
    out = synth.synthesize(tmp_path / "c", per_class=3, seed=4, words=WORDS, workers=1).out
    for path in out.glob("[a-z]*/*.wav"):
        with wave.open(str(path)) as handle:
            assert (handle.getframerate(), handle.getnframes(), handle.getsampwidth()) == (16000, 16000, 2)
            samples = np.frombuffer(handle.readframes(16000), "<i2")
        assert 0 < np.abs(samples.astype(np.int32)).max() <= UNCLIPPED + 1


def test_the_recipe_version_names_the_cached_corpus(tmp_path, monkeypatch):
    older = tmp_path / "synth-v1-n5-s2"  # a complete corpus an older recipe wrote
    older.mkdir()
    for name in ("validation_list.txt", "testing_list.txt"):
        (older / name).write_text("")
    made = []

    def fake_synthesize(target, **kwargs):
        made.append(target.name)
        target.mkdir()
        for name in ("validation_list.txt", "testing_list.txt"):
            (target / name).write_text("")

    monkeypatch.setattr(synth, "synthesize", fake_synthesize)
    monkeypatch.setattr(synth, "SYNTH_VERSION", 99)
    assert synth.default_corpus(tmp_path, per_class=5, seed=2).name == "synth-v99-n5-s2"
    assert made == ["synth-v99-n5-s2"]  # the older recipe's corpus was not reused
