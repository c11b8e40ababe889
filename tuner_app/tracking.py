"""MLflow tracking: one parent run per search, one nested child run per trial, and the read-back that the
Pareto analysis and export use. The only module that imports mlflow.

The default store is embedded (SQLite at ./mlruns/mlflow.db, artifacts under ./mlruns/artifacts), so a
search needs no server; a tracking URI (or MLFLOW_TRACKING_URI) points at a server or a database instead.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from tuner_app import observers, results, run_params, spaces
from tuner_app.errors import TunerAppError
from tuner_app.hypermodel import InfeasibleConfig

STORE_DIR = "mlruns"
PROJECT_TAG = "tuner_app.project_dir"  # marks a parent run: the tuner directory of its search
REASON_TAG = "tuner_app.reason"
OUTCOME_TAG = "tuner_app.outcome"  # COMPLETED | REJECTED | FAILED | KILLED, as observers.TrialOutcome says
CHANGED_TAG = "tuner_app.changed_on_resume"  # params are immutable in MLflow: changes land here
PARENT_TAG = "mlflow.parentRunId"  # how MLflow nests runs
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
SIZE_METRICS = ("params_total", "params_trainable", "params_conv", "params_fc", "macs")
# child metric name -> TrialOutcome.scores key; val scores are those of the kept weights.
FINAL_METRICS = {"best_val_accuracy": "val_accuracy", "best_val_loss": "val_loss", "test_accuracy": "test_accuracy",
                 **{name: name for name in (*SIZE_METRICS, "model_bytes", "train_seconds", "latency_ms")}}
RUN_STATUS = {"COMPLETED": "FINISHED", "REJECTED": "KILLED", "FAILED": "FAILED", "KILLED": "KILLED"}
MAX_PARAMS_PER_BATCH = 100  # MLflow's log_batch limit
MAX_TAG_CHARS = 5000


def default_tracking_uri() -> str:
    """The embedded store, ./mlruns/mlflow.db, as an absolute SQLite URI (a UI started elsewhere finds it)."""
    return f"sqlite:///{Path.cwd() / STORE_DIR / 'mlflow.db'}"


def artifact_root(tracking_uri: str | None) -> str | None:
    """Where new experiments keep artifacts: beside a SQLite store; the server's own choice otherwise."""
    path = sqlite_path(tracking_uri or default_tracking_uri())
    return (path.parent / "artifacts").as_uri() if path else None


def sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?")[0]).resolve()


@functools.lru_cache(maxsize=None)
def _client(uri: str) -> mlflow.MlflowClient:
    # MLflow and alembic report schema set-up at INFO, which would bury the search's progress.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    path = sqlite_path(uri)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _store(tracking_uri: str | None) -> tuple[str, mlflow.MlflowClient]:
    uri = tracking_uri or default_tracking_uri()
    return uri, _client(uri)


def _experiment_id(client, uri: str, name: str, create: bool) -> str:
    try:
        experiment = client.get_experiment_by_name(name)
        if experiment is None and create:
            return client.create_experiment(name, artifact_location=artifact_root(uri))
    except MlflowException as err:
        raise TunerAppError(f"MLflow store {uri}: {err.message}") from None
    if experiment is None:
        raise TunerAppError(f"MLflow experiment {name!r} not found in {uri}")
    if experiment.lifecycle_stage == "deleted":
        raise TunerAppError(f"MLflow experiment {name!r} in {uri} is deleted; restore it or use another --experiment")
    return experiment.experiment_id


def _search(client, experiment_id: str, where: str, newest_first: bool = False) -> list:
    """Every run matching `where`, page by page, in start order."""
    order = [f"attributes.start_time {'DESC' if newest_first else 'ASC'}"]
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], where, max_results=1000, order_by=order, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _children_where(parent_run_id: str) -> str:
    if not parent_run_id.isalnum():  # run ids are hex; anything else would break the filter's quoting
        raise TunerAppError(f"{parent_run_id!r} is not an MLflow run id")
    return f"tags.{PARENT_TAG} = '{parent_run_id}'"


def _metrics(values: Mapping[str, float], step: int = 0) -> list[Metric]:
    now = int(time.time() * 1000)
    return [Metric(name, float(value), now, step) for name, value in values.items()]


def _log_params(client, run_id: str, params: Mapping[str, str]) -> None:
    items = [Param(key, value) for key, value in params.items()]
    for start in range(0, len(items), MAX_PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[start:start + MAX_PARAMS_PER_BATCH])


def _end_run(client, run_id: str, status: str, outcome: str, reason: str, metrics: Iterable[Metric] = ()) -> None:
    tags = [RunTag(OUTCOME_TAG, outcome)] + ([RunTag(REASON_TAG, reason[:MAX_TAG_CHARS])] if reason else [])
    client.log_batch(run_id, metrics=list(metrics), tags=tags)
    client.set_terminated(run_id, status)


def _kill_running(client, runs: Iterable, reason: str = "interrupted") -> None:
    """Close runs a killed process left RUNNING, so none stays RUNNING forever."""
    for run in runs:
        if run.info.status in ("RUNNING", "SCHEDULED"):
            _end_run(client, run.info.run_id, "KILLED", "KILLED", reason)


