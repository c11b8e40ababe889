"""The search's tables: one row per trial (summary), and the dry run's configurations; and its headline."""

from __future__ import annotations

from typing import Any, Mapping

from tuner_app.errors import InfeasibleConfig
from tuner_app.model.space.search_space import accuracy_metric
from tuner_app.search import chance
from tuner_app.search.pareto_geometry import knee, non_dominated
from tuner_app.search.record import metric, rejected_trials, search_front, trial_points

TRIAL_METRICS = ("val_accuracy", "val_loss", "test_accuracy", "params")
# Shown where some trial has them: the int8 model's costs on a device and its accuracy (device/).
DEVICE_METRICS = ("flash_bytes", "ram_bytes", "latency_ms", "val_accuracy_int8", "test_accuracy_int8")
DEVICE_HEADERS = {"flash_bytes": "flash_kb", "ram_bytes": "ram_kb", "latency_ms": "int8_ms",
                  "val_accuracy_int8": "val_int8", "test_accuracy_int8": "test_int8"}


def headline(tuner) -> dict[str, float]:
    """The search at a glance: trials completed, rejected and stopped at chance, and with any completed, the best
    validation accuracy, the size of the front's knee (`knee_<size axis>`) and the hypervolume against the space's
    point."""
    found = search_front(tuner)
    values = {"trials_completed": float(sum(trial.status == "COMPLETED" for trial in tuner.oracle.trials.values())),
              "trials_rejected": float(len(rejected_trials(tuner.oracle))),
              "trials_stopped_at_chance": float(sum(map(_stopped_at_chance, tuner.oracle.trials.values())))}
    if found.points:
        values.update({f"best_{accuracy_metric(tuner.space)}": max(accuracy for _, accuracy in found.points),
                       f"knee_{found.size}": found.front[knee(found.front)][0], "hypervolume": found.hypervolume})
    return values


def summary_rows(tuner) -> list[dict[str, Any]]:
    """One row per trial, by trial id: trial_id, status, hyperparameters, params, val/test scores, front
    (on the front of validation accuracy against the space's size axis) and stopped_at_chance (search/chance.py);
    and one per configuration the oracle turned away (trial_id None, status REJECTED), where it met it among
    the trials."""
    rows, on_front = [], _front_ids(tuner)
    for trial in tuner.oracle.trials.values():
        row = {"trial_id": trial.trial_id, "status": trial.status,
               "hyperparameters": dict(trial.hyperparameters.values)}
        for name in (*TRIAL_METRICS, *DEVICE_METRICS):
            row[name] = metric(trial, name)
        row["params"] = int(row["params"]) if row["params"] is not None else _params(tuner, row)
        row["front"] = trial.trial_id in on_front
        row["stopped_at_chance"] = _stopped_at_chance(trial)
        rows.append(((int(trial.trial_id), 1), row))
    for rejection in rejected_trials(tuner.oracle):
        row = {"trial_id": None, "status": "REJECTED", "hyperparameters": dict(rejection["hyperparameters"]),
               **dict.fromkeys((*TRIAL_METRICS, *DEVICE_METRICS)), "params": rejection["params"], "front": False,
               "stopped_at_chance": False}
        rows.append(((rejection.get("before_trial", 0), 0), row))
    return [row for _, row in sorted(rows, key=lambda item: item[0])]


def _stopped_at_chance(trial) -> bool:
    return bool(metric(trial, chance.STOPPED) == 1.0)  # a numpy bool from the metric: JSON takes only bool


def _front_ids(tuner) -> set[str]:
    points = trial_points(tuner.oracle, tuner.space.objective["size"], accuracy_metric(tuner.space))
    ids = list(points)
    return {ids[index] for index in non_dominated(list(points.values()))}


def _params(tuner, row: Mapping[str, Any]) -> int | None:
    # A failed trial reports no metrics; its size is still worth showing.
    try:
        return tuner.sizes(row["hyperparameters"])["params"]
    except (InfeasibleConfig, KeyError, TypeError):
        return None


