"""What a search leaves beside its trials, read back: the search record, and a trial's metrics."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from tuner_app.errors import TunerAppError
from tuner_app.files import atomic_path
from tuner_app.model.space.search_space import accuracy_metric, resolved
from tuner_app.search.checkpoints import runs_dir_write
from tuner_app.search.fingerprint import digest
from tuner_app.search.pareto_geometry import Point, front_points, hypervolume

SEARCH_RECORD = "tuner_app_search.json"  # beside the trials: what export needs to rebuild a trial's model


def write_search_record(tuner, class_names: Sequence[str], data: Mapping[str, Any],
                        identity: Mapping[str, Any] | None = None) -> Path:
    """Save what rebuilding a trial's model needs (resolved space, class names) beside the trials, and what a
    resume must not change (`identity`, search/fingerprint.py) with its fingerprint."""
    record = {"space_file": tuner.space.source, "space": resolved(tuner.space), "tuner": type(tuner).__name__,
              "class_names": list(class_names), "data": dict(data)}
    if identity is not None:
        record.update(fingerprint=digest(identity), identity=dict(identity))
    path = Path(tuner.project_dir) / SEARCH_RECORD
    # two searches in one project directory may write it at once
    with runs_dir_write(path), atomic_path(path) as temporary:
        temporary.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return path


def read_search_record(project_dir: str | os.PathLike) -> dict[str, Any]:
    """The record write_search_record left in a search's project directory."""
    path = Path(project_dir) / SEARCH_RECORD
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise TunerAppError(f"{path}: cannot read the search record ({err})") from None


def rejected_trials(oracle) -> list[dict[str, Any]]:
    """The configurations the oracle turned away as over the size budget or infeasible, never trained: dicts
    of hyperparameters, params (None if infeasible), reason and before_trial (how many trials existed then).
    Empty for an oracle that keeps none (keras-tuner's OracleClient in a worker)."""
    return list(getattr(oracle, "rejections", ()))


def metric(trial, name: str) -> float | None:
    """The last value of a trial's metric, None if it never reported one."""
    if not trial.metrics.exists(name):
        return None
    return trial.metrics.get_last_value(name)


def trial_point(trial, size: str, accuracy_name: str = "val_accuracy") -> tuple[float, float] | None:
    """(size, validation accuracy: `accuracy_name`, float or int8) of a COMPLETED trial that reported both, else
    None. `params` stands in for params_total in projects from before that metric."""
    if trial.status != "COMPLETED":
        return None
    if size == "params_total" and not trial.metrics.exists(size):
        size = "params"
    accuracy, measured = metric(trial, accuracy_name), metric(trial, size)
    return None if accuracy is None or measured is None else (float(measured), float(accuracy))


def trial_points(oracle, size: str, accuracy_name: str = "val_accuracy") -> dict[str, tuple[float, float]]:
    """trial id -> (size, validation accuracy) of every trial trial_point gives a point for."""
    points = {trial.trial_id: trial_point(trial, size, accuracy_name) for trial in oracle.trials.values()}
    return {trial_id: point for trial_id, point in points.items() if point}


@dataclasses.dataclass(frozen=True)
class SearchFront:
    """The completed trials' (size, validation accuracy) on the space's size axis, their front (by size) and
    its hypervolume against the space's fixed reference point: what progress and the headline report."""

    size: str
    points: list[Point]
    front: list[Point]
    hypervolume: float


def search_front(tuner) -> SearchFront:
    size = tuner.space.objective["size"]
    points = list(trial_points(tuner.oracle, size, accuracy_metric(tuner.space)).values())
    return SearchFront(size, points, front_points(points),
                       hypervolume(points, tuple(tuner.space.objective["hv_reference"])))
