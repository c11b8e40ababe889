"""The Pareto front as the text table the search and `tuner-app pareto` print, in the seed's style."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from tuner_app.analysis.architecture_text import architecture
from tuner_app.analysis.axes import (
    ACCURACY_METRICS,
    DEVICE_SIZES,
    INT8_ACCURACY_METRICS,
    SIZE_HEADERS,
    accuracy_label,
    row_metric,
    size_text,
)
from tuner_app.analysis.pareto_report import Analysis

SPEAKER_LINES = {True: "speakers: validation and test voices were never heard in training (speaker-disjoint split)",
                 False: "speakers: the split shares speakers, so validation and test accuracy are on voices heard "
                        "in training (`tuner-app data split` makes a speaker-disjoint one)",
                 None: "speakers: unknown (a search recorded before tuner-app read speakers)"}
ACCURACY_HEADERS = {"best_val_accuracy": "Val Acc", "test_accuracy": "Test Acc",
                    "val_accuracy_int8": "Int8 Val", "test_accuracy_int8": "Int8 Test"}
Column = tuple[str, Callable[[Mapping[str, Any]], str]]  # header, and a row's cell


def format_table(analysis: Analysis) -> str:
    """The front as a text table in the seed's style (architecture, accuracy, size), with validation and
    test accuracy (int8 ones too, and the device's flash, RAM and latency, where the front's runs have them),
    then a count line, whether the split was speaker-disjoint, and the hypervolume with its reference point."""
    columns = _columns(analysis)
    lines = [[header for header, _ in columns]] + [[cell(row) for _, cell in columns] for row in analysis.front]
    return "\n".join([*_aligned(lines), *_footer(analysis)])


def _columns(analysis: Analysis) -> list[Column]:
    """Architecture, float accuracies, the int8 ones the front has, x, the device sizes the front has, trial."""
    accuracies = [*ACCURACY_METRICS.values(), *_present(analysis.front, INT8_ACCURACY_METRICS.values())]
    sizes = [analysis.x, *_present(analysis.front, [name for name in DEVICE_SIZES if name != analysis.x])]
    return [("Architecture", architecture),
            *[(ACCURACY_HEADERS[metric], _accuracy_cell(metric)) for metric in accuracies],
            *[(SIZE_HEADERS[name], _size_cell(name)) for name in sizes],
            ("Trial", lambda row: str(row.get("trial_id")))]


def _present(rows: Sequence[Mapping[str, Any]], metrics) -> list[str]:
    """The metrics, in order, that at least one row has."""
    return [metric for metric in metrics if any(row_metric(row, metric) is not None for row in rows)]


def _accuracy_cell(metric: str) -> Callable[[Mapping[str, Any]], str]:
    def cell(row: Mapping[str, Any]) -> str:
        value = row_metric(row, metric)
        return "-" if value is None else f"{value:.4f}"
    return cell


def _size_cell(name: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda row: size_text(name, row_metric(row, name))


def _aligned(lines: list[list[str]]) -> list[str]:
    """The architecture column left-aligned, every other right-aligned, two spaces apart."""
    widths = [max(len(line[column]) for line in lines) for column in range(len(lines[0]))]
    return ["  ".join(cell.ljust(width) if column == 0 else cell.rjust(width)
                      for column, (cell, width) in enumerate(zip(line, widths))).rstrip() for line in lines]


def _footer(analysis: Analysis) -> list[str]:
    """The count, speakers, hypervolume and reference-point lines under the table."""
    label, x = accuracy_label(analysis.accuracy), analysis.x
    x_ref, y_ref = analysis.reference_point
    return [f"{len(analysis.front)} of {len(analysis.all_rows)} trials on the front (chosen on {label}); "
            f"{analysis.left_out} runs left out (not FINISHED or missing metrics)",
            SPEAKER_LINES[analysis.speaker_disjoint],
            f"hypervolume {analysis.hypervolume:.4f} in (log10 {x}, {label}) against reference point "
            f"({x}={x_ref:,.0f}, {label}={y_ref:.2f})",
            f"reference point: {analysis.reference_source} (another: --hv-reference SIZE,ACC)"]
