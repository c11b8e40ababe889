"""Pareto analysis of a search's trials: the front, hypervolume and knee (search/pareto_geometry.py), model selection,
CSV, plot, table.

Size x (params_total, macs, model_bytes, or the int8 model's flash_bytes, ram_bytes, latency_ms: axes.py) is
minimised on a log scale, accuracy y maximised. The front is always chosen on validation accuracy: the float
model's (best_val_accuracy) or, with accuracy="int8", the int8 model's (val_accuracy_int8); test accuracy is
shown beside it, never used to choose.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from tuner_app import outputs
from tuner_app.analysis.architecture_text import architecture
from tuner_app.analysis.axes import (
    ACCURACY_METRICS,
    CSV_ACCURACIES,
    CSV_SIZES,
    METRICS_BY_ACCURACY,
    SIZE_AXES,
    accuracy_metric,
    row_metric,
    size_value,
)
from tuner_app.analysis.pareto_plot import plot, seed_points  # noqa: F401 (seed_points re-exported)
from tuner_app.errors import TunerAppError, storage_errors
from tuner_app.files import atomic_path
from tuner_app.model.space.search_space import HV_REFERENCES, checked_reference
from tuner_app.search.pareto_geometry import Point, hypervolume, knee, non_dominated

REFERENCES = (None, "seed")
RULES_HELP = "best, smallest-within:D (D a fraction of accuracy, e.g. smallest-within:0.01 = 1 point) or knee"
CSV_HEADER = "run_id,trial_id,architecture"  # how the table's first line starts: how a rerun knows it
SEEN_SPEAKERS_NOTE = "split shares speakers: validation and test accuracy are on voices heard in training"
ROUNDING = 1e-9  # accuracies are floats: 0.52 - 0.05 is 0.47000000000000003, yet must admit 0.47


def _point(row: Mapping[str, Any], x: str, accuracy: str) -> Point:
    return row_metric(row, x), row_metric(row, accuracy_metric(accuracy))


def _check_choice(kind: str, value: Any, choices) -> None:
    if value not in choices:
        raise TunerAppError(f"unknown Pareto {kind} {value!r}; choose one of {', '.join(map(str, choices))}")


def eligible_rows(rows: Sequence[Mapping[str, Any]], x: str = "params_total",
                  accuracy: str = "float") -> tuple[list[dict], int]:
    """(rows that take part, how many were left out): FINISHED rows with a finite validation accuracy of
    `accuracy` (best_val_accuracy, or val_accuracy_int8 for "int8") and a positive x metric, in their given order."""
    _check_choice("size axis", x, SIZE_AXES)
    _check_choice("accuracy", accuracy, METRICS_BY_ACCURACY)
    chosen_on = accuracy_metric(accuracy)
    kept = [row for row in rows if row.get("status") == "FINISHED"
            and row_metric(row, chosen_on) is not None and (row_metric(row, x) or 0) > 0]
    return kept, len(rows) - len(kept)


def _front(rows: Sequence[dict], x: str, accuracy: str) -> list[dict]:
    return [rows[index] for index in non_dominated([_point(row, x, accuracy) for row in rows])]


def select(rows: Sequence[Mapping[str, Any]], rule: str, x: str = "params_total", accuracy: str = "float") -> dict:
    """The eligible row chosen by `rule` on the validation accuracy of `accuracy` (best_val_accuracy, or
    val_accuracy_int8 for "int8"; test accuracy never changes the choice): "best": the highest, ties to the
    smaller x then the earlier row; "smallest-within:D": smallest x among rows within D of the best (D in
    [0, 1): 0.01 = 1 point), ties to the higher accuracy then the earlier row; "knee": the knee of the
    validation front. TunerAppError for an unknown rule, a malformed D, or no eligible rows."""
    tolerance, metric = _rule_tolerance(rule), accuracy_metric(accuracy)
    candidates, left_out = eligible_rows(rows, x, accuracy)
    if not candidates:
        raise TunerAppError(f"no finished trial with {metric} and {x} to select ({left_out} left out)")
    if rule == "knee":
        front = _front(candidates, x, accuracy)
        return front[knee([_point(row, x, accuracy) for row in front])]
    best = max(candidates, key=lambda row: (row_metric(row, metric), -row_metric(row, x)))
    return best if tolerance is None else _smallest_within(candidates, x, metric, row_metric(best, metric) - tolerance)


def _rule_tolerance(rule: str) -> float | None:
    """smallest-within's D; None for "best" and "knee"; TunerAppError for any other rule."""
    name, _, argument = rule.partition(":")
    if name == "smallest-within":
        return _tolerance(argument)
    if rule not in ("best", "knee"):
        raise TunerAppError(f"unknown selection rule {rule!r}; use {RULES_HELP}")
    return None


