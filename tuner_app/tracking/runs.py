"""Reading a search back from MLflow (trial rows for the Pareto analysis and export), and writing to its
runs afterwards: Pareto tags, artifacts and the hypervolume. (Exported models and the registry: mlflow_model.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from mlflow.exceptions import MlflowException

from tuner_app.errors import TunerAppError
from tuner_app.tracking import params as run_params
from tuner_app.tracking.store import (
    PARENT_TAG,
    children_where,
    find_experiment,
    search_runs,
    store,
)
from tuner_app.tracking.tracker import OUTCOME_TAG, PROJECT_TAG


def _row(run, parent: Mapping[str, Any]) -> dict[str, Any]:
    tags, params = run.data.tags, run.data.params
    specs = parent["specs"]
    names = [name for name in specs if name in params] + sorted(name for name in params if name not in specs)
    return {"run_id": run.info.run_id, "parent_run_id": tags.get(PARENT_TAG), "trial_id": tags.get("trial_id"),
            "status": run.info.status,
            "outcome": tags.get(OUTCOME_TAG) or ("COMPLETED" if run.info.status == "FINISHED" else run.info.status),
            "trial_dir": tags.get("trial_dir"), "model": tags.get("model"),
            "hyperparameters": {name: run_params.typed(params[name], specs.get(name)) for name in names},
            "metrics": dict(run.data.metrics), "speaker_disjoint": parent["speaker_disjoint"]}


def _parent(client, parent_id: str | None) -> dict[str, Any]:
    """What a trial row takes from its search's parent run: the resolved space's specs, and the split's speakers."""
    params = client.get_run(parent_id).data.params if parent_id else {}
    return {"specs": run_params.hyperparameter_specs(params), "speaker_disjoint": run_params.speaker_disjoint(params)}


def _rows(client, runs: list) -> list[dict[str, Any]]:
    parents = {parent_id: _parent(client, parent_id) for parent_id in {run.data.tags.get(PARENT_TAG) for run in runs}}
    return [_row(run, parents[run.data.tags.get(PARENT_TAG)]) for run in runs]


def trial_runs(tracking_uri: str | None, experiment: str, parent_run_id: str | None = None) -> list[dict[str, Any]]:
    """One dict per trial run of the experiment (of one parent run if given), oldest first:
    run_id, parent_run_id, trial_id, status, outcome, trial_dir, model, hyperparameters (typed), metrics,
    speaker_disjoint (its search's split; None if unrecorded)."""
    uri, client = store(tracking_uri)
    experiment_id = find_experiment(client, uri, experiment, create=False)
    where = children_where(parent_run_id) if parent_run_id else "tags.trial_id LIKE '%'"
    runs = search_runs(client, experiment_id, where)
    if not runs:
        scope = f"parent run {parent_run_id}" if parent_run_id else f"MLflow experiment {experiment!r}"
        raise TunerAppError(f"{scope} in {uri} has no trial runs; run `tuner-app search` first")
    return _rows(client, runs)


def latest_parent(tracking_uri: str | None, experiment: str) -> str:
    """Run id of the experiment's most recently started search (parent run)."""
    uri, client = store(tracking_uri)
    experiment_id = find_experiment(client, uri, experiment, create=False)
    runs = client.search_runs([experiment_id], f"tags.`{PROJECT_TAG}` LIKE '%'", max_results=1,
                              order_by=["attributes.start_time DESC"])
    if not runs:
        raise TunerAppError(f"MLflow experiment {experiment!r} in {uri} has no search runs")
    return runs[0].info.run_id


def run_info(tracking_uri: str | None, run_id: str) -> dict[str, Any]:
    """One trial run, in the shape of a trial_runs row."""
    uri, client = store(tracking_uri)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise TunerAppError(f"MLflow run {run_id!r} not found in {uri}") from None
    if "trial_id" not in run.data.tags:
        raise TunerAppError(f"MLflow run {run_id!r} in {uri} is not a trial run")
    return _rows(client, [run])[0]


def completed(row: Mapping[str, Any], purpose: str = "") -> Mapping[str, Any]:
    """A trial run's row (trial_runs, run_info) if its trial finished; a TunerAppError naming the run otherwise."""
    if row.get("outcome") != "COMPLETED":
        raise TunerAppError(f"run {row['run_id']}: trial {row['trial_id']} did not finish ({row.get('outcome')})"
                            + (f"; {purpose}" if purpose else ""))
    return row


def tag_pareto(tracking_uri: str | None, front_run_ids: Iterable[str], all_run_ids: Iterable[str]) -> None:
    """Tag every run pareto=true if it is on the front, pareto=false otherwise."""
    _, client = store(tracking_uri)
    front = set(front_run_ids)
    for run_id in all_run_ids:
        client.set_tag(run_id, "pareto", "true" if run_id in front else "false")


def record_hypervolume(tracking_uri: str | None, run_id: str, x: str, reference: tuple[float, float],
                       hypervolume: float, accuracy: str = "float") -> None:
    """Put a search's hypervolume on its parent run, with the reference point, size axis and accuracy (float or
    int8) it was measured against: tags, as a later analysis may use another reference (`hv_reference` reads as
    --hv-reference)."""
    _, client = store(tracking_uri)
    client.set_tag(run_id, "hv_reference", ",".join(f"{value:g}" for value in reference))
    client.set_tag(run_id, "hv_axis", x)
    client.set_tag(run_id, "hv_accuracy", accuracy)
    client.log_metric(run_id, "hypervolume", hypervolume)


def recorded_hv_reference(tracking_uri: str | None, run_id: str, x: str) -> tuple[float, float] | None:
    """The hypervolume reference point a search recorded on its parent run for size axis `x`: the last
    analysis's tags, else the space's objective.hv_reference param; None if neither is for `x`."""
    _, client = store(tracking_uri)
    data = client.get_run(run_id).data
    if data.tags.get("hv_axis") == x and "hv_reference" in data.tags:
        return tuple(float(value) for value in data.tags["hv_reference"].split(","))
    if data.params.get("objective.size") == x and "objective.hv_reference" in data.params:
        return tuple(float(value) for value in run_params.loads(data.params["objective.hv_reference"]))
    return None


def log_artifacts(tracking_uri: str | None, run_id: str, paths: Iterable[str | Path]) -> None:
    """Attach files (CSV, PNG, ...) to a run."""
    _, client = store(tracking_uri)
    for path in paths:
        client.log_artifact(run_id, str(path))
