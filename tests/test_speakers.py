import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FSDD, SMOKE_SPACE, cli_error_line, tone, write_wav

from tuner_app.cli import cli
from tuner_app.data.corpus import scan, which_set
from tuner_app.errors import TunerAppError
from tuner_app.model.space import search_space
from tuner_app.search import fingerprint
from tuner_app.tracking.datasets import corpus_inputs

SPEAKERS = ("alice", "bob", "carol", "dave")


def make_corpus(root: Path, names: dict[str, list[str]], lists: dict[str, list[str]] | None = None) -> Path:
    """{folder: file names} of tiny tones, and the list files {list name: entries}."""
    for folder, files in names.items():
        for name in files:
            write_wav(root / folder / name, tone(0.05))
    for list_name, entries in (lists or {}).items():
        (root / list_name).write_text("".join(f"{entry}\n" for entry in entries), encoding="utf-8")
    return root


def speech_commands_style(root: Path, speakers=SPEAKERS, takes: int = 2) -> Path:
    files = [f"{speaker}_nohash_{take}.wav" for speaker in speakers for take in range(takes)]
    return make_corpus(root, {"yes": files, "no": files})


def run(*args: str):
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def test_scan_knows_speakers_from_file_names_and_speakers_csv(tmp_path):
    root = make_corpus(tmp_path, {"yes": ["alice_nohash_0.wav", "3_bob_1.wav", "plain.wav"], "no": ["x.wav"]})
    assert {clip.path.name: clip.speaker for clip in scan(root, ["yes", "no"]).clips} == {
        "alice_nohash_0.wav": "alice", "3_bob_1.wav": "bob", "plain.wav": "", "x.wav": ""}
    (root / "speakers.csv").write_text("path,speaker\nyes/alice_nohash_0.wav,zoe\nno/x.wav,yann\n")
    found = scan(root, ["yes", "no"])
    assert {clip.path.name: clip.speaker for clip in found.clips} == {
        "alice_nohash_0.wav": "zoe", "3_bob_1.wav": "bob", "plain.wav": "", "x.wav": "yann"}
    assert sorted(set(sum(found.speakers().values(), []))) == ["bob", "yann", "zoe"]  # "" is no speaker


@pytest.mark.parametrize("text, line, what", [
    ("file,who\nyes/a_nohash_0.wav,a\n", 1, "needs the columns path,speaker"),
    ("path,speaker\nyes/a_nohash_0.wav,a\nyes/missing.wav,b\n", 3, "'yes/missing.wav' is no audio file"),
    ("path,speaker\nyes/a_nohash_0.wav,a\nyes/a_nohash_0.wav,b\n", 3, "listed twice"),
])
def test_malformed_speakers_csv_is_one_line_naming_file_and_line(tmp_path, text, line, what):
    root = make_corpus(tmp_path, {"yes": ["a_nohash_0.wav"], "no": ["b_nohash_0.wav"]})
    (root / "speakers.csv").write_text(text)
    with pytest.raises(TunerAppError, match=rf"speakers\.csv: line {line}: .*{what}") as caught:
        scan(root, ["yes", "no"])
    assert "\n" not in str(caught.value)


def test_corpus_speakers_overlap_and_summary(tmp_path):
    root = speech_commands_style(tmp_path)
    make_corpus(root, {}, {"validation_list.txt": ["yes/bob_nohash_0.wav", "no/bob_nohash_0.wav"],
                           "testing_list.txt": ["yes/carol_nohash_0.wav", "no/carol_nohash_1.wav"]})
    found = scan(root, ["yes", "no"])
    assert found.speakers() == {"train": ["alice", "bob", "carol", "dave"], "validation": ["bob"], "test": ["carol"]}
    assert found.speaker_overlap() == ["bob", "carol"]
    assert found.speaker_summary() == {"speaker_disjoint": False, "speakers": {"train": 4, "validation": 1, "test": 1}}
    (root / "testing_list.txt").write_text("yes/carol_nohash_0.wav\nno/carol_nohash_0.wav\nyes/carol_nohash_1.wav\n"
                                           "no/carol_nohash_1.wav\n")
    (root / "validation_list.txt").write_text("".join(f"{w}/bob_nohash_{t}.wav\n" for w in ("yes", "no") for t in (0, 1)))
    assert scan(root, ["yes", "no"]).speaker_summary()["speaker_disjoint"] is True


def test_stats_prints_speakers_and_warns_on_shared_ones(tmp_path):
    root = speech_commands_style(tmp_path)
    (root / "validation_list.txt").write_text("yes/bob_nohash_0.wav\nno/alice_nohash_1.wav\n")
    text = run("data", "stats", root, "--classes", "yes,no")
    assert text.exit_code == 0, text.output
    assert "speakers: train 4 (alice, bob, carol, dave); validation 2 (alice, bob); test 0" in text.output
    assert "speaker-disjoint: no" in text.output
    warning = [line for line in text.output.splitlines() if "more than one split" in line]
    assert warning == ["warning: 2 speaker(s) in more than one split (alice, bob): validation and test accuracy "
                       "are not on unheard voices"]
    report = json.loads(run("data", "stats", root, "--classes", "yes,no", "--format", "json").output)
    assert report["speaker_disjoint"] is False and report["speaker_overlap"] == ["alice", "bob"]
    assert report["speakers"] == {"train": 4, "validation": 2, "test": 0}
    assert report["speaker_names"]["validation"] == ["alice", "bob"]


