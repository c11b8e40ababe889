"""A trial's architecture as a small PNG table, block by block, as the walk sizes it: the picture MLflow shows
beside the run. (keras.utils.plot_model needs pydot and Graphviz, which the pinned stack does not carry.)"""

from __future__ import annotations

from tuner_app.model.architecture import spec
from tuner_app.model.architecture.blocks import format_shape

COLUMNS = ("block", "output", "params", "MACs")
COLUMN_WIDTHS = (0.44, 0.18, 0.16, 0.22)
DPI = 80
WIDTH_INCHES = 6.0
ROW_INCHES = 0.22


def architecture_figure(walk: spec.Walk, title: str):
    """A matplotlib Figure (Agg canvas) of the walk: one row per block and a totals row."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [[row.name, format_shape(row.output_shape), f"{row.params:,}", f"{row.macs:,}"] for row in walk.rows]
    rows.append(["total", format_shape(walk.output_shape), f"{walk.params_total:,}", f"{walk.macs:,}"])
    figure = Figure(figsize=(WIDTH_INCHES, ROW_INCHES * (len(rows) + 3)), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.01, 0.01, 0.98, 1 - 1.5 / (len(rows) + 3)))
    axes.set_axis_off()
    table = axes.table(cellText=rows, colLabels=COLUMNS, colWidths=COLUMN_WIDTHS, cellLoc="left", bbox=(0, 0, 1, 1))
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    figure.suptitle(title, fontsize=9)
    return figure
