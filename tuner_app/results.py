"""What a search leaves behind, read back: the search record beside the trials, and one row per trial."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from tuner_app.errors import TunerAppError
from tuner_app.hypermodel import InfeasibleConfig, count_params
from tuner_app.spaces import resolved

REJECTED = "rejected"  # prefix of a rejected trial's message; the oracle stores it with the trial
TRIAL_METRICS = ("val_accuracy", "val_loss", "test_accuracy", "params")
SEARCH_RECORD = "tuner_app_search.json"  # beside the trials: what export needs to rebuild a trial's model


def write_search_record(tuner, class_names: Sequence[str], data: Mapping[str, Any]) -> Path:
    """Save what rebuilding a trial's model needs (resolved space, class names) beside the trials."""
    record = {"space_file": tuner.space.source, "space": resolved(tuner.space), "tuner": type(tuner).__name__,
              "class_names": list(class_names), "data": dict(data)}
    path = Path(tuner.project_dir) / SEARCH_RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record, indent=2), encoding="utf-8")
    os.replace(temporary, path)
    return path


def read_search_record(project_dir: str | os.PathLike) -> dict[str, Any]:
    """The record write_search_record left in a search's project directory."""
    path = Path(project_dir) / SEARCH_RECORD
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise TunerAppError(f"{path}: cannot read the search record ({err})") from None


def rejected_trials(oracle) -> list:
    """Trials the size budget (or infeasibility) turned away without training."""
    return [trial for trial in oracle.trials.values()
            if trial.status == "STOPPED" and str(trial.message or "").startswith(REJECTED)]


def summary_rows(tuner) -> list[dict[str, Any]]:
    """One row per trial, by trial id: trial_id, status, hyperparameters, params, val/test scores."""
    rows = []
    for trial in sorted(tuner.oracle.trials.values(), key=lambda trial: int(trial.trial_id)):
        rejected = trial.status == "STOPPED" and str(trial.message or "").startswith(REJECTED)
        row = {"trial_id": trial.trial_id, "status": "REJECTED" if rejected else trial.status,
               "hyperparameters": dict(trial.hyperparameters.values)}
        for name in TRIAL_METRICS:
            row[name] = metric(trial, name)
        row["params"] = int(row["params"]) if row["params"] is not None else _params(tuner, row)
        rows.append(row)
    return rows


def _params(tuner, row: Mapping[str, Any]) -> int | None:
    # Rejected trials report no metrics; their size is still worth showing next to the budget.
    values = {name: row["hyperparameters"].get(name) for name in tuner.space.hyperparameters}
    try:
        return count_params(tuner.space, values, tuner.hypermodel.n_classes)["params_total"]
    except (InfeasibleConfig, KeyError, TypeError):
        return None


def metric(trial, name: str) -> float | None:
    """The last value of a trial's metric, None if it never reported one."""
    if not trial.metrics.exists(name):
        return None
    return trial.metrics.get_last_value(name)