def _smallest_within(candidates: Sequence[dict], x: str, metric: str, floor: float) -> dict:
    """The smallest row whose `metric` reaches floor, ties to the more accurate then the earlier row."""
    within = [row for row in candidates if row_metric(row, metric) >= floor - ROUNDING]
    return min(within, key=lambda row: (row_metric(row, x), -row_metric(row, metric)))


def speaker_disjoint(rows: Sequence[Mapping[str, Any]]) -> bool | None:
    """Whether every row's validation and test speakers were unheard in training: False if any search's split
    shared a speaker, None if some search recorded no speakers (before speakers were data)."""
    flags = [row.get("speaker_disjoint") for row in rows]
    if False in flags:
        return False
    return None if None in flags or not flags else True


def _tolerance(text: str) -> float:
    try:
        tolerance = float(text)
    except ValueError:
        tolerance = math.nan
    if not 0.0 <= tolerance < 1.0:  # also rejects nan
        raise TunerAppError(f"malformed selection rule 'smallest-within:{text}': D must be a number in [0, 1), "
                            "a fraction of accuracy (smallest-within:0.01 = within 1 point of the best)")
    return tolerance


@dataclasses.dataclass
class Analysis:
    """front: rows on the validation front, by x; all_rows: eligible rows, by x; hypervolume: in (log10 x,
    validation accuracy) against reference_point, a fixed point from reference_source (the caller's, or the
    axis's default); json_path: that reference and the hypervolume; notes: caveats also on the plot;
    accuracy: whose accuracy chose the front and shows on y, "float" (the trained model's) or "int8"."""

    front: list[dict]
    all_rows: list[dict]
    left_out: int
    hypervolume: float
    reference_point: Point
    csv_path: Path
    png_path: Path
    x: str
    y: str
    notes: list[str] = dataclasses.field(default_factory=list)
    reference_source: str = ""
    json_path: Path | None = None
    speaker_disjoint: bool | None = None  # None: some trial's search recorded no speakers
    accuracy: str = "float"


def analyse(rows: Sequence[Mapping[str, Any]], out_dir: Path, x: str = "params_total", y: str = "val",
            reference: str | None = None, name: str = "pareto", hv_reference: Point | None = None,
            reference_source: str = "--hv-reference", out_option: str = "--out", accuracy: str = "float") -> Analysis:
    """Front, hypervolume, `<name>.csv`, `<name>.png` and `<name>.json` (the hypervolume and its reference) in
    out_dir. The front and hypervolume always use validation accuracy, the float model's or, with
    accuracy="int8", the int8 model's (rows without it are left out); y="test" only changes the plot's y axis.
    reference="seed" overlays the seed's points. hv_reference (size, accuracy; from reference_source) is the
    hypervolume's reference point; by default the axis's fixed one (spaces.HV_REFERENCES), so that every
    analysis of the same axis compares. Each file is written whole or not at all; a write the disk refuses is
    one line naming out_dir and `out_option`, the option that chose it."""
    _check_choice("accuracy axis", y, ACCURACY_METRICS)
    _check_choice("reference", reference, REFERENCES)
    _check_choice("size axis", x, SIZE_AXES)
    if hv_reference is None:
        hv_reference, reference_source = HV_REFERENCES[x], f"the fixed default for {x}"
    analysis = _analysis(rows, x, accuracy, checked_reference(hv_reference, reference_source), reference_source)
    out_dir = Path(out_dir)
    analysis = dataclasses.replace(analysis, y=y, **_paths(out_dir, name))
    _check_replaceable(analysis, out_option)
    with storage_errors(out_dir, out_option):
        write_csv(analysis)
        write_json(analysis)
        plot(analysis, reference)
    return analysis