def _varying(rows: list[dict]) -> list[str]:
    """Hyperparameter names whose value differs between the configurations that hold them (a conditional one is
    absent from the others): the table's columns."""
    names = list(dict.fromkeys(name for row in rows for name in row["hyperparameters"]))
    return [n for n in names if len({repr(r["hyperparameters"][n]) for r in rows if n in r["hyperparameters"]}) > 1
            ] or names[:3]


def _cell(value) -> str:
    """A value as the tables show it; "-" where a hyperparameter is inactive (outside its conditional scope)."""
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_dry_run(rows: list[dict], budget=None) -> str:
    """The dry run as a table: varying hyperparameters, params (or why infeasible), the int8 model's flash and
    RAM where measured (a flash or RAM budget), budget."""
    columns = _varying(rows)
    device = [name for name in ("flash_bytes", "ram_bytes") if any(row.get(name) is not None for row in rows)]
    lines = ["  ".join(f"{name:>14}" for name in (*columns, *(DEVICE_HEADERS[n] for n in device)))
             + f"  {'params':>12}"]
    for row in rows:
        cells = "  ".join(f"{_cell(row['hyperparameters'].get(name)):>14}" for name in columns)
        cells += "".join(f"  {device_cell(name, row.get(name)):>14}" for name in device)
        size = f"{row['params']:>12,}" if row["params"] is not None else f"  infeasible: {row['infeasible']}"
        lines.append(f"{cells}  {size}{'  over budget' if row.get('over_budget') else ''}")
    feasible = [row for row in rows if row["params"] is not None]
    summary = f"{len(rows)} configurations, {len(feasible)} feasible"
    if budget is not None and budget.limits():
        fitting = sum(1 for row in feasible if not row["over_budget"])
        summary += f", {fitting or 'none'} within {budget.describe()}"
    return "\n".join([*lines, summary])


def format_trials(rows: list[dict]) -> str:
    """The search's summary table: one line per trial with its varying hyperparameters and scores, and a * for
    the trials on the front of validation accuracy against size. Where some trial stopped at chance, a `stopped`
    column marks them `at chance` and a last line counts them."""
    columns, stopped = _varying(rows), sum(bool(row.get("stopped_at_chance")) for row in rows)
    marks = ["stopped"] if stopped else []  # no column in the usual search, where none stops
    device = [name for name in DEVICE_METRICS if any(row.get(name) is not None for row in rows)]
    header = ["trial", "status", *columns, "params", "val_acc", "test_acc", *(DEVICE_HEADERS[n] for n in device),
              *marks, "front"]
    lines = [_table_line(header), *(_table_line(_trial_cells(row, columns, device, bool(marks))) for row in rows)]
    counted = [f"{stopped} stopped at chance (completed, with the scores they had then)"] if stopped else []
    return "\n".join([*lines, *counted])


def _trial_cells(row: Mapping[str, Any], columns: list[str], device: list[str], marked: bool) -> list:
    scores = [f"{row[key]:.4f}" if row[key] is not None else "-" for key in ("val_accuracy", "test_accuracy")]
    mark = ["at chance" if row.get("stopped_at_chance") else ""] if marked else []
    return [row["trial_id"] or "-", row["status"], *(_cell(row["hyperparameters"].get(n)) for n in columns),
            f"{row['params']:,}" if row["params"] is not None else "-", *scores,
            *(device_cell(name, row.get(name)) for name in device), *mark, "*" if row.get("front") else ""]


def device_cell(name: str, value: float | None) -> str:
    """A device metric as the tables show it: bytes in KB, milliseconds and accuracies to 4 figures."""
    if value is None:
        return "-"
    return f"{value / 1024:.1f}" if name.endswith("_bytes") else f"{value:.4g}" if name == "latency_ms" else f"{value:.4f}"


def _table_line(cells: list) -> str:
    return "  ".join(f"{str(cell):>14}" for cell in cells).rstrip()
