"""A trial still at chance stops early (search/chance.py) and completes, marked as stopped at chance: the rule on
fake logs, the training key, the marker over executions, and one tiny search whose model cannot leave chance."""

import io
import math
from types import SimpleNamespace

import mlflow
import numpy as np
import pytest
import yaml
from conftest import N_CLASSES, one_line_error

from tuner_app.model.space import search_space
from tuner_app.search import chance, fingerprint, progress, scoring, summary
from tuner_app.search import run as search_run
from tuner_app.tracking.tracker import MLflowTracker
from tuner_app.tracking.trial_metrics import CHANCE_TAG

AT_CHANCE = {"accuracy": 0.0625, "val_accuracy": 0.0625}  # 1/16
LEARNING = {"accuracy": 0.2, "val_accuracy": 0.15}
EXPERIMENT = "chance"


def _callback(chance_epochs, warmup_epochs=0, epochs=10, n_classes=16):
    callback = chance.ChanceStop(n_classes, chance_epochs, warmup_epochs)
    callback.set_model(SimpleNamespace(stop_training=False))
    callback.set_params({"epochs": epochs, "verbose": 0, "steps": 4})
    callback.on_train_begin()
    return callback


def _epochs_until_stop(callback, logs_of_epoch, first_epoch=0, last_epoch=10) -> int | None:
    """Feed the callback epochs (0-based) until it stops training; the 1-based epoch it stopped after, or None."""
    for epoch in range(first_epoch, last_epoch):
        callback.on_epoch_end(epoch, logs_of_epoch(epoch))
        if callback.model.stop_training:
            return epoch + 1
    return None


def test_the_threshold_is_one_and_a_half_times_chance_at_most_five_points_above_it():
    assert chance.chance_threshold(16) == pytest.approx(0.09375)
    assert chance.chance_threshold(10) == pytest.approx(0.15)
    assert chance.chance_threshold(2) == pytest.approx(0.55)  # not 0.75: a binary model at 0.7 learns
    assert chance.chance_threshold(35) == pytest.approx(1.5 / 35)


@pytest.mark.parametrize("chance_epochs", [1, 3, 5])
def test_a_trial_at_chance_stops_exactly_after_chance_epochs(chance_epochs):
    callback = _callback(chance_epochs)
    assert _epochs_until_stop(callback, lambda epoch: AT_CHANCE) == chance_epochs
    assert callback.scores() == {"stopped_at_chance": 1.0, "stopped_epoch": float(chance_epochs)}


@pytest.mark.parametrize("above", [LEARNING, {"accuracy": 0.2, "val_accuracy": 0.0625},
                                   {"accuracy": 0.0625, "val_accuracy": 0.09375}])
def test_one_epoch_above_chance_in_either_accuracy_keeps_the_trial_going(above):
    # Above at epoch 2 only, at chance before and after (noise, or a model that learned and fell back).
    callback = _callback(3)
    assert _epochs_until_stop(callback, lambda epoch: above if epoch == 1 else AT_CHANCE) is None
    assert callback.scores() == {"stopped_at_chance": 0.0}


def test_a_learning_trial_is_never_stopped():
    callback = _callback(3)
    assert _epochs_until_stop(callback, lambda epoch: LEARNING) is None
    assert callback.scores() == {"stopped_at_chance": 0.0}


def test_chance_epochs_zero_never_stops():
    assert _epochs_until_stop(_callback(0), lambda epoch: AT_CHANCE) is None


def test_the_count_starts_after_the_learning_rate_warm_up():
    assert _epochs_until_stop(_callback(3, warmup_epochs=2), lambda epoch: AT_CHANCE) == 5


def test_the_last_epoch_ends_training_anyway_and_is_not_marked():
    callback = _callback(3, epochs=3)
    assert _epochs_until_stop(callback, lambda epoch: AT_CHANCE, last_epoch=3) is None
    assert callback.scores() == {"stopped_at_chance": 0.0}


def test_a_continued_hyperband_round_past_chance_epochs_is_checked_at_its_first_epoch():
    callback = _callback(3, epochs=12)  # this fit trains epochs 7 to 12 of the trial it continues
    assert _epochs_until_stop(callback, lambda epoch: AT_CHANCE, first_epoch=6, last_epoch=12) == 7


