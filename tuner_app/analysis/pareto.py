"""Pareto analysis of a search's trials: the front, hypervolume and knee (front.py), model selection, CSV, plot, table.

Size x (params_total, macs or model_bytes) is minimised on a log scale, accuracy y maximised. The front is
always chosen on validation accuracy (best_val_accuracy); test accuracy is shown beside it, never used to choose.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.resources
import json
import logging
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from tuner_app import outputs
from tuner_app.errors import TunerAppError, storage_errors
from tuner_app.files import atomic_path
from tuner_app.model.spaces import HV_REFERENCES, checked_reference
from tuner_app.search.front import Point, hypervolume, knee, non_dominated

log = logging.getLogger(__name__)

SIZE_AXES = {"params_total": "parameters", "macs": "MACs per clip", "model_bytes": "float32 weight bytes"}
SIZE_HEADERS = {"params_total": "Params", "macs": "MACs", "model_bytes": "Bytes"}
ACCURACY_METRICS = {"val": "best_val_accuracy", "test": "test_accuracy"}
ACCURACY_LABELS = {"val": "validation accuracy", "test": "test accuracy"}
REFERENCES = (None, "seed")
RULES_HELP = "best, smallest-within:D (D a fraction of accuracy, e.g. smallest-within:0.01 = 1 point) or knee"
CSV_SIZES = ("params_total", "params_conv", "params_fc", "macs", "model_bytes")
CSV_ACCURACIES = ("best_val_accuracy", "test_accuracy")
CSV_HEADER = "run_id,trial_id,architecture"  # how the table's first line starts: how a rerun knows it
SEED_CSV = "seed_reference.csv"
SEED_TYPES = {"conv_layers": int, "fc_layers": int, "params": int, "accuracy": float,
              "batch_norm": "true".__eq__, "params_published": "true".__eq__}
SEEN_SPEAKERS_NOTE = "split shares speakers: validation and test accuracy are on voices heard in training"
ROUNDING = 1e-9  # accuracies are floats: 0.52 - 0.05 is 0.47000000000000003, yet must admit 0.47


def row_metric(row: Mapping[str, Any], name: str) -> float | None:
    value = (row.get("metrics") or {}).get(name)
    return float(value) if value is not None and math.isfinite(float(value)) else None


def _point(row: Mapping[str, Any], x: str) -> Point:
    return row_metric(row, x), row_metric(row, "best_val_accuracy")


def _check_choice(kind: str, value: Any, choices) -> None:
    if value not in choices:
        raise TunerAppError(f"unknown Pareto {kind} {value!r}; choose one of {', '.join(map(str, choices))}")


def eligible_rows(rows: Sequence[Mapping[str, Any]], x: str = "params_total") -> tuple[list[dict], int]:
    """(rows that take part, how many were left out): FINISHED rows with a finite best_val_accuracy and a
    positive x metric, in their given order."""
    _check_choice("size axis", x, SIZE_AXES)
    kept = [row for row in rows if row.get("status") == "FINISHED"
            and row_metric(row, "best_val_accuracy") is not None and (row_metric(row, x) or 0) > 0]
    return kept, len(rows) - len(kept)


def _front(rows: Sequence[dict], x: str) -> list[dict]:
    return [rows[index] for index in non_dominated([_point(row, x) for row in rows])]


def select(rows: Sequence[Mapping[str, Any]], rule: str, x: str = "params_total") -> dict:
    """The eligible row chosen by `rule` on validation accuracy (test accuracy never changes the choice):
    "best": highest best_val_accuracy, ties to the smaller x then the earlier row; "smallest-within:D":
    smallest x among rows with best_val_accuracy >= best - D (D in [0, 1): 0.01 = 1 point), ties to the
    higher accuracy then the earlier row; "knee": the knee of the validation front. TunerAppError for an
    unknown rule, a malformed D, or no eligible rows."""
    name, _, argument = rule.partition(":")
    tolerance = _tolerance(argument) if name == "smallest-within" else None
    if rule not in ("best", "knee") and tolerance is None:
        raise TunerAppError(f"unknown selection rule {rule!r}; use {RULES_HELP}")
    candidates, left_out = eligible_rows(rows, x)
    if not candidates:
        raise TunerAppError(f"no finished trial with best_val_accuracy and {x} to select ({left_out} left out)")
    if rule == "knee":
        front = _front(candidates, x)
        return front[knee([_point(row, x) for row in front])]
    best = max(candidates, key=lambda row: (row_metric(row, "best_val_accuracy"), -row_metric(row, x)))
    if tolerance is None:
        return best
    floor = row_metric(best, "best_val_accuracy") - tolerance - ROUNDING
    within = [row for row in candidates if row_metric(row, "best_val_accuracy") >= floor]
    return min(within, key=lambda row: (row_metric(row, x), -row_metric(row, "best_val_accuracy")))


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
    axis's default); json_path: that reference and the hypervolume; notes: caveats also on the plot."""

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


