import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_io as tfio
from click.testing import CliRunner
from conftest import FSDD, SPEECH_COMMANDS, tone, write_wav

from tuner_app.cli import cli
from tuner_app.data import audio, cache, corpus
from tuner_app.errors import TunerAppError
from tuner_app.serving import export, inference

CLASS_NAMES = list(corpus.SEED_WORDS)


def _class_tone(index: int, rate: int) -> np.ndarray:
    """What test_search._clips plays for class `index` (a tone in noise), one second at `rate`."""
    noise = 0.05 * np.random.default_rng(index).standard_normal(rate)
    return np.clip(tone(1.0, rate, 200 + 150 * index, 0.3) + noise, -1, 1)


@pytest.fixture(scope="module")
def model_dir(tiny_export):
    return tiny_export  # conftest's: read here, never written


@pytest.fixture(scope="module")
def loaded(model_dir):
    return inference.load(model_dir)


def test_load_names_a_directory_that_is_not_an_export(tmp_path):
    with pytest.raises(TunerAppError, match=f"{tmp_path}: not a tuner-app export"):
        inference.load(tmp_path)


def test_predict_reads_any_rate_channels_and_format(loaded, tmp_path):
    low = write_wav(tmp_path / "8k.wav", _class_tone(3, 8000), rate=8000)
    stereo = np.stack([_class_tone(5, 44100)] * 2, axis=1)
    wide = write_wav(tmp_path / "stereo44k.wav", stereo, rate=44100)
    flac = tmp_path / "tone.flac"
    samples = (_class_tone(7, 22050)[:, None] * 32767).astype(np.int16)
    flac.write_bytes(tfio.audio.encode_flac(tf.constant(samples), 22050).numpy())
    entries = inference.predict_files(loaded, [low, wide, flac], top_k=2)
    assert [entry["file"] for entry in entries] == [str(low), str(wide), str(flac)]
    decoded = cache.decode_clips([str(low), str(wide), str(flac)], [3, 5, 7])  # as training decodes files
    for entry, row in zip(entries, loaded.probabilities(decoded.waveforms)):
        assert [item["label"] for item in entry["top"]] == [CLASS_NAMES[i] for i in np.argsort(-row)[:2]]
        assert [item["probability"] for item in entry["top"]] == pytest.approx(sorted(row)[::-1][:2], abs=1e-6)


def _real_recordings() -> list[Path]:
    files = sorted(Path(FSDD, "recordings").glob("[0-9]_*_0.wav"))[:2]
    files += sorted(Path(SPEECH_COMMANDS, "dog").glob("*.wav"))[:2]
    if len(files) < 4:
        pytest.skip("the shared recordings are not on this machine")
    return files


def test_predict_answers_real_recordings_and_reports_an_unreadable_file(loaded, tmp_path):
    files = _real_recordings()
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really")
    entries = inference.predict_files(loaded, [files[0], broken, *files[1:]], top_k=3)
    assert "top" not in entries[1] and entries[1]["error"].startswith(f"{broken}: unreadable audio")
    assert "\n" not in entries[1]["error"]
    answered = [entry for entry in entries if "top" in entry]
    assert len(answered) == 4
    assert all(len(entry["top"]) == 3 and entry["top"][0]["label"] in CLASS_NAMES for entry in answered)
    reference = loaded.probabilities(np.stack([audio.read(path) for path in files]))
    for entry, row in zip(answered, reference):
        assert entry["top"][0]["probability"] == pytest.approx(float(row.max()), abs=1e-6)


def test_cli_predict_exit_code_and_formats(model_dir, loaded, tmp_path):
    good = write_wav(tmp_path / "good.wav", _class_tone(2, 16000))
    missing = tmp_path / "missing.wav"
    best = CLASS_NAMES[int(loaded.probabilities(audio.read(good)[np.newaxis]).argmax())]  # right or not
    result = CliRunner().invoke(cli, ["predict", str(model_dir), str(good), str(missing), "--top-k", "1"])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{good}: {best} 0.") and result.stdout.count("\n") == 1
    assert result.stderr.strip() == f"Error: {missing}: cannot read (No such file or directory)"
    as_json = CliRunner().invoke(cli, ["predict", str(model_dir), str(good), "--format", "json"])
    assert as_json.exit_code == 0
    assert [item["label"] for item in json.loads(as_json.stdout)[0]["top"]][:1] == [best]