def _summary(model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


class MLflowTracker(observers.SearchObserver):
    """Logs a search to MLflow: a parent run per search (kept across resumes), a nested run per trial."""

    def __init__(self, tracking_uri: str | None, experiment: str, space_path: str | Path,
                 parent_params: Mapping[str, Any] | None = None):
        self.tracking_uri = tracking_uri or default_tracking_uri()
        self.experiment = experiment
        self.space_path = Path(space_path)
        self.parent_params = {key: value for key, value in (parent_params or {}).items() if value is not None}
        self.parent_run_id: str | None = None
        self._open: dict[str, str] = {}  # trial id -> its RUNNING child run
        self._client = self._experiment_id = None

    def search_begin(self, tuner) -> None:
        self._client = _client(self.tracking_uri)
        self._experiment_id = _experiment_id(self._client, self.tracking_uri, self.experiment, create=True)
        project_dir = str(Path(tuner.project_dir).resolve())
        earlier = [run for run in _search(self._client, self._experiment_id, f"tags.`{PROJECT_TAG}` LIKE '%'",
                                          newest_first=True) if run.data.tags.get(PROJECT_TAG) == project_dir]
        reused = earlier[0] if earlier and tuner.oracle.trials else None  # a resume stays one parent
        for parent in earlier:
            _kill_running(self._client, self._children(parent.info.run_id))
            if parent is not reused:
                _kill_running(self._client, [parent])
        if reused:
            self.parent_run_id = reused.info.run_id
            self._client.update_run(self.parent_run_id, status="RUNNING")
        else:
            self.parent_run_id = self._client.create_run(self._experiment_id, run_name=tuner.project_name,
                                                         tags={PROJECT_TAG: project_dir}).info.run_id
        self._log_parent(tuner, reused.data.params if reused else {})

    def _children(self, parent_run_id: str, trial_id: str | None = None) -> list:
        where = _children_where(parent_run_id) + (f" and tags.trial_id = '{trial_id}'" if trial_id else "")
        return _search(self._client, self._experiment_id, where)

    def _log_parent(self, tuner, logged: Mapping[str, str]) -> None:
        record = results.read_search_record(tuner.project_dir)
        params = {**run_params.flatten(spaces.resolved(tuner.space)), **run_params.data_params(record.get("data", {})),
                  "tuner_class": type(tuner).__name__, "project_name": tuner.project_name,
                  **{key: run_params.param_value(value) for key, value in self.parent_params.items()}}
        if tuner.max_params is not None:
            params["max_params"] = str(tuner.max_params)
        _log_params(self._client, self.parent_run_id, {k: v for k, v in params.items() if k not in logged})
        changed = {key: value for key, value in params.items() if logged.get(key, value) != value}
        if changed:
            self._client.set_tag(self.parent_run_id, CHANGED_TAG, json.dumps(changed)[:MAX_TAG_CHARS])
        if not logged:
            self._client.log_artifact(self.parent_run_id, str(self.space_path))
            self._client.log_dict(self.parent_run_id, record.get("data", {}), "data.json")

    def trial_begin(self, tuner, trial) -> None:
        earlier = self._children(self.parent_run_id, trial.trial_id)
        if any(run.info.status == "FINISHED" for run in earlier):
            return  # logged by an earlier process of this search; keras-tuner never re-runs a finished trial
        _kill_running(self._client, earlier)  # keras-tuner retries an interrupted trial under the same id
        tags = {PARENT_TAG: self.parent_run_id, "trial_id": trial.trial_id, "model": tuner.space.model,
                "trial_dir": str(Path(tuner.get_trial_dir(trial.trial_id)).resolve())}
        run_id = self._client.create_run(self._experiment_id, run_name=f"trial_{trial.trial_id}", tags=tags).info.run_id
        hyperparameters = {name: run_params.param_value(value) for name, value in trial.hyperparameters.values.items()}
        _log_params(self._client, run_id, hyperparameters)
        self._open[trial.trial_id] = run_id

    def epoch_end(self, tuner, trial, epoch: int, logs: Mapping[str, float]) -> None:
        run_id = self._open.get(trial.trial_id)
        if run_id:
            values = {name: logs[name] for name in EPOCH_METRICS if name in logs}
            self._client.log_batch(run_id, metrics=_metrics(values, step=epoch))

    def trial_end(self, tuner, trial, outcome: observers.TrialOutcome) -> None:
        run_id = self._open.get(trial.trial_id)  # stays open until ended: an interrupt here leaves it to search_end
        if run_id is None:
            return
        values = {name: outcome.scores[key] for name, key in FINAL_METRICS.items() if key in outcome.scores}
        if outcome.status == "REJECTED":
            values = _rejected_sizes(tuner, trial.hyperparameters.values)
        if outcome.model is not None:
            self._client.log_text(run_id, _summary(outcome.model), "model_summary.txt")
        _end_run(self._client, run_id, RUN_STATUS[outcome.status], outcome.status, outcome.reason, _metrics(values))
        del self._open[trial.trial_id]

    def search_end(self, tuner, status: str) -> None:
        if self.parent_run_id is None:
            return  # the search failed before it began
        for run_id in self._open.values():
            _end_run(self._client, run_id, "KILLED", "KILLED", f"search {status.lower()}")
        self._open.clear()
        reason = {"KILLED": "interrupted", "FAILED": "the search failed"}.get(status, "")
        _end_run(self._client, self.parent_run_id, status, status, reason)


def _rejected_sizes(tuner, values: Mapping[str, Any]) -> dict[str, float]:
    # A rejected trial was never built, but its size is what the budget judged.
    try:
        sizes = tuner.sizes(values)
    except InfeasibleConfig:
        return {}
    return {name: sizes[name] for name in SIZE_METRICS if name in sizes}


def _row(run, specs: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    tags, params = run.data.tags, run.data.params
    names = [name for name in specs if name in params] + sorted(name for name in params if name not in specs)
    return {"run_id": run.info.run_id, "parent_run_id": tags.get(PARENT_TAG), "trial_id": tags.get("trial_id"),
            "status": run.info.status,
            "outcome": tags.get(OUTCOME_TAG) or ("COMPLETED" if run.info.status == "FINISHED" else run.info.status),
            "trial_dir": tags.get("trial_dir"), "model": tags.get("model"),
            "hyperparameters": {name: run_params.typed(params[name], specs.get(name)) for name in names},
            "metrics": dict(run.data.metrics)}


def _rows(client, runs: list) -> list[dict[str, Any]]:
    specs: dict[str, dict] = {}
    for parent_id in {run.data.tags.get(PARENT_TAG) for run in runs}:
        specs[parent_id] = run_params.hyperparameter_specs(client.get_run(parent_id).data.params) if parent_id else {}
    return [_row(run, specs[run.data.tags.get(PARENT_TAG)]) for run in runs]


def trial_runs(tracking_uri: str | None, experiment: str, parent_run_id: str | None = None) -> list[dict[str, Any]]:
    """One dict per trial run of the experiment (of one parent run if given), oldest first:
    run_id, parent_run_id, trial_id, status, outcome, trial_dir, model, hyperparameters (typed), metrics."""
    uri, client = _store(tracking_uri)
    experiment_id = _experiment_id(client, uri, experiment, create=False)
    where = _children_where(parent_run_id) if parent_run_id else "tags.trial_id LIKE '%'"
    runs = _search(client, experiment_id, where)
    if not runs:
        scope = f"parent run {parent_run_id}" if parent_run_id else f"MLflow experiment {experiment!r}"
        raise TunerAppError(f"{scope} in {uri} has no trial runs; run `tuner-app search` first")
    return _rows(client, runs)


def latest_parent(tracking_uri: str | None, experiment: str) -> str:
    """Run id of the experiment's most recently started search (parent run)."""
    uri, client = _store(tracking_uri)
    experiment_id = _experiment_id(client, uri, experiment, create=False)
    runs = client.search_runs([experiment_id], f"tags.`{PROJECT_TAG}` LIKE '%'", max_results=1,
                              order_by=["attributes.start_time DESC"])
    if not runs:
        raise TunerAppError(f"MLflow experiment {experiment!r} in {uri} has no search runs")
    return runs[0].info.run_id


def run_info(tracking_uri: str | None, run_id: str) -> dict[str, Any]:
    """One trial run, in the shape of a trial_runs row."""
    uri, client = _store(tracking_uri)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise TunerAppError(f"MLflow run {run_id!r} not found in {uri}") from None
    if "trial_id" not in run.data.tags:
        raise TunerAppError(f"MLflow run {run_id!r} in {uri} is not a trial run")
    return _rows(client, [run])[0]


def tag_pareto(tracking_uri: str | None, front_run_ids: Iterable[str], all_run_ids: Iterable[str]) -> None:
    """Tag every run pareto=true if it is on the front, pareto=false otherwise."""
    _, client = _store(tracking_uri)
    front = set(front_run_ids)
    for run_id in all_run_ids:
        client.set_tag(run_id, "pareto", "true" if run_id in front else "false")


def log_artifacts(tracking_uri: str | None, run_id: str, paths: Iterable[str | Path]) -> None:
    """Attach files (CSV, PNG, ...) to a run."""
    _, client = _store(tracking_uri)
    for path in paths:
        client.log_artifact(run_id, str(path))


def log_model_dir(tracking_uri: str | None, run_id: str, directory: str | Path,
                  artifact_path: str = "exported_model") -> str:
    """Attach a directory (a SavedModel) to a run; returns its runs:/ URI."""
    _, client = _store(tracking_uri)
    client.log_artifacts(run_id, str(directory), artifact_path)
    return f"runs:/{run_id}/{artifact_path}"


def register_model(tracking_uri: str | None, run_id: str, artifact_path: str, name: str) -> str:
    """Register a run's artifact directory as a new version of model `name`; returns the version."""
    _, client = _store(tracking_uri)
    try:
        client.create_registered_model(name)
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    return str(client.create_model_version(name, f"runs:/{run_id}/{artifact_path}", run_id=run_id).version)
