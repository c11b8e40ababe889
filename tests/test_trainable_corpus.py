"""Corpora that cannot train a classifier: one class, an empty train or validation split, a single class with
training clips are refused before any training; a class without training (or validation) clips is warned
about in one line. `data import-fsdd`, `data stats` and `data prepare` say so too, and train nothing."""

import logging
import types

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import one_line_error, smoke_space, tone, two_word_corpus, write_wav

from tuner_app.cli import cli
from tuner_app.data import corpus, fsdd, stats
from tuner_app.data.cache import DecodedClips
from tuner_app.search import run as search_run

LOGGER = "tuner_app.data.trainability"


def _counts(**per_class):
    """{class: {split: clips}} from class=(train, validation, test)."""
    return {name: dict(zip(corpus.SPLITS, clips)) for name, clips in per_class.items()}


@pytest.mark.parametrize("counts,why", [
    (_counts(zero=(5, 1, 1)), "it has 1 class (zero)"),
    (_counts(three=(0, 5, 5), four=(0, 5, 5)), "its train split is empty"),
    (_counts(three=(5, 0, 5), four=(5, 0, 5)), "its validation split is empty"),
    (_counts(three=(0, 5, 5), four=(5, 5, 5)), "only 1 of its 2 classes has training clips (four)"),
])
def test_a_corpus_that_cannot_train_a_classifier_is_refused_naming_why(counts, why):
    from tuner_app.data import trainability

    one_line_error(lambda: trainability.check(counts, "corpus", "fix it"),
                   f"corpus: cannot train a classifier: {why}; fix it")


def test_a_class_without_training_or_validation_clips_is_one_warning(caplog):
    from tuner_app.data import trainability

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        trainability.check(_counts(yes=(5, 1, 1), no=(5, 1, 1), up=(0, 1, 1), down=(5, 0, 1)), "corpus", "")
    (record,) = caplog.records
    assert record.getMessage() == ("corpus: no training clips for up (the model cannot learn them); no validation "
                                   "clips for down (their accuracy goes unmeasured)")


def _one_class_splits():
    clips = DecodedClips(np.stack([tone(1.0)] * 2).astype(np.float32), np.zeros(2, np.int64), ("a.wav", "b.wav"))
    return {"train": clips, "validation": clips, "test": clips}


def test_a_search_on_one_class_is_refused_before_any_training(tmp_path):
    # It trained and reported val_acc 1.0000: the one answer a one-output model can give.
    search = lambda: search_run.run_search(smoke_space(max_trials=1), _one_class_splits(), tmp_path,  # noqa: E731
                                           class_names=["zero"])
    one_line_error(search, "corpus: cannot train a classifier: it has 1 class (zero)", "--data")
    assert not list(tmp_path.rglob("trial_*"))


def _fsdd_folder(folder, digits, takes):
    for digit in digits:
        for take in takes:
            write_wav(folder / f"{digit}_george_{take}.wav", tone(0.1, rate=8000), rate=8000)
    return folder


def test_import_fsdd_of_a_folder_without_train_takes_warns_in_one_line_before_writing(tmp_path, caplog):
    src = _fsdd_folder(tmp_path / "src", (3, 4), range(10))  # takes 0-9 only: test and validation
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        result = CliRunner().invoke(cli, ["data", "import-fsdd", str(src), str(tmp_path / "out")])
    assert result.exit_code == 0 and "(train 0, validation 10, test 10)" in result.output
    (record,) = caplog.records
    assert record.getMessage() == (
        f"{src}: no recordings of zero, one, two, five, six, seven, eight, nine; cannot train a classifier: its "
        "train split is empty; no training clips for three, four (the model cannot learn them)")


def test_import_fsdd_of_a_folder_lacking_a_digit_names_it(tmp_path, caplog):
    src = _fsdd_folder(tmp_path / "src", range(9), (0, 5, 10))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        fsdd.import_fsdd(src, tmp_path / "out")
    assert [record.getMessage() for record in caplog.records] == [f"{src}: no recordings of nine"]


def test_stats_names_what_keeps_a_corpus_from_training(tmp_path):
    for name in ("a_nohash_0.wav", "b_nohash_0.wav"):
        write_wav(tmp_path / "zero" / name, tone(0.1))
    report = stats.stats(corpus.scan(tmp_path), describe=lambda path: types.SimpleNamespace(rate=16000, duration=0.1))
    assert report["problems"][0] == "cannot train a classifier: it has 1 class (zero)"
    assert "\nwarning: cannot train a classifier: it has 1 class (zero)" in stats.format_stats(report)


def test_prepare_warns_that_the_corpus_cannot_train_a_classifier(tmp_path, caplog):
    data = two_word_corpus(tmp_path / "data")
    (data / "testing_list.txt").write_text("".join(f"one/spk{i}_nohash_0.wav\n" for i in (0, 1, 4, 5)))
    (data / "validation_list.txt").write_text("zero/spk2_nohash_0.wav\none/spk2_nohash_0.wav\none/spk3_nohash_0.wav\n")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        result = CliRunner().invoke(cli, ["data", "prepare", "--data", str(data), "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert [record.getMessage() for record in caplog.records] == [
        f"{data}: cannot train a classifier: only 1 of its 2 classes has training clips (zero); no training clips "
        "for one (the model cannot learn them)"]
