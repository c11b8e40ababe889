import json
from pathlib import Path

import mlflow
import pytest
import yaml
from click.testing import CliRunner
from conftest import smoke_space, tone_splits, two_word_corpus

from tuner_app.device.budget import Budget
from tuner_app.cli import cli
from tuner_app.errors import TunerAppError
from tuner_app.model.space import hyperparameters as hps
from tuner_app.model.space import search_space
from tuner_app.search import run as search_run, tuners
from tuner_app.tracking import mlflow_model
from tuner_app.tracking import runs as tracking_runs
from tuner_app.tracking.tracker import MLflowTracker

SMOKE = Path(__file__).resolve().parents[1] / "search_spaces" / "smoke.yaml"
EXPERIMENT = "test-exp"
FINAL_METRICS = {"best_val_accuracy", "best_val_loss", "test_accuracy", "params_total", "params_trainable",
                 "params_conv", "params_fc", "macs", "model_bytes", "train_seconds", "keras_latency_ms"}
DATA = {"path": "/corpus", "fingerprint": "abc123",
        "counts": {"zero": {"train": 2, "validation": 1, "test": 1}, "one": {"train": 3, "validation": 0, "test": 1}}}


@pytest.fixture(scope="module")
def splits():
    return tone_splits()


_space = smoke_space


def _uri(directory: Path) -> str:
    return f"sqlite:///{_store_file(directory)}"


def _store_file(directory: Path) -> Path:
    return directory / "mlruns" / "m.db"


def _search(splits, directory: Path, space=None, **options):
    return _search_and_tuner(splits, directory, space, **options)[0]


def _search_and_tuner(splits, directory: Path, space=None, **options):
    """(tracker, tuner) of a search logged to the test experiment."""
    tracker = MLflowTracker(_uri(directory), EXPERIMENT, SMOKE, {"tuner": "random", "seed": 0})
    tuner = search_run.run_search(space or _space(), splits, directory / "runs", observers=[tracker], data=DATA,
                              **options)
    return tracker, tuner


def _completed(tuner) -> list:
    return [trial for trial in tuner.oracle.trials.values() if trial.status == "COMPLETED"]


def _runs(directory: Path) -> tuple[list, list]:
    """(parents, children) of the test experiment."""
    client = mlflow.MlflowClient(_uri(directory))
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    children = [run for run in runs if "mlflow.parentRunId" in run.data.tags]
    return [run for run in runs if run not in children], children


@pytest.fixture(scope="module")
def smoke(splits, tmp_path_factory, new_store):
    directory = tmp_path_factory.mktemp("smoke")
    new_store(_store_file(directory))
    tracker = _search(splits, directory)
    return directory, tracker


def test_smoke_search_logs_one_parent_and_a_child_per_trial(smoke):
    directory, tracker = smoke
    parents, children = _runs(directory)
    assert len(parents) == 1 and len(children) == 2
    client = mlflow.MlflowClient(_uri(directory))
    yaml_names = set(yaml.safe_load(SMOKE.read_text())["hyperparameters"])
    smoke = search_space.load(SMOKE)
    for child in children:
        tags, params = child.data.tags, child.data.params
        assert child.info.status == "FINISHED" and tags["tuner_app.outcome"] == "COMPLETED"
        assert tags["mlflow.parentRunId"] == parents[0].info.run_id == tracker.parent_run_id
        assert Path(tags["trial_dir"]).is_dir() and Path(tags["trial_dir"]).name == f"trial_{tags['trial_id']}"
        assert tags["model"] == "cnn2d" and child.info.run_name == f"trial_{tags['trial_id']}"
        # Every active hyperparameter of the space: the YAML's, the recipe's defaults; fc_units_1 and dropout
        # only with an FC layer (fc_layers=0 leaves them out of the trial, so no alias is logged)
        active = {name for name in smoke.hyperparameters
                  if hps.is_active(smoke.hyperparameters, name, {"fc_layers": int(params["fc_layers"])})}
        assert set(params) == active and yaml_names - {"fc_units_1", "dropout"} <= active
        assert {"optimizer", "lr_schedule", "weight_decay", "label_smoothing"} <= set(params)
        assert params["head"] == "gap" and params["batch_norm"] == "false" and params["conv_layers"] in ("1", "2")
        assert FINAL_METRICS <= set(child.data.metrics)
        for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert [m.step for m in client.get_metric_history(child.info.run_id, name)] == [0]
        assert child.data.metrics["params_total"] in (184, 288, 1056, 1128)
        summary = Path(client.download_artifacts(child.info.run_id, "model_summary.txt", str(directory)))
        assert "Total params" in summary.read_text()


