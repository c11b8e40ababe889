"""What a search leaves behind, read back: the search record beside the trials, and one row per trial."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from tuner_app.errors import TunerAppError
from tuner_app.hypermodel import InfeasibleConfig
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
    try:
        return tuner.sizes(row["hyperparameters"])["params"]
    except (InfeasibleConfig, KeyError, TypeError):
        return None


def metric(trial, name: str) -> float | None:
    """The last value of a trial's metric, None if it never reported one."""
    if not trial.metrics.exists(name):
        return None
    return trial.metrics.get_last_value(name)


def _varying(rows: list[dict]) -> list[str]:
    """Hyperparameter names whose value differs between configurations: the table's columns."""
    names = list(rows[0]["hyperparameters"]) if rows else []
    return [n for n in names if len({repr(r["hyperparameters"][n]) for r in rows}) > 1] or names[:3]


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_dry_run(rows: list[dict], max_params: int | None) -> str:
    """The dry run as a table: varying hyperparameters, params (or why infeasible), budget."""
    columns = _varying(rows)
    lines = ["  ".join(f"{name:>14}" for name in columns) + f"  {'params':>12}"]
    for row in rows:
        cells = "  ".join(f"{_cell(row['hyperparameters'][name]):>14}" for name in columns)
        size = f"{row['params']:>12,}" if row["params"] is not None else f"  infeasible: {row['infeasible']}"
        lines.append(f"{cells}  {size}{'  over budget' if row.get('over_budget') else ''}")
    feasible = [row for row in rows if row["params"] is not None]
    summary = f"{len(rows)} configurations, {len(feasible)} feasible"
    if max_params is not None:
        fitting = sum(1 for row in feasible if not row["over_budget"])
        summary += f", {fitting or 'none'} within --max-params {max_params:,}"
    return "\n".join([*lines, summary])


def format_trials(rows: list[dict]) -> str:
    """The search's summary table: one line per trial with its varying hyperparameters and scores."""
    columns = _varying(rows)
    lines = ["  ".join(f"{name:>14}" for name in ["trial", "status", *columns, "params", "val_acc", "test_acc"])]
    for row in rows:
        scores = [f"{row[key]:.4f}" if row[key] is not None else "-" for key in ("val_accuracy", "test_accuracy")]
        cells = [row["trial_id"], row["status"], *(_cell(row["hyperparameters"].get(n)) for n in columns),
                 f"{row['params']:,}" if row["params"] is not None else "-", *scores]
        lines.append("  ".join(f"{str(cell):>14}" for cell in cells))
    return "\n".join(lines)