@pytest.mark.parametrize("logs", [{}, {"accuracy": 0.0625}, {"accuracy": math.nan, "val_accuracy": 0.0625}])
def test_an_accuracy_not_measured_stops_nothing(logs):
    assert _epochs_until_stop(_callback(1), lambda epoch: logs) is None


def test_a_trial_with_several_executions_is_marked_only_if_all_stopped_at_chance():
    def execution(val_accuracy, stopped_epoch=None):
        marker = {"stopped_at_chance": 0.0} if stopped_epoch is None else {
            "stopped_at_chance": 1.0, "stopped_epoch": float(stopped_epoch)}
        return {"val_accuracy": val_accuracy, "val_loss": 2.7, "train_seconds": 1.0, **marker}

    all_stopped = scoring.combine([execution(0.06, 5), execution(0.07, 6)], kept=0)
    assert (all_stopped["stopped_at_chance"], all_stopped["stopped_epoch"]) == (1.0, 6.0)
    assert all_stopped["executions_at_chance"] == 2.0
    # Whichever execution comes first: the others' scores need not hold stopped_epoch.
    for executions in ([execution(0.06, 5), execution(0.5)], [execution(0.5), execution(0.06, 5)]):
        some = scoring.combine(executions, kept=0)
        assert some["stopped_at_chance"] == 0.0 and "stopped_epoch" not in some
        assert some["executions_at_chance"] == 1.0 and some["val_accuracy"] == pytest.approx(0.28)


def test_early_stopping_restores_its_best_weights_when_chance_stops_training():
    import keras

    # Zero inputs: only the bias learns, every clip gets one class, accuracy stays at chance. Training leans
    # the bias to class 0 (9 of 100 clips, 0.09 accuracy), so the balanced validation loss worsens every epoch:
    # the best weights are epoch 1's, and training stops at chance after epoch 2.
    train_labels = np.array([0] * 9 + [1] * 7 + [label for label in range(2, 16) for _ in range(6)])
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.5), "sparse_categorical_crossentropy", metrics=["accuracy"])
    early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)
    at_chance, last = chance.ChanceStop(16, 2), []
    keep_last = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: last.append(model.get_weights()))
    history = model.fit(np.zeros((100, 4)), train_labels, validation_data=(np.zeros((16, 4)), np.arange(16)),
                        epochs=10, batch_size=100, callbacks=[early, at_chance, keep_last], verbose=0)
    assert len(history.epoch) == 2 and at_chance.scores()["stopped_epoch"] == 2.0
    assert early.best_epoch == 0
    assert not np.allclose(model.get_weights()[1], last[-1][1])
    np.testing.assert_allclose(model.get_weights()[1], early.best_weights[1])


@pytest.mark.parametrize("value, message", [
    (-1, "training.chance_epochs: expected a number from 0 to 10,000, got -1"),
    (10_001, "training.chance_epochs: expected a number from 0 to 10,000, got 10001"),
    (2.5, "training.chance_epochs: expected int, got 2.5"),
    ("five", "training.chance_epochs: expected int, got 'five'"),
    (True, "training.chance_epochs: expected int, got True"),
])
def test_a_bad_chance_epochs_is_one_line_naming_the_key(value, message):
    document = {"training": {"epochs": 10, "chance_epochs": value}}
    one_line_error(lambda: search_space.from_dict(document, "space.yaml"), "space.yaml: " + message)


def test_chance_epochs_defaults_to_five_and_takes_zero():
    assert search_space.from_dict({}, "space.yaml").training["chance_epochs"] == 5
    assert search_space.from_dict({"training": {"chance_epochs": 0}}, "space.yaml").training["chance_epochs"] == 0


def test_a_resume_must_keep_chance_epochs_and_zero_is_as_before_the_key():
    def identity(chance_epochs):
        space = search_space.from_dict({"training": {"chance_epochs": chance_epochs}}, "space.yaml")
        return fingerprint.search_identity(space, None, 0, ["a", "b"], {})

    assert fingerprint.differences(identity(5), identity(3)) == ["training.chance_epochs: 5 -> 3"]
    assert "chance_epochs" not in identity(0)["training"]  # a search started before the key resumes with 0


