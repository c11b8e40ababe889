"""The Pareto front as the text table the search and `tuner-app pareto` print, in the seed's style."""

from __future__ import annotations

from typing import Any, Mapping

from tuner_app.analysis.pareto import SIZE_HEADERS, Analysis, architecture, row_metric

SPEAKER_LINES = {True: "speakers: validation and test voices were never heard in training (speaker-disjoint split)",
                 False: "speakers: the split shares speakers, so validation and test accuracy are on voices heard "
                        "in training (`tuner-app data split` makes a speaker-disjoint one)",
                 None: "speakers: unknown (a search recorded before tuner-app read speakers)"}


def format_table(analysis: Analysis) -> str:
    """The front as a text table in the seed's style (architecture, accuracy, params), with validation and
    test accuracy, then a count line, whether the split was speaker-disjoint, and the hypervolume with its
    reference point."""
    header = ["Architecture", "Val Acc", "Test Acc", SIZE_HEADERS[analysis.x], "Trial"]
    lines = [header] + [[architecture(row), _accuracy(row, "best_val_accuracy"), _accuracy(row, "test_accuracy"),
                         f"{int(row_metric(row, analysis.x)):,}", str(row.get("trial_id"))] for row in analysis.front]
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    text = ["  ".join(cell.ljust(width) if column == 0 else cell.rjust(width)
                      for column, (cell, width) in enumerate(zip(line, widths))).rstrip() for line in lines]
    x_ref, y_ref = analysis.reference_point
    text.append(f"{len(analysis.front)} of {len(analysis.all_rows)} trials on the front (chosen on validation "
                f"accuracy); {analysis.left_out} runs left out (not FINISHED or missing metrics)")
    text.append(SPEAKER_LINES[analysis.speaker_disjoint])
    text.append(f"hypervolume {analysis.hypervolume:.4f} in (log10 {analysis.x}, validation accuracy) against "
                f"reference point ({analysis.x}={x_ref:,.0f}, validation accuracy={y_ref:.2f})")
    text.append(f"reference point: {analysis.reference_source} (another: --hv-reference SIZE,ACC)")
    return "\n".join(text)


def _accuracy(row: Mapping[str, Any], metric: str) -> str:
    value = row_metric(row, metric)
    return "-" if value is None else f"{value:.4f}"