def test_parent_holds_space_tuner_and_data(smoke):
    directory, _ = smoke
    (parent,), _ = _runs(directory)
    params = parent.data.params
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["tuner_app.project_dir"] == str((directory / "runs" / "smoke-random").resolve())
    assert params["frontend.kind"] == "stft" and params["hyperparameters.conv_layers.max_value"] == "2"
    assert params["training.epochs"] == "1" and params["tuner_class"] == "RandomSearch" and params["tuner"] == "random"
    assert params["data.train.one"] == "3" and params["data.validation.total"] == "1"
    assert params["data.fingerprint"] == "abc123" and params["data.path"] == "/corpus"
    client = mlflow.MlflowClient(_uri(directory))
    assert {item.path for item in client.list_artifacts(parent.info.run_id)} == {"smoke.yaml", "data.json"}


def test_read_back_api(smoke):
    directory, tracker = smoke
    uri = _uri(directory)
    rows = tracking_runs.trial_runs(uri, EXPERIMENT)
    assert tracking_runs.latest_parent(uri, EXPERIMENT) == tracker.parent_run_id
    assert rows == tracking_runs.trial_runs(uri, EXPERIMENT, tracker.parent_run_id)
    for row in rows:  # the oracle's own values, read back with their Python types
        trial = json.loads((Path(row["trial_dir"]) / "trial.json").read_text())
        assert row["hyperparameters"] == trial["hyperparameters"]["values"]
        assert row["trial_id"] == trial["trial_id"]
    assert [row["outcome"] for row in rows] == ["COMPLETED", "COMPLETED"]
    assert tracking_runs.run_info(uri, rows[1]["run_id"]) == rows[1]
    tracking_runs.tag_pareto(uri, [rows[0]["run_id"]], [row["run_id"] for row in rows])
    tags = {run.info.run_id: run.data.tags["pareto"] for run in _runs(directory)[1]}
    assert tags == {rows[0]["run_id"]: "true", rows[1]["run_id"]: "false"}
    with pytest.raises(TunerAppError, match="experiment 'nope' not found"):
        tracking_runs.trial_runs(uri, "nope")
    with pytest.raises(TunerAppError, match="not found"):
        tracking_runs.run_info(uri, "0123abcd")


def test_artifacts_and_model_registry(smoke):
    directory, tracker = smoke
    uri = _uri(directory)
    model_dir = directory / "export"
    (model_dir / "variables").mkdir(parents=True)
    (model_dir / "saved_model.pb").write_bytes(b"pb")
    (model_dir / "variables" / "variables.index").write_bytes(b"index")
    (directory / "front.csv").write_text("a,b\n")
    run_id = tracking_runs.trial_runs(uri, EXPERIMENT)[0]["run_id"]
    tracking_runs.log_artifacts(uri, tracker.parent_run_id, [directory / "front.csv"])
    model_id = mlflow_model.log_logged_model(uri, run_id, model_dir)
    assert [mlflow_model.register(uri, model_id, "kws") for _ in range(2)] == ["1", "2"]
    client = mlflow.MlflowClient(uri)
    assert "front.csv" in {item.path for item in client.list_artifacts(tracker.parent_run_id)}
    assert [item.path for item in client.list_logged_model_artifacts(model_id, "variables")] == [
        "variables/variables.index"]
    metrics = {metric.key for metric in client.get_logged_model(model_id).metrics}
    assert "best_val_accuracy" in metrics and not [key for key in metrics if key.startswith("system/")]


