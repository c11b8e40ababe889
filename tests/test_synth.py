"""The espeak-ng default corpus: layout, format, splits, determinism, refusal, CLI."""

from __future__ import annotations

import re
import wave
from pathlib import Path

import pytest
from click.testing import CliRunner

from tuner_app.cli import cli
from tuner_app.data import espeak, synth
from tuner_app.data.corpus import SEED_WORDS
from tuner_app.errors import TunerAppError

PER_CLASS = 4


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    synth.synthesize(out, per_class=PER_CLASS, seed=1)
    return out


def _tree(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def _speaker(listed: str) -> str:
    return Path(listed).name.split("_nohash_")[0]


def test_layout_has_exact_file_counts(corpus):
    for word in SEED_WORDS:
        assert len(list((corpus / word).glob("*.wav"))) == PER_CLASS
    folders = sorted(path.name for path in corpus.iterdir() if path.is_dir())
    assert folders == sorted([*SEED_WORDS, "_background_noise_"])
    assert len(list((corpus / "_background_noise_").glob("*.wav"))) == 4


def test_file_names_follow_speech_commands(corpus):
    names = [path.name for path in corpus.glob("*/*.wav") if path.parent.name != "_background_noise_"]
    assert len(names) == PER_CLASS * len(SEED_WORDS)
    assert all(re.fullmatch(r"[a-z0-9]+_nohash_\d+\.wav", name) for name in names)


def test_every_clip_is_one_second_16bit_16khz_mono(corpus):
    for path in corpus.glob("*/*.wav"):
        with wave.open(str(path)) as handle:
            assert (handle.getnchannels(), handle.getsampwidth(), handle.getframerate()) == (1, 2, 16000)
            if path.parent.name != "_background_noise_":
                assert handle.getnframes() == 16000
            else:
                assert handle.getnframes() == synth.BACKGROUND_SECONDS * 16000


def test_split_lists_are_sorted_existing_and_speaker_disjoint(corpus):
    lists = {name: (corpus / name).read_text().splitlines() for name in ("validation_list.txt", "testing_list.txt")}
    for lines in lists.values():
        assert lines == sorted(lines) and lines
        assert all((corpus / line).is_file() for line in lines)
    validation = {_speaker(line) for line in lists["validation_list.txt"]}
    test = {_speaker(line) for line in lists["testing_list.txt"]}
    all_clips = [str(p.relative_to(corpus)) for p in corpus.glob("*/*.wav") if p.parent.name != "_background_noise_"]
    train = {_speaker(clip) for clip in all_clips} - validation - test
    assert not validation & test
    assert len(train) + len(validation) + len(test) == PER_CLASS
    # a held-out speaker has every one of its clips listed
    listed = set(lists["validation_list.txt"]) | set(lists["testing_list.txt"])
    assert {clip for clip in all_clips if _speaker(clip) in validation | test} == listed


def test_same_seed_is_byte_identical_and_other_seed_differs(corpus, tmp_path):
    synth.synthesize(tmp_path / "again", per_class=PER_CLASS, seed=1, workers=1)
    synth.synthesize(tmp_path / "other", per_class=PER_CLASS, seed=2)
    assert _tree(tmp_path / "again") == _tree(corpus)
    assert _tree(tmp_path / "other") != _tree(corpus)


def test_refuses_non_empty_output_and_leaves_no_staging(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(TunerAppError, match=str(out)):
        synth.synthesize(out, per_class=1)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["taken"]
    assert (out / "keep.txt").read_text() == "mine"


def test_summary_counts_clips_and_speakers(tmp_path):
    summary = synth.synthesize(tmp_path / "c", per_class=10, seed=0, words=("cat", "dog"))
    assert summary.clips == {"train": 16, "validation": 2, "test": 2}
    assert summary.speakers == {"train": 8, "validation": 1, "test": 1}
    assert sorted(path.name for path in (tmp_path / "c").iterdir() if path.is_dir()) == [
        "_background_noise_", "cat", "dog"]


def test_default_corpus_is_built_once_then_reused(tmp_path, monkeypatch):
    first = synth.default_corpus(tmp_path, per_class=1, seed=0)
    assert first.name == f"synth-v{synth.SYNTH_VERSION}-n1-s0" and (first / "testing_list.txt").is_file()

    def must_not_run(*args, **kwargs):
        raise AssertionError("synthesized twice")

    monkeypatch.setattr(synth, "synthesize", must_not_run)
    assert synth.default_corpus(tmp_path, per_class=1, seed=0) == first


def test_missing_espeak_is_a_clear_error(monkeypatch):
    def broken(path):
        raise OSError("no such file")

    monkeypatch.setattr(espeak.ctypes, "CDLL", broken)
    with pytest.raises(TunerAppError, match="libespeak-ng"):
        synth.Espeak()


def test_cli_synth_writes_corpus_and_refuses_second_run(tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(cli, ["data", "synth", str(out), "--per-class", "3", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "validation" in result.output and str(out) in result.output
    assert len(list(out.glob("zero/*.wav"))) == 3
    again = CliRunner().invoke(cli, ["data", "synth", str(out), "--per-class", "3"])
    assert again.exit_code == 2 and str(out) in again.output


def test_synthesize_without_espeak_fails_before_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(espeak.ctypes, "CDLL", lambda path: (_ for _ in ()).throw(OSError("gone")))
    with pytest.raises(TunerAppError, match="cannot load libespeak-ng"):
        synth.synthesize(tmp_path / "never", per_class=1)
    assert list(tmp_path.iterdir()) == []
