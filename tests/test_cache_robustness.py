"""The decoded cache: concurrent writers, skipped files reported on a hit, every skip named with its reason,
unreadable background noise."""

import logging
import threading
import types

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SMOKE_SPACE, tone, write_wav

from tuner_app.cli import cli
from tuner_app.data import cache
from tuner_app.errors import TunerAppError
from tuner_app.model.space import search_space
from tuner_app.search import record


def _good_files(folder, count=3):
    return [str(write_wav(folder / f"g{i}.wav", tone(freq=300 + 100 * i))) for i in range(count)]


def _listing(folder):
    return sorted(path.name for path in folder.iterdir())


def test_a_second_writer_finishing_first_does_not_break_the_first(tmp_path, monkeypatch):
    files = _good_files(tmp_path / "audio")
    cache_file = tmp_path / "cache" / "decoded.npz"
    real_savez, calls, results = np.savez, [], []

    def savez_then_another_search_writes_too(file, **arrays):
        real_savez(file, **arrays)
        calls.append(file)
        if len(calls) == 1:  # a second search decodes and writes the same cache file in the meantime
            results.append(cache.load_cached(cache_file, files, [0, 1, 2]))

    monkeypatch.setattr(cache.np, "savez", savez_then_another_search_writes_too)
    first = cache.load_cached(cache_file, files, [0, 1, 2])
    assert first.labels.tolist() == results[0].labels.tolist() == [0, 1, 2]
    assert _listing(cache_file.parent) == ["decoded.npy", "decoded.npz"]  # no temporary file left behind
    np.testing.assert_array_equal(np.load(cache_file.with_suffix(".npy"))[:3], first.waveforms)


def test_two_threads_writing_one_cache_both_succeed(tmp_path):
    files = _good_files(tmp_path / "audio")
    cache_file = tmp_path / "cache" / "decoded.npz"
    start, results, errors = threading.Barrier(2), [], []

    def search():
        start.wait()
        try:
            results.append(cache.load_cached(cache_file, files, [0, 1, 2]))
        except Exception as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=search) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 2
    assert _listing(cache_file.parent) == ["decoded.npy", "decoded.npz"]
    assert cache.load_cached(cache_file, [], []).labels.tolist() == [0, 1, 2]


def _fake_tuner(project_dir):
    return types.SimpleNamespace(space=search_space.load(SMOKE_SPACE), project_dir=str(project_dir))


def test_search_record_survives_a_concurrent_writer(tmp_path, monkeypatch):
    tuner = _fake_tuner(tmp_path / "project")
    real_replace, calls = record.os.replace, []

    def replace_after_another_writer(source, target):
        calls.append(source)
        if len(calls) == 1:  # another process writes its record first
            record.write_search_record(tuner, ["b"], {"path": "other"})
        real_replace(source, target)

    monkeypatch.setattr(record.os, "replace", replace_after_another_writer)
    path = record.write_search_record(tuner, ["a"], {"path": "mine"})
    assert record.read_search_record(tmp_path / "project")["data"] == {"path": "mine"}
    assert _listing(path.parent) == [record.SEARCH_RECORD]


@pytest.fixture
def bad_corpus(tmp_path):
    folder = tmp_path / "clips"
    good = write_wav(folder / "good.wav", tone())
    not_riff = folder / "notriff.wav"
    not_riff.write_bytes(b"hello, this is not audio at all")
    truncated = folder / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[:5000])  # the data chunk promises 16000 bytes
    empty = write_wav(folder / "empty.wav", np.zeros(0))
    samples = tone()
    samples[100] = np.nan
    nan = write_wav(folder / "nan.wav", samples, bits=32, float_format=True)
    return [str(p) for p in (good, not_riff, truncated, empty, nan)]


def test_every_skipped_file_is_named_with_its_own_reason(bad_corpus, caplog):
    with caplog.at_level(logging.WARNING, logger="tuner_app.data.cache"):
        decoded = cache.decode_clips(bad_corpus, [0, 1, 2, 3, 4])
    assert decoded.labels.tolist() == [0] and decoded.paths == (bad_corpus[0],)
    assert decoded.skipped == tuple(bad_corpus[1:])
    reasons = dict(zip(decoded.skipped, decoded.skip_reasons))
    assert "not WAV, FLAC, Ogg Vorbis or MP3" in reasons[bad_corpus[1]]
    assert "truncated" in reasons[bad_corpus[2]]
    assert "no samples" in reasons[bad_corpus[3]]
    assert "NaN" in reasons[bad_corpus[4]]
    assert len(set(reasons.values())) == 4
    assert len(caplog.records) == 1 and "\n" not in caplog.records[0].getMessage()
    assert f"{bad_corpus[4]} ({reasons[bad_corpus[4]]})" in caplog.text


