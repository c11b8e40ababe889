import dataclasses
import io
import json
import re
from pathlib import Path

import pytest
from conftest import smoke_space, tone_splits

from tuner_app.device.budget import Budget
from tuner_app.errors import TunerAppError
from tuner_app.features.dataset import make_dataset
from tuner_app.model.space import search_space
from tuner_app.search import keras_tuner_internals, observers, progress, scoring, summary, run as search_run, tuners

SMOKE = Path(__file__).resolve().parents[1] / "search_spaces" / "smoke.yaml"


@pytest.fixture(scope="module")
def splits():
    return tone_splits()


_space = smoke_space


def _completed(tuner):
    return [row for row in summary.summary_rows(tuner) if row["status"] == "COMPLETED"]


class Recorder(observers.SearchObserver):
    def __init__(self):
        self.events = []

    def trial_begin(self, tuner, trial):
        self.events.append(("begin", trial.trial_id))

    def epoch_end(self, tuner, trial, epoch, logs):
        self.events.append(("epoch", trial.trial_id, epoch, sorted(logs)))

    def trial_end(self, tuner, trial, outcome):
        self.events.append(("end", trial.trial_id, outcome.status, outcome.reason, sorted(outcome.scores)))

    def configuration_rejected(self, tuner, values, reason, params):
        self.events.append(("rejected", params, reason))

    def search_end(self, tuner, status):
        self.events.append(("search_end", status))


@pytest.fixture(scope="module")
def random_search(splits, tmp_path_factory):
    """The smoke space's random search (2 trials), as its progress lines told it: (tuner, lines)."""
    stream = io.StringIO()
    tuner = search_run.run_search(_space(), splits, tmp_path_factory.mktemp("random"),
                              observers=[progress.ProgressReporter(stream)], verbose=0)
    return tuner, stream.getvalue().splitlines()


@pytest.fixture(scope="module")
def budget_search(splits, tmp_path_factory):
    """A random search of 2 trials under --max-params 300 (seed 2 draws a two-layer net early): (tuner, events
    its observer heard)."""
    recorder = Recorder()
    tuner = search_run.run_search(_space(max_trials=2), splits, tmp_path_factory.mktemp("budget"), budget=Budget(300),
                              seed=2, observers=[recorder], verbose=0)
    return tuner, recorder.events


def test_random_search_completes_two_trials_with_scores(splits, random_search):
    tuner, _ = random_search
    rows = _completed(tuner)
    assert len(rows) == 2
    for row in rows:
        assert 0.0 <= row["val_accuracy"] <= 1.0 and 0.0 <= row["test_accuracy"] <= 1.0
        assert row["params"] in (184, 288, 1056, 1128)
        assert row["val_loss"] > 0
    assert [row["trial_id"] for row in rows] == sorted(row["trial_id"] for row in rows)
    # The saved weights are the kept (minimum val_loss) ones the scores were computed with.
    best = tuner.oracle.get_best_trials(1)[0]
    val_ds = make_dataset(splits["validation"], 8)
    loss, _ = tuner.load_model(best).evaluate(val_ds, verbose=0)
    assert loss == pytest.approx(best.metrics.get_last_value("val_loss"), rel=1e-4)


# A resume trains only new trials: tests/test_tracking.py::test_resume_keeps_one_parent_and_never_logs_a_trial_twice
# counts the trainings of the very searches this file ran untracked.


# Hyperband (max_epochs 2, factor 2: continued trials) makes the same checks in
# test_executions.py::test_hyperband_executions_all_continue_from_the_same_weights, on the one such search.
@pytest.mark.parametrize("name, options", [
    ("bayesian", {"max_trials": 1, "num_initial_points": 1}),
    ("grid", {"max_trials": 1}),
])
def test_each_tuner_runs_a_trial(splits, tmp_path, name, options):
    tuner = search_run.run_search(_space(name=name, **options), splits, tmp_path, verbose=0)
    assert type(tuner) is tuners.TUNERS[name]
    rows = summary.summary_rows(tuner)
    assert len(_completed(tuner)) >= 1
    assert tuner.planned_trials() == len(rows)  # what the progress line announces as the total
    assert {row["status"] for row in rows} == {"COMPLETED"}  # hyperband's continued trials too


