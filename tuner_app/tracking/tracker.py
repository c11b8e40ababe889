"""MLflow tracking of a search: one parent run per search (kept across resumes), one nested child run per
trial, written through the search's observer hooks."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from mlflow.entities import Metric, Param, RunTag

from tuner_app.errors import TunerAppError
from tuner_app.files import atomic_path
from tuner_app.model.architecture import configured
from tuner_app.model.space import search_space
from tuner_app.redaction import redact
from tuner_app.search import distribution, observers, summary
from tuner_app.search import record as search_record
from tuner_app.tracking import params as run_params
from tuner_app.tracking.architecture_figure import architecture_figure
from tuner_app.tracking.datasets import corpus_inputs
from tuner_app.tracking.store import (
    PARENT_TAG,
    check_reachable,
    children_where,
    client_for,
    default_tracking_uri,
    find_experiment,
    search_runs,
)
from tuner_app.tracking.system_metrics import TrialMonitor
from tuner_app.tracking.trial_metrics import final_values, rejected_sizes, score_tags

PROJECT_TAG = "tuner_app.project_dir"  # marks a parent run: the tuner directory of its search
REASON_TAG = "tuner_app.reason"
OUTCOME_TAG = "tuner_app.outcome"  # COMPLETED | FAILED | KILLED (TrialOutcome), or REJECTED (configuration_rejected)
CHANGED_TAG = "tuner_app.changed_on_resume"  # params are immutable in MLflow: changes land here
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
BACKFILL_TAG = "tuner_app.backfilled"  # a trial logged by a later process, from its trial.json: no epoch curves
RUN_STATUS = {"COMPLETED": "FINISHED", "REJECTED": "KILLED", "FAILED": "FAILED", "KILLED": "KILLED"}
MAX_PARAMS_PER_BATCH = 100  # MLflow's log_batch limit
MAX_TAG_CHARS = 5000
PARENT_FILE = "tuner_app_mlflow.json"  # in a distributed search's shared project directory: the chief's parent run


def _metrics(values: Mapping[str, float], step: int = 0) -> list[Metric]:
    now = int(time.time() * 1000)
    return [Metric(name, float(value), now, step) for name, value in values.items()]


def _log_params(client, run_id: str, params: Mapping[str, str]) -> None:
    items = [Param(key, redact(value)) for key, value in params.items()]  # a value may quote a store URI
    for start in range(0, len(items), MAX_PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[start:start + MAX_PARAMS_PER_BATCH])


def _end_run(client, run_id: str, status: str, outcome: str, reason: str, metrics: Iterable[Metric] = (),
             extra_tags: Mapping[str, str] | None = None) -> None:
    tags = [RunTag(OUTCOME_TAG, outcome)] + ([RunTag(REASON_TAG, redact(reason)[:MAX_TAG_CHARS])] if reason else [])
    tags += [RunTag(key, value) for key, value in (extra_tags or {}).items()]
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
    """Logs a search to MLflow: a parent run per search (kept across resumes), a nested run per trial.

    In a distributed search (search/distribution.py) the chief makes the parent run, logs rejected
    configurations and ends it; each worker logs the trials it trains under it. A store that stops answering
    pauses the tracker (observers.ObserverList); `reconnect` then logs what it missed.
    """

    def __init__(self, tracking_uri: str | None, experiment: str, space_path: str | Path,
                 parent_params: Mapping[str, Any] | None = None):
        self.tracking_uri = tracking_uri or default_tracking_uri()
        self.experiment = experiment
        self.space_path = Path(space_path)
        self.parent_params = {key: value for key, value in (parent_params or {}).items() if value is not None}
        self.parent_run_id: str | None = None
        self._open: dict[str, str] = {}  # trial id -> its RUNNING child run
        self._monitors: dict[str, TrialMonitor] = {}  # trial id -> its system metrics sampler
        self._inputs: list = []  # the corpus's splits as MLflow dataset inputs of every trial run
        self._client = self._experiment_id = None
        self.role = "solo"

    def check_reachable(self) -> None:
        """A TunerAppError now, before any training, if the store does not answer."""
        check_reachable(self.tracking_uri)

    def search_begin(self, tuner) -> None:
        self.role = distribution.role()
        self._client = client_for(self.tracking_uri)
        if self.role == "worker":
            return self._join_parent(tuner)
        self._experiment_id = find_experiment(self._client, self.tracking_uri, self.experiment, create=True)
        project_dir = str(Path(tuner.project_dir).resolve())
        self._inputs = corpus_inputs(search_record.read_search_record(tuner.project_dir).get("data", {}))
        earlier = [run for run in search_runs(self._client, self._experiment_id, f"tags.`{PROJECT_TAG}` LIKE '%'",
                                          newest_first=True) if run.data.tags.get(PROJECT_TAG) == project_dir]
        reused = earlier[0] if earlier and tuner.oracle.trials else None  # a resume stays one parent
        for parent in earlier:
            if self.role == "solo" or parent is not reused:  # a restarted chief's workers may still be training
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
        if self._inputs and not reused:
            # The datasets exist before any trial run links them: two workers creating the same one at once
            # break MLflow's unique key (seen with SQLite behind `tuner-app server`).
            self._client.log_inputs(self.parent_run_id, datasets=self._inputs)
        self._log_missed_trials(tuner)
        if self.role == "chief":
            with atomic_path(Path(tuner.project_dir) / PARENT_FILE) as temporary:
                temporary.write_text(json.dumps({"experiment_id": self._experiment_id,
                                                 "parent_run_id": self.parent_run_id}), encoding="utf-8")

    def _join_parent(self, tuner) -> None:
        """A worker: log under the parent run its chief made (the chief has answered, so it exists)."""
        path = Path(tuner.project_dir) / PARENT_FILE
        try:
            joined = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise TunerAppError(f"{path}: no MLflow parent run of the chief ({err}); is the chief logging to "
                                "MLflow (--tracking-uri)?") from None
        self._experiment_id, self.parent_run_id = joined["experiment_id"], joined["parent_run_id"]
        self._inputs = corpus_inputs(search_record.read_search_record(tuner.project_dir).get("data", {}))

    def reconnect(self, tuner) -> None:
        """The store answers again: close the runs left open, log the trials finished meanwhile."""
        check_reachable(self.tracking_uri)
        for monitor in self._monitors.values():
            monitor.finish()
        self._monitors.clear()
        if self.parent_run_id is None:  # it was down when the search began
            return self.search_begin(tuner)
        for run_id in self._open.values():
            _end_run(self._client, run_id, "KILLED", "KILLED", "the tracking store did not answer; the trial's "
                     "results are in a backfilled run")
        self._open.clear()
        self._log_missed_trials(tuner, set(tuner.trained) if self.role == "worker" else None)

    def _log_missed_trials(self, tuner, among: set[str] | None = None) -> None:
        """Log every COMPLETED trial (of `among`, if given) with no FINISHED run yet (trained while the store was
        down, or killed before its run ended) from what keras-tuner kept on disk: hyperparameters, final scores."""
        logged = {run.data.tags.get("trial_id") for run in self._children(self.parent_run_id)
                  if run.info.status == "FINISHED"}
        for trial in tuner.oracle.trials.values():
            wanted = among is None or trial.trial_id in among
            if wanted and trial.status == "COMPLETED" and trial.trial_id not in logged:
                run_id = self._create_child(tuner, trial, {BACKFILL_TAG: "true"})
                scores = {name: search_record.metric(trial, name) for name in trial.metrics.metrics}
                _end_run(self._client, run_id, "FINISHED", "COMPLETED", "", _metrics(final_values(scores)),
                         score_tags(scores))

    def _children(self, parent_run_id: str, trial_id: str | None = None) -> list:
        where = children_where(parent_run_id) + (f" and tags.trial_id = '{trial_id}'" if trial_id else "")
        return search_runs(self._client, self._experiment_id, where)

    def _log_parent(self, tuner, logged: Mapping[str, str]) -> None:
        record = search_record.read_search_record(tuner.project_dir)
        params = {**run_params.flatten(search_space.resolved(tuner.space)),
                  **run_params.data_params(record.get("data", {})),
                  "tuner_class": type(tuner).__name__, "project_name": tuner.project_name,
                  **{key: run_params.param_value(value) for key, value in self.parent_params.items()}}
        params.update({f"max_{name}": str(limit) for name, limit in tuner.budget.limits().items()})
        _log_params(self._client, self.parent_run_id, {k: v for k, v in params.items() if k not in logged})
        changed = {key: value for key, value in params.items() if logged.get(key, value) != value}
        if changed:
            self._client.set_tag(self.parent_run_id, CHANGED_TAG, redact(json.dumps(changed))[:MAX_TAG_CHARS])
        if not logged:
            self._client.log_artifact(self.parent_run_id, str(self.space_path))
            self._client.log_dict(self.parent_run_id, record.get("data", {}), "data.json")

    def trial_begin(self, tuner, trial) -> None:
        if self.role == "chief":
            return  # its workers log the trials they train
        earlier = self._children(self.parent_run_id, trial.trial_id)
        if any(run.info.status == "FINISHED" for run in earlier):
            return  # logged by an earlier process of this search; keras-tuner never re-runs a finished trial
        _kill_running(self._client, earlier)  # keras-tuner retries an interrupted trial under the same id
        self._open[trial.trial_id] = self._create_child(tuner, trial)
        self._monitors[trial.trial_id] = TrialMonitor(self._open[trial.trial_id], self.tracking_uri)
        self._monitors[trial.trial_id].start()

    def _create_child(self, tuner, trial, extra_tags: Mapping[str, str] | None = None) -> str:
        """A RUNNING nested run for the trial: its tags, and its hyperparameters as params."""
        values = _space_values(tuner, trial)
        tags = {PARENT_TAG: self.parent_run_id, "trial_id": trial.trial_id,
                "model": configured.model_name(tuner.space, values),
                "trial_dir": str(Path(tuner.get_trial_dir(trial.trial_id)).resolve()), **(extra_tags or {})}
        run_id = self._client.create_run(self._experiment_id, run_name=f"trial_{trial.trial_id}", tags=tags).info.run_id
        hyperparameters = {name: run_params.param_value(value) for name, value in trial.hyperparameters.values.items()}
        _log_params(self._client, run_id, hyperparameters)
        if self._inputs:
            self._client.log_inputs(run_id, datasets=self._inputs)
        return run_id

    def epoch_end(self, tuner, trial, epoch: int, logs: Mapping[str, float]) -> None:
        run_id = self._open.get(trial.trial_id)
        if run_id:
            values = {name: logs[name] for name in EPOCH_METRICS if name in logs}
            # With executions_per_trial > 1, execution k logs from step k x epochs: the executions' curves follow
            # one another instead of overwriting each other's steps.
            epochs = trial.hyperparameters.values.get("tuner/epochs", tuner.space.training["epochs"])
            step = epoch + getattr(tuner, "execution", 0) * epochs
            self._client.log_batch(run_id, metrics=_metrics(values, step=step))

    def trial_end(self, tuner, trial, outcome: observers.TrialOutcome) -> None:
        run_id = self._open.get(trial.trial_id)  # stays open until ended: an interrupt here leaves it to search_end
        if run_id is None:
            return
        values = final_values(outcome.scores)
        self._monitors.pop(trial.trial_id).finish()
        if outcome.model is not None:
            self._client.log_text(run_id, _summary(outcome.model), "model_summary.txt")
            self._log_architecture(tuner, trial, run_id, outcome.model.output_shape[-1])
        _end_run(self._client, run_id, RUN_STATUS[outcome.status], outcome.status, outcome.reason, _metrics(values),
                 score_tags(outcome.scores))
        del self._open[trial.trial_id]

    def _log_architecture(self, tuner, trial, run_id: str, n_classes: int) -> None:
        values = _space_values(tuner, trial)
        walk = configured.walk(tuner.space, values, n_classes)
        title = f"{configured.model_name(tuner.space, values)}: {walk.params_total:,} params, {walk.macs:,} MACs"
        self._client.log_figure(run_id, architecture_figure(walk, title), "architecture.png")

    def configuration_rejected(self, tuner, values: Mapping[str, Any], reason: str, params: int | None) -> None:
        """A nested run, ended KILLED at once, for a configuration the oracle turned away: its hyperparameters,
        the sizes the budget judged, the reason. No trial_id tag: it never became a trial."""
        tags = {PARENT_TAG: self.parent_run_id, "model": tuner.space.model}
        run_id = self._client.create_run(self._experiment_id, run_name="rejected", tags=tags).info.run_id
        _log_params(self._client, run_id, {name: run_params.param_value(value) for name, value in values.items()})
        _end_run(self._client, run_id, RUN_STATUS["REJECTED"], "REJECTED", reason,
                 _metrics(rejected_sizes(tuner, values)))

    def trial_lost(self, tuner, trial, reason: str, retried: bool) -> None:
        """The chief gave a trial up: its worker's run ends KILLED (a retry logs a run of its own)."""
        _kill_running(self._client, self._children(self.parent_run_id, trial.trial_id), reason)

    def search_end(self, tuner, status: str) -> None:
        if self.parent_run_id is None:
            return  # the search failed before it began
        for monitor in self._monitors.values():
            monitor.finish()
        self._monitors.clear()
        for run_id in self._open.values():
            _end_run(self._client, run_id, "KILLED", "KILLED", f"search {status.lower()}")
        self._open.clear()
        if self.role == "worker":
            return  # the parent run is the chief's
        if self.role == "chief" and status == "FINISHED":  # every worker is done: a RUNNING run belongs to none
            _kill_running(self._client, self._children(self.parent_run_id), "its worker never ended it")
        reason = {"KILLED": "interrupted", "FAILED": "the search failed"}.get(status, "")
        if not reason and REASON_TAG in self._client.get_run(self.parent_run_id).data.tags:
            self._client.delete_tag(self.parent_run_id, REASON_TAG)  # a resumed search: its earlier ending's
        # The headline makes the search's collapsed row in the UI's runs table say something.
        _end_run(self._client, self.parent_run_id, status, status, reason, _metrics(summary.headline(tuner)))


def _space_values(tuner, trial) -> dict[str, Any]:
    """The trial's values of the space's hyperparameters (not keras-tuner's own `tuner/...` bookkeeping)."""
    return {name: value for name, value in trial.hyperparameters.values.items() if name in tuner.space.hyperparameters}
