"""`training.int8: true`: each trial is also scored as a device runs it, its network in int8 (features in),
beside its float scores; with the key off (the default) a trial costs what it did."""

import dataclasses

import numpy as np
import pytest
from conftest import smoke_space, tone_splits

from tuner_app.device import micro, trial_int8
from tuner_app.errors import TunerAppError
from tuner_app.model.space import search_space
from tuner_app.search import run as search_run
from tuner_app.tracking import trial_metrics


def _metrics(tuner) -> list[dict[str, float]]:
    return [{name: trial.metrics.get_last_value(name) for name in trial.metrics.metrics}
            for trial in tuner.oracle.trials.values() if trial.status == "COMPLETED"]


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    space = smoke_space(max_trials=1)
    space = dataclasses.replace(space, training={**space.training, "int8": True})
    tuner = search_run.run_search(space, tone_splits(), tmp_path_factory.mktemp("int8") / "runs")
    return tuner, _metrics(tuner)


def test_each_trial_is_scored_in_int8_beside_its_float_scores(scored):
    _, (metrics,) = scored
    assert set(trial_int8.SCORES) <= set(metrics)
    assert 0 <= metrics["val_accuracy_int8"] <= 1 and 0 <= metrics["test_accuracy_int8"] <= 1
    assert metrics["flash_bytes"] > 0 and 0 < metrics["ram_bytes"] < micro.ARENA_LIMIT


def test_the_int8_scores_are_those_of_the_kept_weights(scored):
    tuner, (metrics,) = scored
    model = tuner.load_model(next(iter(tuner.oracle.trials.values())))
    again = trial_int8.scores(model, trial_int8.data_of(tone_splits()))
    assert again["val_accuracy_int8"] == metrics["val_accuracy_int8"]
    assert again["flash_bytes"] == metrics["flash_bytes"] and again["ram_bytes"] == metrics["ram_bytes"]


def test_the_int8_scores_go_to_the_trial_run_under_their_own_names(scored):
    _, (metrics,) = scored
    final = trial_metrics.final_values(metrics)
    assert {name: final[name] for name in trial_int8.SCORES} == {name: metrics[name] for name in trial_int8.SCORES}


def test_without_the_key_no_trial_is_converted(tmp_path, monkeypatch):
    monkeypatch.setattr(trial_int8, "scores", lambda *args: pytest.fail("converted without training.int8"))
    tuner = search_run.run_search(smoke_space(max_trials=1), tone_splits(), tmp_path / "runs")
    (metrics,) = _metrics(tuner)
    assert not set(trial_int8.SCORES) & set(metrics)


def test_a_network_that_does_not_convert_keeps_its_trial(monkeypatch, caplog):
    def fails(*args):
        raise TunerAppError("TFLite conversion failed: no int8 kernel")

    monkeypatch.setattr("tuner_app.device.features_in.convert", fails)
    data = trial_int8.data_of(tone_splits())
    assert trial_int8.scores(type("Model", (), {"name": "m"})(), data) == {}
    assert "no int8 scores for m: TFLite conversion failed" in caplog.text


@pytest.mark.parametrize("value", ["yes", 1])
def test_a_non_boolean_int8_key_is_one_line_naming_it(value):
    with pytest.raises(TunerAppError, match=r"s\.yaml: training\.int8"):
        search_space.from_dict({"model": "cnn2d", "training": {"int8": value}}, "s.yaml")


def test_the_calibration_clips_are_training_clips_as_they_are():
    splits = tone_splits()
    data = trial_int8.data_of(splits)
    assert all(any(np.array_equal(clip, train) for train in splits["train"].waveforms) for clip in data.calibration)


def test_the_int16_cache_is_scored_as_its_float32_waveforms(scored):
    # The decoded cache holds int16 samples (read float32 through `batch`); scored as raw int16 they would be
    # 32768 times too loud.
    from tuner_app.data.cache import DecodedClips, as_int16

    tuner, (metrics,) = scored
    model = tuner.load_model(next(iter(tuner.oracle.trials.values())))
    cached = {split: DecodedClips(as_int16(clips.waveforms), clips.labels, clips.paths)
              for split, clips in tone_splits().items()}
    assert trial_int8.scores(model, trial_int8.data_of(cached))["val_accuracy_int8"] == metrics["val_accuracy_int8"]