def test_split_by_named_speakers_writes_both_lists_and_refuses_to_overwrite(tmp_path):
    root = speech_commands_style(tmp_path)
    result = run("data", "split", root, "--validation-speakers", "bob", "--test-speakers", "carol,dave")
    assert result.exit_code == 0, result.output
    assert (root / "validation_list.txt").read_text().split() == [
        "no/bob_nohash_0.wav", "no/bob_nohash_1.wav", "yes/bob_nohash_0.wav", "yes/bob_nohash_1.wav"]
    found = scan(root, ["yes", "no"])
    assert found.speakers() == {"train": ["alice"], "validation": ["bob"], "test": ["carol", "dave"]}
    again = run("data", "split", root, "--validation-speakers", "alice")
    assert "validation_list.txt: already exists; give --force" in cli_error_line(again, alone=True)
    assert scan(root, ["yes", "no"]).speakers()["validation"] == ["bob"]  # nothing lost
    assert run("data", "split", root, "--validation-speakers", "alice", "--force").exit_code == 0
    assert scan(root, ["yes", "no"]).speakers()["validation"] == ["alice"]
    assert (root / "testing_list.txt").read_text() == ""


def test_without_lists_each_speaker_of_fsdd_names_keeps_to_one_split(tmp_path):
    names = [f"{digit}_{speaker}_{take}.wav" for speaker in [f"s{n}" for n in range(30)] for digit in (1, 2)
             for take in range(3)]
    root = make_corpus(tmp_path, {"one": [name for name in names if name[0] == "1"],
                                  "two": [name for name in names if name[0] == "2"]})
    found = scan(root, ["one", "two"])
    assert found.speaker_summary()["speaker_disjoint"] is True  # by file name, 30 speakers would spread
    assert {clip.split for clip in found.clips} == {"train", "validation", "test"}


def test_split_by_fraction_hashes_speakers_so_new_clips_move_none(tmp_path):
    speakers = [f"spk{n:02d}" for n in range(40)]
    root = speech_commands_style(tmp_path, speakers)
    assert run("data", "split", root, "--validation-pct", "20", "--testing-pct", "20").exit_code == 0
    found = scan(root, ["yes", "no"])
    assert found.speaker_summary()["speaker_disjoint"] is True
    assert all(clip.split == which_set(f"{clip.speaker}_nohash_0.wav", 20, 20) for clip in found.clips)
    before = found.speakers()
    speech_commands_style(root, speakers[:5], takes=4)  # more clips of old speakers
    assert run("data", "split", root, "--validation-pct", "20", "--testing-pct", "20", "--force").exit_code == 0
    assert scan(root, ["yes", "no"]).speakers() == before


@pytest.mark.parametrize("args, message", [
    (["--validation-speakers", "bob,zed"], "--validation-speakers: unknown speaker 'zed'"),
    (["--validation-speakers", "bob", "--test-speakers", "bob"], "speaker 'bob' is in both"),
    (["--validation-speakers", "alice,bob", "--test-speakers", "carol,dave"], "leaves the train split empty"),
    (["--test-speakers", "bob"], "leaves the validation split empty"),
    (["--validation-pct", "60", "--testing-pct", "40"], "leaves no training clips"),
    ([], "give either --validation-speakers"),
])
def test_split_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    root = speech_commands_style(tmp_path)
    assert message in cli_error_line(run("data", "split", root, *args), alone=True)
    assert not (root / "validation_list.txt").exists() and not (root / "testing_list.txt").exists()


def test_split_refuses_a_corpus_without_speaker_ids(tmp_path):
    root = make_corpus(tmp_path, {"yes": ["a.wav", "b.wav"], "no": ["c.wav"]})
    line = cli_error_line(run("data", "split", root, "--validation-pct", "10"), alone=True)
    assert "no speaker ids" in line and "speakers.csv" in line


def test_speaker_keys_reach_mlflow_profiles_but_not_the_resume_fingerprint(tmp_path):
    data = {"path": str(tmp_path), "fingerprint": "abc", "counts": {"yes": {"train": 3, "validation": 1, "test": 1}}}
    with_speakers = {**data, "speaker_disjoint": True, "speakers": {"train": 4, "validation": 1, "test": 1}}
    profiles = [json.loads(item.dataset.profile) for item in corpus_inputs(with_speakers)]
    assert [(p["speaker_disjoint"], p["speakers"]) for p in profiles] == [(True, 4), (True, 1), (True, 1)]
    assert "speaker_disjoint" not in json.loads(corpus_inputs(data)[0].dataset.profile)
    space = search_space.load(SMOKE_SPACE)
    assert fingerprint.digest(fingerprint.search_identity(space, None, 0, ["yes"], with_speakers)) == \
        fingerprint.digest(fingerprint.search_identity(space, None, 0, ["yes"], data))  # resume compares the same


def test_import_real_fsdd_by_speakers(tmp_path):
    recordings = sorted(Path(FSDD, "recordings").glob("*.wav"))
    subset = tmp_path / "src"
    subset.mkdir()
    for path in recordings:
        digit, speaker, take = path.stem.split("_")
        if int(take) in (0, 5, 10) and digit in "0123":  # a take of each split of the dataset's own
            (subset / path.name).symlink_to(path.resolve())
    result = run("data", "import-fsdd", subset, tmp_path / "out", "--split", "speakers")
    assert result.exit_code == 0, result.output
    found = scan(tmp_path / "out")
    assert found.speakers() == {"train": ["lucas", "nicolas", "theo", "yweweler"], "validation": ["george"],
                                "test": ["jackson"]}
    stats = run("data", "stats", tmp_path / "out")
    assert "speaker-disjoint: yes" in stats.output and "more than one split" not in stats.output
    default = run("data", "import-fsdd", subset, tmp_path / "takes")
    assert default.exit_code == 0 and scan(tmp_path / "takes").speaker_summary()["speaker_disjoint"] is False