def test_resume_keeps_one_parent_and_never_logs_a_trial_twice(splits, tmp_path, monkeypatch, new_store):
    new_store(_store_file(tmp_path))
    # Also test_search.py's resume test (the same three searches, untracked there before): a resume trains
    # only the new trial, --fresh starts over.
    calls = []
    original = tuners.TrialMixin.run_trial
    monkeypatch.setattr(tuners.TrialMixin, "run_trial",
                        lambda self, trial, *args, **kwargs: calls.append(trial.trial_id)
                        or original(self, trial, *args, **kwargs))
    first = _search(splits, tmp_path, _space(max_trials=1))
    second, tuner = _search_and_tuner(splits, tmp_path, _space(max_trials=2))
    assert len(calls) == 2 and len(set(calls)) == 2
    assert len(_completed(tuner)) == 2
    parents, children = _runs(tmp_path)
    assert [parent.info.run_id for parent in parents] == [first.parent_run_id] == [second.parent_run_id]
    assert sorted(child.data.tags["trial_id"] for child in children) == ["0", "1"]
    assert json.loads(parents[0].data.tags["tuner_app.changed_on_resume"]) == {"tuner.max_trials": "2"}
    _, fresh = _search_and_tuner(splits, tmp_path, _space(max_trials=1), fresh=True)
    assert len(_completed(fresh)) == 1
    parents, children = _runs(tmp_path)
    assert len(parents) == 2 and len(children) == 3  # --fresh starts a new parent


def test_rejected_trials_end_killed_with_reason_and_size(splits, tmp_path, new_store):
    new_store(_store_file(tmp_path))
    _search(splits, tmp_path, _space(max_trials=1), budget=Budget(300), seed=2)
    _, children = _runs(tmp_path)
    rejected = [child for child in children if child.data.tags["tuner_app.outcome"] == "REJECTED"]
    assert len(rejected) >= 1 and len(children) == 1 + len(rejected)
    for child in rejected:
        assert child.info.status == "KILLED"
        assert child.data.tags["tuner_app.reason"] == f"{int(child.data.metrics['params_total'])} params > budget 300"


def test_a_failing_trial_ends_failed_with_its_reason(splits, tmp_path, monkeypatch, new_store):
    new_store(_store_file(tmp_path))
    def fail(self, epoch, logs=None):
        raise RuntimeError("boom in fit")

    monkeypatch.setattr(tuners._EpochRelay, "on_epoch_end", fail)
    with pytest.raises(RuntimeError, match="consecutive failures"):  # keras-tuner gives up: the search fails
        _search(splits, tmp_path, _space(max_trials=2, max_consecutive_failed_trials=1))
    (parent,), (child,) = _runs(tmp_path)
    assert child.info.status == "FAILED" and child.data.tags["tuner_app.reason"] == "RuntimeError: boom in fit"
    assert parent.info.status == "FAILED" and parent.data.tags["tuner_app.reason"] == "the search failed"


def test_an_interrupt_kills_trial_and_search_and_a_resume_retries_it(splits, tmp_path, monkeypatch, new_store):
    new_store(_store_file(tmp_path))
    def interrupt(self, epoch, logs=None):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(tuners._EpochRelay, "on_epoch_end", interrupt)
        with pytest.raises(KeyboardInterrupt):
            _search(splits, tmp_path, _space(max_trials=1))
    (parent,), (child,) = _runs(tmp_path)
    assert (parent.info.status, child.info.status) == ("KILLED", "KILLED")
    assert child.data.tags["tuner_app.reason"] == "interrupted"
    _search(splits, tmp_path, _space(max_trials=1))
    (parent,), children = _runs(tmp_path)
    assert parent.info.status == "FINISHED" and parent.data.tags["tuner_app.outcome"] == "FINISHED"
    assert "tuner_app.reason" not in parent.data.tags  # the first ending's "interrupted" no longer holds
    assert sorted((run.data.tags["trial_id"], run.info.status) for run in children) == [
        (child.data.tags["trial_id"], "FINISHED"), (child.data.tags["trial_id"], "KILLED")]  # retried, new child