def test_tuner_name_overrides_the_space(splits, tmp_path):
    tuner = search_run.run_search(_space(), splits, tmp_path, tuner_name="hyperband", verbose=0)
    assert type(tuner) is tuners.Hyperband and tuner.oracle.max_epochs == 1
    assert len(_completed(tuner)) >= 1


def test_budget_rejects_without_spending_trials(budget_search):
    # Only the two one-conv-layer configurations (184 and 288 params) fit.
    tuner, _ = budget_search
    rows = _completed(tuner)
    assert sorted(row["params"] for row in rows) == [184, 288]
    assert len(tuner.rejected) >= 1  # with seed 2 the random oracle draws a two-layer net early
    assert all(entry["params"] > 300 for entry in tuner.rejected)
    assert tuner.oracle.max_trials == 2 and len(tuner.oracle.trials) == 2  # rejections never became trials
    rejected_rows = [row for row in summary.summary_rows(tuner) if row["status"] == "REJECTED"]
    assert [row["params"] for row in rejected_rows] == [entry["params"] for entry in tuner.rejected]


def test_impossible_budget_is_a_user_error(splits, tmp_path):
    with pytest.raises(TunerAppError, match=r"smoke.yaml: no configuration fits --max-params 100; the smallest has 184 params \(conv_layers=1, fc_layers=0\)"):
        search_run.run_search(_space(name="grid", max_trials=2), splits, tmp_path, budget=Budget(100), verbose=0)


def test_observers_hear_every_trial_and_every_rejection(budget_search):
    tuner, events = budget_search
    ends = [event for event in events if event[0] == "end"]
    assert [event[2] for event in ends] == ["COMPLETED", "COMPLETED"]
    rejected = [event for event in events if event[0] == "rejected"]
    assert len(rejected) == len(tuner.rejected) >= 1
    assert all(re.fullmatch(rf"{params} params > budget 300", reason) for _, params, reason in rejected)
    completed = next(event for event in ends if event[2] == "COMPLETED")
    assert completed[4] == sorted(["val_accuracy", "val_loss", "test_accuracy", "params", "params_total",
                                   "params_trainable", "params_conv", "params_fc", "macs", "train_seconds",
                                   "model_bytes", "keras_latency_ms", "stopped_at_chance"])
    first = completed[1]
    assert ("epoch", first, 0, ["accuracy", "loss", "val_accuracy", "val_loss"]) in events
    assert [event[0] for event in events].count("begin") == len(ends)
    assert events[-1] == ("search_end", "FINISHED")


def test_progress_shows_trial_of_total_params_epochs_and_eta(random_search):
    _, lines = random_search
    assert lines[0] == "Search smoke-random: RandomSearch, 2 trials"
    assert re.fullmatch(r"\[1/2\] trial 0: conv_layers=[12] fc_layers=[01], [\d,]+ params", lines[1])
    assert re.fullmatch(r"    epoch 1/1  loss [\d.]+ acc [\d.]+  val_loss [\d.]+ val_acc [\d.]+  \([\d.]+ s\)", lines[2])
    clock = r"\d+:[0-5]\d:[0-5]\d"  # H:MM:SS, however slow the machine
    assert re.fullmatch(rf"    done in {clock}: val_acc [\d.]+, test_acc [\d.]+; 1 to go, ETA {clock}", lines[3])
    assert re.fullmatch(r"    front: 1 of 1 trials, hypervolume [\d.]+ \(params_total, val_acc\): [\d.]+K? [\d.]+",
                        lines[4])
    assert lines[5].startswith("[2/2] trial 1: ") and len(lines) == 9
    assert re.fullmatch(r"    front: [12] of 2 trials, .*", lines[8])


