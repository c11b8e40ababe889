"""Figures of representational similarity analysis: a grid of layer RDMs, and a heat map of RDM similarities.

Both have fixed pixel sizes whatever the number of layers or stimuli, so pages of them line up. An RDM is
drawn as percentiles of its own dissimilarities (the usual RSA display): layers whose dissimilarities differ
in scale share one colour bar, and the figure shows each layer's ordering, which is what Spearman compares.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from tuner_app.inspection.figures import SMALL_FONT, new_figure, save_png

GRID_SIZE = (1200, 1000)  # pixels
HEATMAP_SIZE = (900, 800)
ANNOTATE_UP_TO = 12  # cells per side: beyond it, numbers would not fit
LABEL_UP_TO = 24  # stimuli per RDM side labelled with their names


def percentiles(matrix: np.ndarray) -> np.ndarray:
    """[n, n] ranks of the off-diagonal dissimilarities scaled to 0..100 (ties share a rank), NaN diagonal."""
    from scipy.stats import rankdata

    upper = np.triu_indices(len(matrix), k=1)
    ranks = rankdata(matrix[upper]) - 1
    shown = np.full(matrix.shape, np.nan)
    shown[upper] = 100.0 * ranks / max(len(ranks) - 1, 1)
    shown.T[upper] = shown[upper]
    return shown


def rdm_grid(matrices: Mapping[str, np.ndarray], stimuli: Sequence[str], metric: str, path: str | os.PathLike,
             title: str = "") -> Path:
    """A PNG of every RDM of `matrices` ({layer: [n, n]} by `metric`), one panel per layer titled with its name;
    `stimuli` label the panels' rows and columns when few layers leave room."""
    figure = new_figure(GRID_SIZE)
    columns = math.ceil(math.sqrt(len(matrices)))
    rows = math.ceil(len(matrices) / columns)
    image = None
    for index, (name, matrix) in enumerate(matrices.items()):
        axes = figure.add_subplot(rows, columns, index + 1)
        image = axes.imshow(percentiles(matrix), cmap="viridis", vmin=0, vmax=100, interpolation="nearest")
        axes.set_title(name, fontsize="small")
        _stimulus_ticks(axes, stimuli if len(matrices) <= 4 else [])
    figure.colorbar(image, ax=figure.axes, shrink=0.6, label="dissimilarity (percentile within its RDM)")
    figure.suptitle(title or f"RDMs ({metric}) over {len(next(iter(matrices.values())))} stimuli")
    return save_png(figure, path)


def _stimulus_ticks(axes, stimuli: Sequence[str]) -> None:
    if not stimuli or len(stimuli) > LABEL_UP_TO:
        axes.set_xticks([])
        axes.set_yticks([])
        return
    positions = np.arange(len(stimuli))
    axes.set_xticks(positions, labels=stimuli, rotation=90, fontsize=SMALL_FONT)
    axes.set_yticks(positions, labels=stimuli, fontsize=SMALL_FONT)


def similarity_heatmap(values: np.ndarray, row_labels: Sequence[str], column_labels: Sequence[str],
                       path: str | os.PathLike, title: str = "", row_title: str = "", column_title: str = "") -> Path:
    """A PNG heat map of `values` [rows, columns] in [-1, 1], numbers written in when the grid is small."""
    import matplotlib

    figure = new_figure(HEATMAP_SIZE)
    axes = figure.add_subplot()
    colours = matplotlib.colormaps["RdBu_r"].with_extremes(bad="0.8")  # NaN (a constant RDM) in grey
    image = axes.imshow(np.ma.masked_invalid(values), cmap=colours, vmin=-1, vmax=1, aspect="auto",
                        interpolation="nearest")
    axes.set_xticks(np.arange(len(column_labels)), labels=column_labels, rotation=90, fontsize=SMALL_FONT)
    axes.set_yticks(np.arange(len(row_labels)), labels=row_labels, fontsize=SMALL_FONT)
    axes.set_xlabel(column_title)
    axes.set_ylabel(row_title)
    if max(values.shape) <= ANNOTATE_UP_TO:
        _annotate(axes, values)
    figure.colorbar(image, ax=axes, label=title or "similarity")
    axes.set_title(title)
    figure.subplots_adjust(left=0.25, bottom=0.25)
    return save_png(figure, path)


def _annotate(axes, values: np.ndarray) -> None:
    for (row, column), value in np.ndenumerate(values):
        colour = "white" if np.isfinite(value) and abs(value) > 0.6 else "black"
        axes.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=SMALL_FONT, color=colour)