def test_cli_search_logs_to_the_given_store(tmp_path, monkeypatch, new_store):
    monkeypatch.chdir(tmp_path)
    data = two_word_corpus(tmp_path / "data")
    uri = new_store(tmp_path / "m.db")
    space = tmp_path / "one.yaml"
    space.write_text(SMOKE.read_text().replace("max_trials: 2", "max_trials: 1"))
    result = CliRunner().invoke(cli, ["search", "--space", str(space), "--data", str(data), "--cache-dir",
                                      str(tmp_path / "cache"), "--runs-dir", str(tmp_path / "runs"),
                                      "--tracking-uri", uri, "--experiment", "cli-exp"])
    assert result.exit_code == 0, result.output
    rows = tracking_runs.trial_runs(uri, "cli-exp")
    assert [row["outcome"] for row in rows] == ["COMPLETED"]
    parent = mlflow.MlflowClient(uri).get_run(rows[0]["parent_run_id"])
    assert parent.data.params["data.train.zero"] == "4" and parent.data.params["data.test.total"] == "2"
    assert not (tmp_path / "mlruns").exists()  # nothing went to the default store
    # the split lists hold out single clips, so spk2-spk5 are also in train: not speaker-disjoint
    trial = mlflow.MlflowClient(uri).get_run(rows[0]["run_id"])
    profiles = [json.loads(item.dataset.profile) for item in trial.inputs.dataset_inputs]
    assert [(profile["speaker_disjoint"], profile["speakers"]) for profile in profiles] == [
        (False, 6), (False, 2), (False, 2)]
    assert parent.data.params["data.speaker_disjoint"] == "false" and rows[0]["speaker_disjoint"] is False
    assert "the split shares speakers" in result.output  # the Pareto table the search printed


def test_each_trial_run_has_the_corpus_splits_system_metrics_and_an_architecture_png(smoke):
    directory, _ = smoke
    _, children = _runs(directory)
    client = mlflow.MlflowClient(_uri(directory))
    digests = set()
    for child in children:
        inputs = child.inputs.dataset_inputs
        contexts = [tag.value for item in inputs for tag in item.tags if tag.key == "mlflow.data.context"]
        assert contexts == ["training", "validation", "testing"]
        assert [item.dataset.name for item in inputs] == ["corpus/train", "corpus/validation", "corpus/test"]
        profiles = [json.loads(item.dataset.profile) for item in inputs]
        assert [profile["clips"] for profile in profiles] == [5, 1, 2]  # DATA's counts per split
        assert {profile["fingerprint"] for profile in profiles} == {"abc123"}
        digests.add(tuple(item.dataset.digest for item in inputs))
        assert any(name.startswith("system/cpu_utilization") for name in child.data.metrics)
        assert any(name.startswith("system/system_memory_usage") for name in child.data.metrics)
        assert "architecture.png" in {item.path for item in client.list_artifacts(child.info.run_id)}
    assert len(digests) == 1 and len(set(next(iter(digests)))) == 3  # one corpus, a dataset per split


def test_the_parent_run_carries_the_searchs_headline(smoke):
    directory, _ = smoke
    (parent,), children = _runs(directory)
    metrics = parent.data.metrics
    assert metrics["trials_completed"] == 2 and metrics["trials_rejected"] == 0
    assert metrics["best_val_accuracy"] == max(child.data.metrics["best_val_accuracy"] for child in children)
    assert metrics["knee_params_total"] in {child.data.metrics["params_total"] for child in children}
    assert metrics["hypervolume"] > 0
