"""executions_per_trial: K trainings per trial with seeds seed..seed+K-1; the trial reports their mean and spread."""

import io
import re
import statistics
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
from conftest import smoke_space, tone_splits

from tuner_app.features.dataset import make_dataset
from tuner_app.search import progress, scoring, summary, run as search_run, tuners
from tuner_app.tracking.tracker import MLflowTracker

SMOKE = Path(__file__).resolve().parents[1] / "search_spaces" / "smoke.yaml"
EXPERIMENT = "executions"


@pytest.fixture(scope="module")
def splits():
    return tone_splits()


def _record_calls(monkeypatch):
    """Every fit (with the weights it started from), every execution's scores, every seed set."""
    calls = {"fits": [], "scores": [], "seeds": []}
    fit, scores, set_seed = keras.Model.fit, scoring.scores, keras.utils.set_random_seed

    def recording_fit(model, *args, **kwargs):
        calls["fits"].append((kwargs.get("initial_epoch", 0), [w.copy() for w in model.get_weights()]))
        return fit(model, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    monkeypatch.setattr(scoring, "scores", lambda *args: calls["scores"].append(scores(*args)) or calls["scores"][-1])
    monkeypatch.setattr(keras.utils, "set_random_seed", lambda seed: calls["seeds"].append(seed) or set_seed(seed))
    return calls


def test_three_executions_report_their_mean_and_spread(splits, tmp_path, monkeypatch, new_store):
    calls = _record_calls(monkeypatch)
    uri = new_store(tmp_path / "m.db")
    stream = io.StringIO()
    tuner = search_run.run_search(smoke_space(max_trials=1, executions_per_trial=3), splits, tmp_path / "runs",
                              observers=[progress.ProgressReporter(stream), MLflowTracker(uri, EXPERIMENT, SMOKE)])
    assert len(calls["fits"]) == 3
    assert calls["seeds"][-3:] == [tuner.oracle.seed + execution for execution in range(3)]
    executions = calls["scores"]
    assert len({scores["val_loss"] for scores in executions}) > 1  # different seeds, different trainings
    trial = tuner.oracle.trials["0"]
    reported = {name: trial.metrics.get_last_value(name) for name in trial.metrics.metrics}
    for name in ("val_accuracy", "val_loss", "test_accuracy"):
        values = [scores[name] for scores in executions]
        assert reported[name] == pytest.approx(statistics.mean(values))
        assert reported[f"{name}_std"] == pytest.approx(statistics.stdev(values))
    kept = int(np.argmin([scores["val_loss"] for scores in executions]))
    assert reported["executions"] == 3 and reported["kept_execution"] == kept
    # The checkpoint (what export loads) holds the kept execution's weights.
    val_ds = make_dataset(splits["validation"], 8)
    loss, _ = tuner.load_model(trial).evaluate(val_ds, verbose=0)
    assert loss == pytest.approx(executions[kept]["val_loss"], rel=1e-4)

    client = mlflow.MlflowClient(uri)
    (child,) = [run for run in client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
                if "mlflow.parentRunId" in run.data.tags]
    metrics = child.data.metrics
    assert metrics["best_val_accuracy"] == pytest.approx(reported["val_accuracy"])
    assert metrics["best_val_accuracy_std"] == pytest.approx(reported["val_accuracy_std"])
    assert metrics["test_accuracy_std"] == pytest.approx(reported["test_accuracy_std"])
    assert metrics["executions"] == 3 and metrics["kept_execution"] == kept
    # Each execution's epochs have their own steps: 1 epoch each, at steps 0, 1, 2.
    assert [m.step for m in client.get_metric_history(child.info.run_id, "val_accuracy")] == [0, 1, 2]
    assert re.search(r"done in [\d:]+: val_acc [\d.]+ ± [\d.]+ \(3 runs\), test_acc [\d.]+ ± [\d.]+$",
                     stream.getvalue(), re.MULTILINE)


def test_hyperband_executions_all_continue_from_the_same_weights(splits, tmp_path, monkeypatch):
    calls = _record_calls(monkeypatch)
    space = smoke_space(name="hyperband", max_epochs=2, factor=2, hyperband_iterations=1, executions_per_trial=2)
    tuner = search_run.run_search(space, splits, tmp_path)
    # What test_search.py checks of every tuner, here on the one Hyperband search that continues trials.
    assert type(tuner) is tuners.TUNERS["hyperband"]
    rows = summary.summary_rows(tuner)
    assert tuner.planned_trials() == len(rows)  # what the progress line announces as the total
    assert {row["status"] for row in rows} == {"COMPLETED"}  # the continued trials too
    fits = calls["fits"]
    assert len(fits) == 2 * len(tuner.oracle.trials)
    pairs = [(fits[index], fits[index + 1]) for index in range(0, len(fits), 2)]
    continued = [(first, second) for first, second in pairs if first[0] > 0]
    assert continued  # hyperband continued at least one trial from an earlier one's weights
    for (_, first), (_, second) in continued:
        assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
