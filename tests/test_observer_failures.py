"""An observer (MLflow, progress) that fails or is interrupted never costs training; a resume logs what it missed."""

import logging
import os
import signal
from pathlib import Path

import keras
import mlflow
import pytest
from conftest import smoke_space, tone_splits
from mlflow.exceptions import MlflowException

from tuner_app.search import observers, summary, run as search_run, tuners
from tuner_app.tracking import params as run_params
from tuner_app.tracking.tracker import MLflowTracker

SMOKE = Path(__file__).resolve().parents[1] / "search_spaces" / "smoke.yaml"
EXPERIMENT = "failures"


@pytest.fixture(scope="module")
def splits():
    return tone_splits()


class Recorder(observers.SearchObserver):
    def __init__(self):
        self.ends, self.search_status, self.epochs_written = [], None, []

    def trial_end(self, tuner, trial, outcome):
        self.ends.append(outcome.status)

    def search_end(self, tuner, status):
        self.search_status = status


class Broken(observers.SearchObserver):
    """Raises in one event, as MLflow does when its store goes away."""

    def __init__(self, event):
        self.event, self.calls = event, 0
        setattr(self, event, self._fail)

    def _fail(self, *args):
        self.calls += 1
        raise MlflowException("store unreachable: connection refused\nsecond line of the error")


def _statuses(tuner):
    return [row["status"] for row in summary.summary_rows(tuner)]


def _warnings(caplog):
    return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]


@pytest.mark.parametrize("event", ["search_begin", "trial_begin", "epoch_end", "trial_end"])
def test_a_failing_observer_costs_no_training_and_is_reported_once(splits, tmp_path, caplog, event):
    broken, recorder = Broken(event), Recorder()
    # One failed trial would end the search: an observer's failure must not count as one.
    space = smoke_space(max_trials=2, max_consecutive_failed_trials=1)
    with caplog.at_level(logging.WARNING):
        tuner = search_run.run_search(space, splits, tmp_path, observers=[broken, recorder])
    assert _statuses(tuner) == ["COMPLETED", "COMPLETED"]
    assert recorder.ends == ["COMPLETED", "COMPLETED"] and recorder.search_status == "FINISHED"
    assert broken.calls == 1  # not called again once it failed
    (message,) = [text for text in _warnings(caplog) if "Broken" in text]
    assert "\n" not in message and event in message and "store unreachable: connection refused" in message
    assert "training goes on" in message and str(tuner.project_dir) in message


class SignalsMidWrite(Recorder):
    """Sends SIGINT to the process in the middle of writing an epoch, as a Ctrl-C at the wrong moment would."""

    def epoch_end(self, tuner, trial, epoch, logs):
        os.kill(os.getpid(), signal.SIGINT)
        self.epochs_written.append(epoch)  # the rest of the write


def test_a_stop_request_lets_an_observer_write_finish_then_stops(splits, tmp_path):
    observer = SignalsMidWrite()
    with pytest.raises(KeyboardInterrupt):
        search_run.run_search(smoke_space(max_trials=2), splits, tmp_path, observers=[observer])
    assert observer.epochs_written == [0]
    assert observer.ends == ["KILLED"] and observer.search_status == "KILLED"


def test_a_stop_request_during_a_checkpoint_save_lets_it_finish(splits, tmp_path, monkeypatch):
    original = keras.Model.save_weights
    saved = []

    def save_interrupted(model, path, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        original(model, path, *args, **kwargs)
        saved.append(path)

    monkeypatch.setattr(keras.Model, "save_weights", save_interrupted)
    recorder = Recorder()
    with pytest.raises(KeyboardInterrupt):
        search_run.run_search(smoke_space(max_trials=2), splits, tmp_path, observers=[recorder])
    assert len(saved) == 1  # the weights were saved once, whole: the file the buffer went to is complete
    (checkpoint,) = tmp_path.glob("*/trial_0/checkpoint.weights.h5")
    assert checkpoint.stat().st_size > 0 and not list(tmp_path.glob("*/trial_0/.*partial"))
    # The trial whose save was interrupted is kept; the search stops before the next one.
    assert recorder.ends == ["COMPLETED"] and recorder.search_status == "KILLED"


def _uri(directory: Path) -> str:
    return f"sqlite:///{directory / 'mlruns' / 'm.db'}"


class OutageFromTrial1(MLflowTracker):
    """The store goes away after the first trial was logged."""

    def trial_begin(self, tuner, trial):
        if trial.trial_id != "0":
            raise MlflowException("API request failed: connection refused")
        super().trial_begin(tuner, trial)


def test_a_resume_after_an_outage_logs_the_missed_trials(splits, tmp_path, monkeypatch, new_store):
    new_store(tmp_path / "mlruns" / "m.db")
    space = smoke_space(max_trials=2)
    first = search_run.run_search(space, splits, tmp_path / "runs",
                              observers=[OutageFromTrial1(_uri(tmp_path), EXPERIMENT, SMOKE)])
    assert _statuses(first) == ["COMPLETED", "COMPLETED"]
    fits = []
    monkeypatch.setattr(tuners.TrialMixin, "run_trial", lambda *args, **kwargs: fits.append(args))
    tracker = MLflowTracker(_uri(tmp_path), EXPERIMENT, SMOKE)
    search_run.run_search(space, splits, tmp_path / "runs", observers=[tracker])  # the same command again
    assert fits == []  # nothing retrained
    client = mlflow.MlflowClient(_uri(tmp_path))
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id])
    children = sorted((run for run in runs if "mlflow.parentRunId" in run.data.tags),
                      key=lambda run: run.data.tags["trial_id"])
    parents = [run for run in runs if run not in children]
    assert [parent.info.status for parent in parents] == ["FINISHED"]
    assert [(run.data.tags["trial_id"], run.info.status) for run in children] == [("0", "FINISHED"), ("1", "FINISHED")]
    logged, missed = children
    trial = first.oracle.trials["1"]
    assert {name: run_params.loads(text) for name, text in missed.data.params.items()} == trial.hyperparameters.values
    for tag in ("mlflow.parentRunId", "model", "tuner_app.outcome"):
        assert missed.data.tags[tag] == logged.data.tags[tag]
    assert missed.data.tags["trial_dir"] == str(Path(first.get_trial_dir("1")).resolve())
    # A backfilled run has the final scores, but no epoch curves and no system metrics: it was not watched.
    watched = {name for name in logged.data.metrics if name.startswith("system/")}
    assert set(logged.data.metrics) - {"loss", "accuracy", "val_loss", "val_accuracy"} - watched == \
        set(missed.data.metrics)
    assert missed.data.metrics["best_val_accuracy"] == pytest.approx(trial.metrics.get_last_value("val_accuracy"))
    assert missed.data.metrics["params_total"] == trial.metrics.get_last_value("params_total")