def _analysis(rows: Sequence[Mapping[str, Any]], x: str, accuracy: str, reference_point: Point,
              reference_source: str) -> Analysis:
    """The front and hypervolume of the eligible rows (sorted by x, then the more accurate first); no paths yet."""
    kept, left_out = eligible_rows(rows, x, accuracy)
    if not kept:
        raise TunerAppError(f"no finished trial with {accuracy_metric(accuracy)} and {x} among {len(rows)} runs "
                            "to analyse")
    kept.sort(key=lambda row: (row_metric(row, x), -row_metric(row, accuracy_metric(accuracy))))
    area = hypervolume([_point(row, x, accuracy) for row in kept], reference_point)
    analysis = Analysis(_front(kept, x, accuracy), kept, left_out, area, reference_point, Path(), Path(), x, "val",
                        reference_source=reference_source, speaker_disjoint=speaker_disjoint(kept), accuracy=accuracy)
    if analysis.speaker_disjoint is False:
        analysis.notes.append(SEEN_SPEAKERS_NOTE)
    return analysis


def _paths(out_dir: Path, name: str) -> dict[str, Path]:
    return {f"{kind}_path": out_dir / f"{name}.{kind}" for kind in ("csv", "png", "json")}


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def _check_replaceable(analysis: Analysis, option: str) -> None:
    """Only an earlier analysis's files are replaced: never a user's file of the same name."""
    is_table = outputs.first_line_starts(CSV_HEADER)
    outputs.check_replaceable_file(analysis.csv_path, option, is_table, "a Pareto table")
    if analysis.json_path:
        outputs.check_replaceable_file(analysis.json_path, option, _is_summary, "a Pareto summary")
    earlier = analysis.csv_path.is_file()  # its table checked above: an earlier set (its plot may predate the mark)
    outputs.check_replaceable_file(analysis.png_path, option, lambda path: earlier or outputs.figure_is_ours(path),
                                   "a figure")


def _is_summary(path: Path) -> bool:
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and {"hypervolume", "front_run_ids"} <= summary.keys()


def write_csv(analysis: Analysis) -> Path:
    """One line per eligible trial: ids, architecture, every hyperparameter, sizes (the device's too), val and
    test accuracy (float, then int8), and pareto (true/false); a cell is empty where the run lacks its metric."""
    names = list(dict.fromkeys(name for row in analysis.all_rows for name in row.get("hyperparameters") or {}))
    on_front = {id(row) for row in analysis.front}
    with atomic_path(analysis.csv_path) as temporary, temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*CSV_HEADER.split(","), *names, *CSV_SIZES, *CSV_ACCURACIES, "pareto"])
        for row in analysis.all_rows:
            values = row.get("hyperparameters") or {}
            writer.writerow([row.get("run_id"), row.get("trial_id"), architecture(row),
                             *(_cell(values.get(name)) for name in names),
                             *(_cell(size_value(metric, row_metric(row, metric))) for metric in CSV_SIZES),
                             *(_cell(row_metric(row, metric)) for metric in CSV_ACCURACIES),
                             _cell(id(row) in on_front)])
    return analysis.csv_path


def write_json(analysis: Analysis) -> Path:
    """The hypervolume with the reference point it was measured against, where that point came from, and the
    accuracy that chose the front (accuracy "float" or "int8", and its metric)."""
    summary = {"x": analysis.x, "accuracy": analysis.accuracy, "accuracy_metric": accuracy_metric(analysis.accuracy),
               "hypervolume": analysis.hypervolume,
               "hv_reference": list(analysis.reference_point), "hv_reference_source": analysis.reference_source,
               "front_run_ids": [row["run_id"] for row in analysis.front],
               "speaker_disjoint": analysis.speaker_disjoint}
    with atomic_path(analysis.json_path) as temporary:
        temporary.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return analysis.json_path
