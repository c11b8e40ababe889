"""What a search leaves beside its trials, read back: the search record, and a trial's metrics."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from tuner_app.errors import TunerAppError
from tuner_app.model.spaces import resolved

REJECTED = "rejected"  # prefix of a rejected trial's message; the oracle stores it with the trial
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


def metric(trial, name: str) -> float | None:
    """The last value of a trial's metric, None if it never reported one."""
    if not trial.metrics.exists(name):
        return None
    return trial.metrics.get_last_value(name)