def analyse(rows: Sequence[Mapping[str, Any]], out_dir: Path, x: str = "params_total", y: str = "val",
            reference: str | None = None, name: str = "pareto", hv_reference: Point | None = None,
            reference_source: str = "--hv-reference", out_option: str = "--out") -> Analysis:
    """Front, hypervolume, `<name>.csv`, `<name>.png` and `<name>.json` (the hypervolume and its reference) in
    out_dir. The front and hypervolume always use validation accuracy; y="test" only changes the plot's y axis.
    reference="seed" overlays the seed's points. hv_reference (size, accuracy; from reference_source) is the
    hypervolume's reference point; by default the axis's fixed one (spaces.HV_REFERENCES), so that every
    analysis of the same axis compares. Each file is written whole or not at all; a write the disk refuses is
    one line naming out_dir and `out_option`, the option that chose it."""
    _check_choice("accuracy axis", y, ACCURACY_METRICS)
    _check_choice("reference", reference, REFERENCES)
    kept, left_out = eligible_rows(rows, x)
    if not kept:
        raise TunerAppError(f"no finished trial with best_val_accuracy and {x} among {len(rows)} runs to analyse")
    kept.sort(key=lambda row: (row_metric(row, x), -row_metric(row, "best_val_accuracy")))
    points = [_point(row, x) for row in kept]
    if hv_reference is None:
        hv_reference, reference_source = HV_REFERENCES[x], f"the fixed default for {x}"
    reference_point = checked_reference(hv_reference, reference_source)
    out_dir = Path(out_dir)
    analysis = Analysis(_front(kept, x), kept, left_out, hypervolume(points, reference_point), reference_point,
                        out_dir / f"{name}.csv", out_dir / f"{name}.png", x, y,
                        reference_source=reference_source, json_path=out_dir / f"{name}.json",
                        speaker_disjoint=speaker_disjoint(kept))
    if analysis.speaker_disjoint is False:
        analysis.notes.append(SEEN_SPEAKERS_NOTE)
    _check_replaceable(analysis, out_option)
    with storage_errors(out_dir, out_option):
        write_csv(analysis)
        write_json(analysis)
        plot(analysis, reference)
    return analysis


# How the non-seed families read: the hyperparameters that set their size.
FAMILY_DETAILS = {"dscnn": ("dscnn_filters", "dscnn_blocks"), "tcresnet": ("tcresnet_depth", "tcresnet_width"),
                  "bcresnet": ("bcresnet_width",)}


def architecture(row: Mapping[str, Any]) -> str:
    """A short readable description, e.g. "2D conv3(5x5, 8..32) fc2(1024,512) BN flatten" or
    "mfcc10 dscnn(dscnn_filters=64, dscnn_blocks=4)"."""
    values = row.get("hyperparameters") or {}
    model = values.get("family") or row.get("model")
    preset = [str(values["frontend"])] if values.get("frontend") else []
    if model in FAMILY_DETAILS:
        details = ", ".join(f"{name}={values[name]}" for name in FAMILY_DETAILS[model] if name in values)
        return " ".join([*preset, f"{model}({details})"])
    dims = {"cnn1d": "1D", "cnn2d": "2D"}.get(model, model or "?")
    parts = [*preset, dims]
    if "conv_layers" in values:
        parts.append(f"conv{values['conv_layers']}{_conv_detail(values, dims)}")
    if "fc_layers" in values:
        units = [str(values.get(f"fc_units_{layer}", "?")) for layer in range(1, int(values["fc_layers"]) + 1)]
        parts.append(f"fc{values['fc_layers']}" + (f"({','.join(units)})" if units else ""))
    if str(values.get("batch_norm")).lower() == "true":
        parts.append("BN")
    if values.get("head"):
        parts.append(str(values["head"]))
    return " ".join(parts)