class Outage(observers.SearchObserver):
    """The store stops answering when trial 1 begins and answers again once it has ended."""

    down = False

    def trial_begin(self, tuner, trial):
        Outage.down = trial.trial_id == "1"

    def trial_end(self, tuner, trial, outcome):
        Outage.down = False


class _Unreachable:
    """An MLflow client whose every call fails while the store is down."""

    def __init__(self, client):
        self.client = client

    def __getattr__(self, name):
        if Outage.down:
            raise MlflowException("API request failed: connection refused")
        return getattr(self.client, name)


class TrackerBehindOutage(MLflowTracker):
    def search_begin(self, tuner):
        super().search_begin(tuner)
        self._client = _Unreachable(self._client)


def test_a_store_down_mid_search_gets_the_missed_trial_once_it_answers(splits, tmp_path, monkeypatch, caplog,
                                                                      new_store):
    from tuner_app.tracking import tracker as tracker_module

    new_store(tmp_path / "mlruns" / "m.db")

    def reachable(uri):
        if Outage.down:
            raise MlflowException("connection refused")

    monkeypatch.setattr(tracker_module, "check_reachable", reachable)
    tracker = TrackerBehindOutage(_uri(tmp_path), EXPERIMENT, SMOKE)
    with caplog.at_level(logging.WARNING):
        search_run.run_search(smoke_space(max_trials=3), splits, tmp_path / "runs", observers=[Outage(), tracker])
    client = mlflow.MlflowClient(_uri(tmp_path))
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    children = sorted((run for run in runs if "mlflow.parentRunId" in run.data.tags),
                      key=lambda run: run.data.tags["trial_id"])
    # Logged during the same search, as soon as the store answered (before trial 2), each trial once.
    assert [(run.data.tags["trial_id"], run.info.status) for run in children] == [
        ("0", "FINISHED"), ("1", "FINISHED"), ("2", "FINISHED")]
    assert children[1].data.tags.get("tuner_app.backfilled") == "true"
    assert children[1].info.start_time < children[2].info.start_time
    messages = _warnings(caplog)
    assert any("is paused until it answers again" in text for text in messages)
    assert any("answers again and has caught up" in text for text in messages)


def test_a_store_still_down_at_the_end_says_how_to_finish_and_a_rerun_logs_everything(tmp_path, monkeypatch,
                                                                                       new_store):
    from click.testing import CliRunner
    from conftest import SMOKE_SPACE, cli_error_line, two_word_corpus

    from tuner_app.cli import cli
    from tuner_app.tracking import tracker as tracker_module

    monkeypatch.chdir(tmp_path)
    uri = new_store(tmp_path / "mlruns" / "m.db")
    args = ["search", "--space", SMOKE_SPACE, "--data", str(two_word_corpus(tmp_path / "data")), "--cache-dir",
            str(tmp_path / "cache"), "--tracking-uri", uri, "--experiment", EXPERIMENT]
    answers = iter([True])  # the check before training; never again

    def reachable(store):
        if not next(answers, False):
            raise MlflowException("connection refused")

    def gone(self, tuner, trial):
        raise MlflowException("connection refused")

    with monkeypatch.context() as outage:
        outage.setattr(tracker_module, "check_reachable", reachable)
        outage.setattr(MLflowTracker, "trial_begin", gone)
        line = cli_error_line(CliRunner().invoke(cli, args))
    assert line.startswith(f"Error: MLflow store {uri} still does not answer: the finished trials are kept in ")
    assert "when the same command runs again with it answering" in line
    assert not (tmp_path / "runs" / "smoke-random" / "pareto").exists()  # no analysis of a half-logged search

    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    children = [run for run in runs if "mlflow.parentRunId" in run.data.tags]
    assert sorted(run.data.tags["trial_id"] for run in children) == ["0", "1"]  # trained once, logged once
    assert {run.data.tags.get("tuner_app.backfilled") for run in children} == {"true"}
    assert (tmp_path / "runs" / "smoke-random" / "pareto" / "pareto.csv").is_file()