def test_a_one_dimensional_smoke_search(splits, tmp_path):
    document = search_space.resolved(search_space.load(SMOKE))
    document.update(model="cnn1d", frontend={"kind": "waveform"})
    document["hyperparameters"].update(kernel_size={"type": "fixed", "value": 25},
                                       pool_size={"type": "fixed", "value": 4})
    space = search_space.from_dict(document, "smoke_1d")
    tuner = search_run.run_search(space, splits, tmp_path)
    rows = _completed(tuner)
    model = tuner.hypermodel.build(tuner.oracle.trials["0"].hyperparameters)
    assert len(rows) == 2 and model.input_shape == (None, 16000)  # the waveform, into the Frontend layer
    assert model.get_layer("frontend").output.shape[1:] == (16000, 1) and model.get_layer("b00_conv").kernel.shape[0] == 25


def test_a_trial_left_running_by_a_kill_is_retried(splits, tmp_path):
    # A kill between saving a new trial (RUNNING) and saving the oracle leaves a trial no queue holds.
    tuner = search_run.run_search(_space(max_trials=1), splits, tmp_path)
    tuner.oracle.max_trials = 2
    orphan = tuner.oracle.create_trial("tuner0")
    assert orphan.status == "RUNNING"
    oracle_file = Path(keras_tuner_internals.oracle_file(tuner.oracle))
    state = json.loads(oracle_file.read_text())
    state["ongoing_trials"] = {}
    oracle_file.write_text(json.dumps(state))
    resumed = search_run.run_search(_space(max_trials=2), splits, tmp_path)
    rows = summary.summary_rows(resumed)
    assert [(row["trial_id"], row["status"]) for row in rows] == [("0", "COMPLETED"), (orphan.trial_id, "COMPLETED")]


@pytest.mark.parametrize("monitor", ["val_accuracy", "val_loss"])
def test_early_stopping_watches_training_monitor_and_keeps_its_best_weights(splits, tmp_path, monkeypatch, monitor):
    built = []

    class Recorded(tuners.keras.callbacks.EarlyStopping):
        def __init__(self, **options):
            built.append(options)
            super().__init__(**options)

    monkeypatch.setattr(tuners.keras.callbacks, "EarlyStopping", Recorded)
    space = _space(max_trials=1)
    space = dataclasses.replace(space, training={**space.training, "monitor": monitor})
    search_run.run_search(space, splits, tmp_path, verbose=0)
    mode = "max" if monitor == "val_accuracy" else "min"  # told: Keras cannot infer it for mixup's metric
    assert [(options["monitor"], options["mode"], options["restore_best_weights"]) for options in built] == [
        (monitor, mode, True)]


@pytest.mark.parametrize("monitor, kept", [("val_accuracy", "b"), ("val_loss", "a")])
def test_of_several_executions_the_best_on_training_monitor_is_kept(monitor, kept):
    executions = {"a": {"val_loss": 0.5, "val_accuracy": 0.6}, "b": {"val_loss": 0.7, "val_accuracy": 0.8}}
    assert scoring.better(executions["b"], executions["a"], monitor) is (kept == "b")


def test_training_monitor_is_one_of_two(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMOKE.read_text().replace("training: {", "training: {monitor: accuracy, "))
    with pytest.raises(TunerAppError, match=r"bad.yaml: training.monitor: expected one of \['val_loss', "
                                            r"'val_accuracy'\], got 'accuracy'"):
        search_space.load(bad)


def test_mixup_trains_under_a_val_accuracy_monitor(splits, tmp_path):
    # Keras cannot tell whether mixup's own accuracy metric is to be maximised: without the mode, every trial failed.
    space = _space(max_trials=1)
    space = dataclasses.replace(space, augment=dataclasses.replace(space.augment, mixup_alpha=0.2),
                                training={**space.training, "epochs": 2, "monitor": "val_accuracy"})
    tuner = search_run.run_search(space, splits, tmp_path, verbose=0)
    assert [trial.status for trial in tuner.oracle.trials.values()] == ["COMPLETED"]