def _conv_detail(values: Mapping[str, Any], dims: str) -> str:
    if not all(key in values for key in ("kernel_size", "filters")):
        return ""
    kernel = f"{values['kernel_size']}x{values['kernel_size']}" if dims == "2D" else str(values["kernel_size"])
    first = int(values["filters"])
    last = first * int(values.get("filter_growth", 1)) ** (int(values["conv_layers"]) - 1)
    return f"({kernel}, {first if last == first else f'{first}..{last}'})"


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
    """One line per eligible trial: ids, architecture, every hyperparameter, sizes, val and test accuracy,
    and pareto (true/false)."""
    names = list(dict.fromkeys(name for row in analysis.all_rows for name in row.get("hyperparameters") or {}))
    on_front = {id(row) for row in analysis.front}
    with atomic_path(analysis.csv_path) as temporary, temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*CSV_HEADER.split(","), *names, *CSV_SIZES, *CSV_ACCURACIES, "pareto"])
        for row in analysis.all_rows:
            values = row.get("hyperparameters") or {}
            sizes = [row_metric(row, metric) for metric in CSV_SIZES]
            writer.writerow([row.get("run_id"), row.get("trial_id"), architecture(row),
                             *(_cell(values.get(name)) for name in names),
                             *(_cell(None if size is None else int(size)) for size in sizes),
                             *(_cell(row_metric(row, metric)) for metric in CSV_ACCURACIES),
                             _cell(id(row) in on_front)])
    return analysis.csv_path


def write_json(analysis: Analysis) -> Path:
    """The hypervolume with the reference point it was measured against, and where that point came from."""
    summary = {"x": analysis.x, "hypervolume": analysis.hypervolume,
               "hv_reference": list(analysis.reference_point), "hv_reference_source": analysis.reference_source,
               "front_run_ids": [row["run_id"] for row in analysis.front],
               "speaker_disjoint": analysis.speaker_disjoint}
    with atomic_path(analysis.json_path) as temporary:
        temporary.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return analysis.json_path


def seed_points() -> list[dict]:
    """The seed study's published points from the packaged seed_reference.csv (36: 2D conv 1-4 and 1D conv
    1-5, x FC 1-2, x BN off/on; the 2D 5-conv rows are "X" in the seed and left out). "accuracy" is the
    seed's TEST accuracy at the epoch of minimum validation loss. "params" is published for BN off; for BN
    on (params_published False) it is derived as published + 4 per conv channel."""
    text = importlib.resources.files("tuner_app.analysis").joinpath(SEED_CSV).read_text(encoding="utf-8")
    records = csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#"))
    return [{key: SEED_TYPES.get(key, str)(value) for key, value in record.items()} for record in records]


def plot(analysis: Analysis, reference: str | None = None) -> Path:
    """Write analysis.png_path with matplotlib's Agg canvas (no pyplot, no display): every trial, the front
    as a post-step line, log-scale size; reference="seed" overlays the seed's published points."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 6))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    y_metric = ACCURACY_METRICS[analysis.y]
    axes.scatter(*_xy(analysis.all_rows, analysis.x, y_metric), s=18, color="0.6", label="trials")
    axes.step(*_xy(analysis.front, analysis.x, y_metric), where="post", color="tab:red", marker="o",
              label="Pareto front (chosen on validation accuracy)")
    if reference == "seed":
        _overlay_seed(axes, analysis)
    axes.set_xscale("log")
    axes.set_xlabel(f"{SIZE_AXES[analysis.x]} (log scale)")
    axes.set_ylabel(ACCURACY_LABELS[analysis.y])
    title = (f"{ACCURACY_LABELS[analysis.y].capitalize()} vs {SIZE_AXES[analysis.x]}: "
             f"{len(analysis.all_rows)} trials, {len(analysis.front)} on the front")
    axes.set_title("\n".join([title, *analysis.notes]), fontsize="medium")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")
    with atomic_path(analysis.png_path) as temporary:
        figure.savefig(temporary, dpi=110, bbox_inches="tight", format="png",
                       metadata=outputs.figure_metadata(analysis.png_path))
    return analysis.png_path


def _xy(rows: Sequence[dict], x: str, y_metric: str) -> tuple[list[float], list[float]]:
    # With y = test, a row without test accuracy cannot be drawn; it still counts for the front.
    pairs = [(row_metric(row, x), row_metric(row, y_metric)) for row in rows if row_metric(row, y_metric) is not None]
    return [px for px, _ in pairs], [py for _, py in pairs]


def _overlay_seed(axes, analysis: Analysis) -> None:
    if analysis.x != "params_total":
        note = f"seed study not shown: it publishes parameter counts only, not {analysis.x}"
        analysis.notes.append(note)
        log.warning(note)
        return
    points = seed_points()
    for model, marker in (("cnn1d", "^"), ("cnn2d", "s")):
        for batch_norm in (False, True):
            group = [p for p in points if p["model"] == model and p["batch_norm"] == batch_norm]
            label = f"seed study (published test acc): {model[-2:].upper()}"
            label += " + BN (params derived)" if batch_norm else ""
            axes.scatter([p["params"] for p in group], [p["accuracy"] for p in group], marker=marker, s=36,
                         color="tab:blue" if model == "cnn1d" else "tab:green",
                         facecolors="none" if batch_norm else None, label=label)
