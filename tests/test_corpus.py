import collections
import hashlib
import json
import re
import wave
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FSDD, SPEECH_COMMANDS

from tuner_app.cli import cli
from tuner_app.data import corpus, fsdd, stats
from tuner_app.data.corpus import UNKNOWN, Clip, scan, speaker_of, which_set
from tuner_app.errors import TunerAppError

WORDS = ("yes", "no")


def write_clip(path: Path, frames: int = 1600, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x01\x00" * frames)
    return path


def make_tree(root: Path, layout: dict[str, list[str]]) -> Path:
    for folder, names in layout.items():
        for name in names:
            write_clip(root / folder / name)
    return root


def reference_which_set(filename: str, validation_percentage=10, testing_percentage=10) -> str:
    """The dataset README's function, verbatim apart from bytes/str and split names."""
    max_num_wavs_per_class = 2**27 - 1
    hash_name = re.sub(r"_nohash_.*$", "", filename)
    hash_name_hashed = hashlib.sha1(hash_name.encode()).hexdigest()
    percentage_hash = (int(hash_name_hashed, 16) % (max_num_wavs_per_class + 1)) * (100.0 / max_num_wavs_per_class)
    if percentage_hash < validation_percentage:
        return "validation"
    if percentage_hash < testing_percentage + validation_percentage:
        return "test"
    return "train"


def splits_by_name(found) -> dict[str, str]:
    return {f"{c.path.parent.name}/{c.path.name}": c.split for c in found.clips}


def test_lists_are_followed_exactly(tmp_path):
    root = make_tree(tmp_path, {"yes": ["a_nohash_0.wav", "a_nohash_1.wav", "b_nohash_0.wav"], "no": ["c_nohash_0.wav"]})
    # A speaker split across lists on purpose: the lists win over the hash rule.
    (root / "validation_list.txt").write_text("yes/a_nohash_0.wav\nno/missing_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("yes/a_nohash_1.wav\r\nno/c_nohash_0.wav\n")
    assert splits_by_name(scan(root, WORDS)) == {
        "yes/a_nohash_0.wav": "validation", "yes/a_nohash_1.wav": "test",
        "yes/b_nohash_0.wav": "train", "no/c_nohash_0.wav": "test",
    }


def test_hash_rule_matches_the_reference_and_hand_computed_values():
    # An independent computation of the README's arithmetic for one speaker id.
    digest = int(hashlib.sha1(b"bobby").hexdigest(), 16)
    percent = (digest % 2**27) * 100.0 / (2**27 - 1)
    expected = "validation" if percent < 10 else "test" if percent < 20 else "train"
    assert which_set("bobby_nohash_0.wav") == which_set("bobby_nohash_7.wav") == expected
    for name in ("026290a7_nohash_0.wav", "0a7c2a8d_nohash_1.wav", "x.wav", "ffd2ba2f_nohash_4.wav"):
        for pct in ((10, 10), (20, 30)):
            assert which_set(name, *pct) == reference_which_set(name, *pct)


def test_hash_rule_reproduces_the_real_split_lists():
    root = Path(SPEECH_COMMANDS)
    for list_name, split in (("validation_list.txt", "validation"), ("testing_list.txt", "test")):
        entries = (root / list_name).read_text().split()[:300]
        assert len(entries) == 300
        assert {which_set(entry) for entry in entries} == {split}


def test_hash_split_has_no_speaker_leak_and_ignores_nohash_suffix(tmp_path):
    names = [f"spk{s:03d}_nohash_{i}.wav" for s in range(60) for i in range(3)]
    found = scan(make_tree(tmp_path, {"yes": names, "no": names[:30]}), WORDS)
    splits_of_speaker = collections.defaultdict(set)
    for clip in found.clips:
        splits_of_speaker[clip.speaker].add(clip.split)
    assert len(splits_of_speaker) == 60
    assert all(len(splits) == 1 for splits in splits_of_speaker.values())
    assert {clip.split for clip in found.clips} == {"train", "validation", "test"}
    assert speaker_of("yes/spk001_nohash_2.wav") == "spk001" and speaker_of("plain.wav") == ""


@pytest.mark.parametrize("with_lists", [False, True])
def test_adding_files_keeps_existing_splits(tmp_path, with_lists):
    root = make_tree(tmp_path, {"yes": [f"s{i}_nohash_0.wav" for i in range(40)], "no": ["n_nohash_0.wav"]})
    if with_lists:
        (root / "validation_list.txt").write_text("yes/s1_nohash_0.wav\n")
        (root / "testing_list.txt").write_text("yes/s2_nohash_0.wav\n")
    before = splits_by_name(scan(root, WORDS))
    make_tree(root, {"yes": [f"t{i}_nohash_0.wav" for i in range(40)] + ["s3_nohash_9.wav"]})
    after = splits_by_name(scan(root, WORDS))
    assert len(after) == len(before) + 41
    assert {name: after[name] for name in before} == before


def test_unknown_mapping_and_ignored_folders(tmp_path):
    root = make_tree(tmp_path, {"yes": ["a_nohash_0.wav"], "no": ["b_nohash_0.wav"], "up": ["c_nohash_0.wav"],
                                "down": ["d_nohash_0.wav", "e_nohash_0.wav"], "_background_noise_": ["white.wav"],
                                "_other_": ["f_nohash_0.wav"], "notes": []})
    (root / "yes" / "readme.txt").write_text("not audio")
    plain = scan(root, WORDS)
    assert plain.classes == WORDS and len(plain.clips) == 2
    assert plain.background_noise == (root / "_background_noise_" / "white.wav",)
    with_unknown = scan(root, WORDS, unknown=True)
    assert with_unknown.classes == ("yes", "no", UNKNOWN)
    expected = collections.Counter(which_set(name) for name in ("c_nohash_0.wav", "d_nohash_0.wav", "e_nohash_0.wav"))
    assert with_unknown.counts()[UNKNOWN] == {split: expected[split] for split in corpus.SPLITS}
    assert sorted(c.path.parent.name for c in with_unknown.clips if c.label == UNKNOWN) == ["down", "down", "up"]


def test_errors_name_the_path_or_class(tmp_path):
    (tmp_path / "corpus").mkdir()
    with pytest.raises(TunerAppError, match=f"no such directory: {tmp_path / 'corpsu'}.*did you mean .*corpus"):
        scan(tmp_path / "corpsu")
    with pytest.raises(TunerAppError, match="no class folders with audio"):
        scan(tmp_path / "corpus")
    make_tree(tmp_path / "corpus", {"yes": ["a_nohash_0.wav"]})
    with pytest.raises(TunerAppError, match="no folder with audio for class 'no'"):
        scan(tmp_path / "corpus", WORDS)
    with pytest.raises(TunerAppError, match="not a directory: .*a_nohash_0.wav"):
        scan(tmp_path / "corpus" / "yes" / "a_nohash_0.wav")
    with pytest.raises(TunerAppError, match="invalid class name '_x'"):
        scan(tmp_path / "corpus", ("yes", "_x"))
    with pytest.raises(TunerAppError, match="unknown split 'training'"):
        scan(tmp_path / "corpus", ("yes",)).split("training")


def test_fingerprint_changes_with_content_label_and_split(tmp_path):
    path = write_clip(tmp_path / "yes" / "a_nohash_0.wav")
    base = corpus.fingerprint([Clip(path, "yes", "a", "train")])
    assert base == corpus.fingerprint([Clip(path, "yes", "a", "train")]) and len(base) == 64
    assert base != corpus.fingerprint([Clip(path, "yes", "a", "test")])
    assert base != corpus.fingerprint([Clip(path, UNKNOWN, "a", "train")])
    write_clip(path, frames=800)
    assert base != corpus.fingerprint([Clip(path, "yes", "a", "train")])


def test_real_speech_commands_sample():
    found = scan(SPEECH_COMMANDS)
    assert len(found.clips) == 160 and found.classes == corpus.SEED_WORDS
    assert all(sum(per_split.values()) == 10 for per_split in found.counts().values())
    root = Path(SPEECH_COMMANDS)
    listed = {split: set((root / name).read_text().split()) for split, name in corpus.LIST_FILES.items()}
    expected = collections.Counter(
        next((s for s, names in listed.items() if key in names), "train") for key in splits_by_name(found))
    assert {s: len(found.split(s)) for s in corpus.SPLITS} == {"train": 113, "validation": 21, "test": 26} == expected
    assert len(scan(SPEECH_COMMANDS, unknown=True).clips) == 300


def test_import_fsdd(tmp_path):
    recordings = sorted(Path(FSDD, "recordings").glob("*.wav"))
    takes = [int(p.stem.split("_")[2]) for p in recordings]
    imported = fsdd.import_fsdd(FSDD, tmp_path / "fsdd")
    assert len(recordings) == len(imported.clips) == 3000
    assert imported.classes == corpus.DIGIT_WORDS
    assert all(sum(per_split.values()) == 300 for per_split in imported.counts().values())
    sizes = {s: len(imported.split(s)) for s in corpus.SPLITS}
    assert sizes == {"test": sum(t < 5 for t in takes), "validation": sum(5 <= t < 10 for t in takes),
                     "train": sum(t >= 10 for t in takes)} == {"test": 300, "validation": 300, "train": 2400}
    clip = next(c for c in imported.clips if c.path.name == "jackson_nohash_32.wav" and c.label == "seven")
    assert clip.speaker == "jackson" and clip.split == "train"
    assert clip.path.read_bytes() == Path(FSDD, "recordings", "7_jackson_32.wav").read_bytes()
    with pytest.raises(TunerAppError, match="output directory is not empty: .*fsdd"):
        fsdd.import_fsdd(Path(FSDD, "recordings"), tmp_path / "fsdd")
    with pytest.raises(TunerAppError, match="no FSDD recordings"):
        fsdd.import_fsdd(tmp_path / "fsdd", tmp_path / "again")


def test_import_fsdd_accepts_the_recordings_folder(tmp_path):
    src = tmp_path / "recordings"
    for name in ("3_alice_0.wav", "3_alice_7.wav", "4_bob_12.wav", "notes.wav"):
        write_clip(src / name)
    imported = fsdd.import_fsdd(src, tmp_path / "out")
    assert splits_by_name(imported) == {"three/alice_nohash_0.wav": "test", "three/alice_nohash_7.wav": "validation",
                                        "four/bob_nohash_12.wav": "train"}
    assert imported.classes == ("three", "four")


class FakeInfo:
    def __init__(self, rate, duration):
        self.rate, self.duration = rate, duration


def test_stats_logic_with_a_fake_describer(tmp_path):
    root = make_tree(tmp_path, {"yes": ["a_nohash_0.wav", "bad_nohash_0.wav"], "no": ["b_nohash_0.wav"]})

    def describe(path):
        if "bad" in path.name:
            raise TunerAppError(f"{path}: unreadable audio (test)")
        return FakeInfo(8000 if path.parent.name == "no" else 16000, 0.5 if path.parent.name == "no" else 1.0)

    report = stats.stats(scan(root, WORDS), describe=describe)
    assert report["clips"] == 3 and report["sample_rates"] == {"8000": 1, "16000": 1}
    assert report["duration_seconds"] == {"min": 0.5, "mean": 0.75, "max": 1.0}
    assert [item["path"] for item in report["unreadable"]] == [str(root / "yes" / "bad_nohash_0.wav")]
    assert json.loads(stats.format_stats(report, as_json=True)) == report
    text = stats.format_stats(report)
    assert "bad_nohash_0.wav" in text and "16000 Hz: 1" in text


def test_stats_cli_on_a_tiny_tree(tmp_path):
    pytest.importorskip("tuner_app.data.audio")
    root = make_tree(tmp_path, {"yes": ["a_nohash_0.wav", "b_nohash_0.wav"], "no": ["c_nohash_0.wav"]})
    (root / "no" / "broken_nohash_0.wav").write_bytes(b"RIFF not really")
    result = CliRunner().invoke(cli, ["data", "stats", str(root), "--classes", "yes,no", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["counts"]["yes"]["train"] + report["counts"]["yes"]["validation"] + report["counts"]["yes"]["test"] == 2
    assert report["sample_rates"] == {"16000": 3} and report["duration_seconds"]["max"] == pytest.approx(0.1)
    assert [Path(item["path"]).name for item in report["unreadable"]] == ["broken_nohash_0.wav"]
    text = CliRunner().invoke(cli, ["data", "stats", str(root), "--classes", "yes", "--classes", "no"])
    assert text.exit_code == 0 and "total" in text.output and "unreadable files: 1" in text.output
    assert text.output.count("broken_nohash_0.wav") == 1  # its line named it twice: path, then the error's own


def test_cli_errors_are_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["data", "stats", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and result.output.strip().count("\n") == 0
    assert f"no such directory: {tmp_path / 'nowhere'}" in result.output