def _one_clip_for_all(per_class: int):
    """16 classes of one and the same waveform: any model, whatever its weights, predicts one class for every
    clip, so its accuracy on these balanced splits is exactly 1/16."""
    from tuner_app.data.cache import DecodedClips

    labels = np.repeat(np.arange(N_CLASSES), per_class).astype(np.int64)
    waveform = 0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    waveforms = np.tile(waveform.astype(np.float32), (len(labels), 1))
    return DecodedClips(waveforms, labels, tuple(f"clip{index}.wav" for index in range(len(labels))))


def _stuck_space(tmp_path):
    """One configuration that cannot leave chance (no dropout, which would vary the predictions in training; a
    tiny learning rate besides), 4 epochs with patience 4, stopped at chance after 2."""
    fixed = {"conv_layers": 1, "fc_layers": 0, "batch_norm": False, "filters": 4, "kernel_size": 5,
             "pool_size": 2, "head": "gap", "dropout": 0.0, "learning_rate": 1e-9}
    document = {"model": "cnn2d", "frontend": {"kind": "stft", "frame_length": 256, "frame_step": 160,
                                               "fft_length": 512},
                "hyperparameters": {name: {"type": "fixed", "value": value} for name, value in fixed.items()},
                "tuner": {"name": "random", "max_trials": 1},
                "training": {"epochs": 4, "batch_size": 8, "patience": 4, "seed": 0, "chance_epochs": 2}}
    path = tmp_path / "stuck.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_a_search_whose_trial_stays_at_chance_stops_it_and_completes_it_marked(tmp_path, new_store):
    path, uri, stream = _stuck_space(tmp_path), new_store(tmp_path / "m.db"), io.StringIO()
    splits = {"train": _one_clip_for_all(2), "validation": _one_clip_for_all(1), "test": _one_clip_for_all(1)}
    tuner = search_run.run_search(search_space.load(path), splits, tmp_path / "runs", observers=[
        progress.ProgressReporter(stream), MLflowTracker(uri, EXPERIMENT, path)])

    lines = stream.getvalue().splitlines()
    assert [line.split()[1] for line in lines if line.startswith("    epoch ")] == ["1/4", "2/4"]
    (done,) = [line for line in lines if line.startswith("    done in ")]
    assert done.endswith(", stopped at chance after epoch 2")
    assert "FAILED" not in stream.getvalue()

    (trial,) = tuner.oracle.trials.values()
    assert trial.status == "COMPLETED"
    assert trial.metrics.get_last_value("stopped_at_chance") == 1.0
    assert trial.metrics.get_last_value("stopped_epoch") == 2.0
    assert trial.metrics.get_last_value("val_accuracy") == pytest.approx(1 / N_CLASSES)  # its real score

    rows = summary.summary_rows(tuner)
    assert [row["stopped_at_chance"] for row in rows] == [True]
    table = summary.format_trials(rows).splitlines()
    assert table[0].split()[-2:] == ["stopped", "front"] and "at chance" in table[1]
    assert table[-1].startswith("1 stopped at chance")
    assert summary.headline(tuner)["trials_stopped_at_chance"] == 1.0

    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    (child,) = [run for run in runs if "mlflow.parentRunId" in run.data.tags]
    (parent,) = [run for run in runs if run is not child]
    assert child.info.status == "FINISHED" and child.data.tags["tuner_app.outcome"] == "COMPLETED"
    assert child.data.tags[CHANCE_TAG] == "true"
    assert child.data.metrics["stopped_at_chance"] == 1.0 and child.data.metrics["stopped_epoch"] == 2.0
    assert parent.data.metrics["trials_stopped_at_chance"] == 1.0


def test_a_table_without_any_stopped_at_chance_is_as_before():
    row = {"trial_id": "0", "status": "COMPLETED", "hyperparameters": {"a": 1}, "params": 10,
           "val_accuracy": 0.5, "test_accuracy": 0.4, "front": True, "stopped_at_chance": False}
    table = summary.format_trials([row]).splitlines()
    assert len(table) == 2 and table[0].split()[-1] == "front" and table[1].endswith("*")