def test_reasons_are_kept_in_the_cache(bad_corpus, tmp_path):
    cache_file = tmp_path / "cache" / "decoded.npz"
    first = cache.load_cached(cache_file, bad_corpus, [0, 1, 2, 3, 4])
    again = cache.load_cached(cache_file, [], [])
    assert again.skipped == first.skipped and again.skip_reasons == first.skip_reasons


def _corpus_with_a_corrupt_file(root):
    for word in ("zero", "one"):
        for speaker in range(3):
            write_wav(root / word / f"spk{speaker}_nohash_0.wav", tone(freq=300 + 50 * speaker))
    (root / "one" / "spk9_nohash_0.wav").write_bytes(b"RIFF broken")
    return root


def test_a_cache_hit_still_warns_and_strict_still_refuses(tmp_path, caplog):
    data = _corpus_with_a_corrupt_file(tmp_path / "data")
    args = ["data", "prepare", "--data", str(data), "--cache-dir", str(tmp_path / "cache")]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tuner_app.data.cache"):
        second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0 and "spk9_nohash_0.wav" in caplog.text  # read from the cache, still named
    for _ in range(2):
        strict = CliRunner().invoke(cli, [*args, "--strict"])
        assert strict.exit_code == 2, strict.output
        assert "spk9_nohash_0.wav" in strict.output and strict.output.strip().count("\n") == 0


def test_strict_twice_refuses_twice_and_keeps_the_decoding(tmp_path):
    data = _corpus_with_a_corrupt_file(tmp_path / "data")
    args = ["data", "prepare", "--data", str(data), "--cache-dir", str(tmp_path / "cache"), "--strict"]
    for _ in range(2):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and "spk9_nohash_0.wav" in result.output
    assert len(list((tmp_path / "cache" / "decoded").glob("*.npz"))) == 3  # nothing already done is lost


def _noise_files(folder):
    good = write_wav(folder / "hum.wav", tone(seconds=2.0, freq=50))
    bad = folder / "broken.wav"
    bad.write_bytes(b"junk that no decoder reads")
    return [good, bad]


def test_a_bad_noise_file_is_skipped_and_named(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="tuner_app.data.cache"):
        bank = cache.noise_bank(_noise_files(tmp_path))
    assert bank.shape == (32000,)
    assert "broken.wav" in caplog.text and "hum.wav" not in caplog.text


def test_a_bad_noise_file_is_an_error_when_strict(tmp_path):
    with pytest.raises(TunerAppError, match=r"broken\.wav.*unreadable audio"):
        cache.noise_bank(_noise_files(tmp_path), strict=True)


def test_prepare_strict_checks_the_background_noise(tmp_path):
    data = tmp_path / "data"
    for speaker in range(3):
        write_wav(data / "zero" / f"spk{speaker}_nohash_0.wav", tone())
    _noise_files(data / "_background_noise_")
    args = ["data", "prepare", "--data", str(data), "--cache-dir", str(tmp_path / "cache")]
    assert CliRunner().invoke(cli, args).exit_code == 0
    strict = CliRunner().invoke(cli, [*args, "--strict"])
    assert strict.exit_code == 2 and "broken.wav" in strict.output


def test_stats_names_a_truncated_wav_as_prepare_does(tmp_path):
    from tuner_app.data import corpus, stats

    good = write_wav(tmp_path / "zero" / "a_nohash_0.wav", tone())
    (tmp_path / "zero" / "b_nohash_0.wav").write_bytes(good.read_bytes()[:5000])
    report = stats.stats(corpus.scan(tmp_path))
    assert [item["path"] for item in report["unreadable"]] == [str(tmp_path / "zero" / "b_nohash_0.wav")]
    assert "truncated WAV" in report["unreadable"][0]["error"]
