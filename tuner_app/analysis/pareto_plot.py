"""The Pareto analysis's figure: every trial and the front, accuracy against log-scale size, optionally over the
seed study's published points (seed_reference.csv)."""

from __future__ import annotations

import csv
import importlib.resources
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from tuner_app import outputs
from tuner_app.analysis.axes import SIZE_AXES, accuracy_label, accuracy_metric, row_metric
from tuner_app.files import atomic_path

if TYPE_CHECKING:
    from tuner_app.analysis.pareto_report import Analysis

log = logging.getLogger(__name__)

SEED_CSV = "seed_reference.csv"
SEED_TYPES = {"conv_layers": int, "fc_layers": int, "params": int, "accuracy": float,
              "batch_norm": "true".__eq__, "params_published": "true".__eq__}


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
    _draw_points(axes, analysis, reference)
    _label_axes(axes, analysis)
    with atomic_path(analysis.png_path) as temporary:
        figure.savefig(temporary, dpi=110, bbox_inches="tight", format="png",
                       metadata=outputs.figure_metadata(analysis.png_path))
    return analysis.png_path


def _draw_points(axes, analysis: Analysis, reference: str | None) -> None:
    y_metric = accuracy_metric(analysis.accuracy, analysis.y)
    axes.scatter(*_xy(analysis.all_rows, analysis.x, y_metric), s=18, color="0.6", label="trials")
    axes.step(*_xy(analysis.front, analysis.x, y_metric), where="post", color="tab:red", marker="o",
              label=f"Pareto front (chosen on {accuracy_label(analysis.accuracy)})")
    if reference == "seed":
        _overlay_seed(axes, analysis)


def _label_axes(axes, analysis: Analysis) -> None:
    y_label = accuracy_label(analysis.accuracy, analysis.y)
    axes.set_xscale("log")
    axes.set_xlabel(f"{SIZE_AXES[analysis.x]} (log scale)")
    axes.set_ylabel(y_label)
    title = (f"{y_label.capitalize()} vs {SIZE_AXES[analysis.x]}: "
             f"{len(analysis.all_rows)} trials, {len(analysis.front)} on the front")
    axes.set_title("\n".join([title, *analysis.notes]), fontsize="medium")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")


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