class _StubModel:
    """Predicts the class whose number is the tone's frequency in hundreds of Hz minus one (300 Hz -> 1)."""

    class_names = ("a", "b", "c", "d")

    def probabilities(self, waveforms):
        peaks = np.abs(np.fft.rfft(waveforms, axis=1)).argmax(axis=1)  # bins of 1 Hz for 16000 samples
        return np.eye(len(self.class_names))[np.round(peaks / 300).astype(int) - 1]


def _tiny_corpus(root: Path) -> Path:
    # folder: predicted class of each clip (300 Hz -> a, 600 Hz -> b, 900 Hz -> c); z is unknown to the model
    plan = {"a": "aab", "b": "bc", "c": "a", "z": "ab"}
    listed = []
    for folder, predicted in plan.items():
        for index, label in enumerate(predicted):
            hz = 300 * (1 + "abc".index(label))
            write_wav(root / folder / f"s{index}_nohash_0.wav", tone(1.0, 16000, hz, 0.3))
            listed.append(f"{folder}/s{index}_nohash_0.wav")
    (root / "a" / "s9_nohash_0.wav").write_bytes(b"broken")
    (root / "testing_list.txt").write_text("\n".join(listed + ["a/s9_nohash_0.wav"]))
    write_wav(root / "a" / "train_nohash_0.wav", tone(1.0, 16000, 900, 0.3))  # not in the test split
    return root


def test_evaluate_matches_a_hand_computation(tmp_path):
    data = _tiny_corpus(tmp_path / "data")
    evaluation = inference.evaluate(_StubModel(), data, classes=["a", "b", "c", "z"])
    # rows = true a, b, c, d; columns = predicted a, b, c, d
    assert evaluation.confusion.tolist() == [[2, 1, 0, 0], [0, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    assert evaluation.clips == 6 and evaluation.accuracy == pytest.approx(3 / 6)
    assert evaluation.precision() == pytest.approx([2 / 3, 1 / 2, 0.0, None])
    assert evaluation.recall() == pytest.approx([2 / 3, 1 / 2, 0.0, None])
    assert evaluation.unknown == {"z": 2}
    assert evaluation.skipped == [str(data / "a" / "s9_nohash_0.wav")]
    text = inference.format_evaluation(evaluation)
    assert "6 clips, accuracy 0.500" in text and "z (2 clips)" in text and "skipped 1 unreadable" in text
    assert text.splitlines()[-4].split() == ["0", "a", "2", "1", "0", "0"]
    png = inference.write_confusion_png(evaluation, tmp_path / "confusion.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_defaults_to_the_model_classes_present(tmp_path):
    data = _tiny_corpus(tmp_path / "data")
    evaluation = inference.evaluate(_StubModel(), data)
    assert evaluation.unknown == {} and evaluation.clips == 6
    with pytest.raises(TunerAppError, match="no folder with audio for any of the model's classes"):
        inference.evaluate(_StubModel(), data / "z")


def test_cli_evaluate_on_real_speech_commands(model_dir, tmp_path):
    if not Path(SPEECH_COMMANDS).is_dir():
        pytest.skip("the shared recordings are not on this machine")
    png = tmp_path / "confusion.png"
    args = ["evaluate", str(model_dir), "--data", SPEECH_COMMANDS, "--split", "train", "--classes", "dog,cat,yes",
            "--out", str(png), "--format", "json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    split = corpus.scan(SPEECH_COMMANDS, ["dog", "cat", "yes"]).split("train")
    assert report["clips"] + sum(report["unknown_classes"].values()) + len(report["skipped"]) == len(split)
    assert report["unknown_classes"] == {"yes": sum(1 for clip in split if clip.label == "yes")}
    assert np.array(report["confusion"]).shape == (16, 16) and png.stat().st_size > 0
    supports = {row["label"]: row["support"] for row in report["per_class"] if row["support"]}
    assert set(supports) == {"dog", "cat"}
