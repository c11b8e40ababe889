"""What every `visualize` figure shares: fixed pixel sizes, the Agg canvas, and axes in seconds and Hz.

Figures have fixed sizes in pixels (no tight bounding box) so that a page of them lines up and a test can
check them. A block's map has fewer rows and columns than the features it came from: its columns are spread
evenly over the 1-s clip and its rows over the input's frequency axis, interpolated at fractional rows so
that non-uniform (mel) spacing is drawn right by pcolormesh's cell edges.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np

from tuner_app.constants import CLIP_SAMPLES, SAMPLE_RATE
from tuner_app.features.frontend import FeatureAxes
from tuner_app import outputs
from tuner_app.files import atomic_path

DPI = 100
# (width, height) in pixels of each kind of figure.
FILTERS_SIZE = (1000, 800)
FEATURE_MAP_SIZE = (1200, 560)
SALIENCY_SIZE = (1100, 420)
SIZES_SIZE = (1100, 600)
CLIP_SECONDS = CLIP_SAMPLES / SAMPLE_RATE
CHANNEL_LABEL = "channel"
TIME_LABEL = "time (s)"
HZ_LABEL = "frequency (Hz)"
SMALL_FONT = 7
TICKS = 4


@dataclasses.dataclass(frozen=True)
class Written:
    """A figure file and the caption the HTML report puts under it."""

    path: Path
    caption: str


def new_figure(size: tuple[int, int]):
    """A matplotlib Figure of `size` pixels on an Agg canvas (no pyplot, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def save_png(figure, path: str | Path) -> Path:
    """Write `figure` as a PNG of exactly its pixel size, whole or not at all, over none but tuner-app's own."""
    path = Path(path)
    outputs.check_replaceable_file(path, "--out", outputs.figure_is_ours, "a figure")
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=DPI, format="png", metadata=outputs.figure_metadata(path))
    return path


def file_stem(text: str) -> str:
    """`text` safe as part of a file name (class and block names come from the user's data)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "_"


def interpolated(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """`values` read at fractional indices, linear between neighbours and extrapolated past both ends."""
    values = np.asarray(values, float)
    if len(values) == 1:
        return np.full(len(positions), values[0])
    inside = np.interp(positions, np.arange(len(values)), values)
    below = values[0] + positions * (values[1] - values[0])
    above = values[-1] + (positions - (len(values) - 1)) * (values[-1] - values[-2])
    return np.where(positions < 0, below, np.where(positions > len(values) - 1, above, inside))


def frequency_edges(rows: int, axes: FeatureAxes) -> np.ndarray:
    """rows + 1 cell edges of a map with `rows` rows spread over the features' frequency rows."""
    bins = len(axes.frequencies)
    edges = interpolated(axes.frequencies, np.arange(rows + 1) * bins / rows - 0.5)
    return np.maximum(edges, 0.0) if axes.frequency_label == HZ_LABEL else edges


def map_time_edges(columns: int) -> np.ndarray:
    """columns + 1 cell edges of a block's map: its columns spread evenly over the clip."""
    return np.linspace(0.0, CLIP_SECONDS, columns + 1)


def map_time_centres(columns: int) -> np.ndarray:
    edges = map_time_edges(columns)
    return (edges[:-1] + edges[1:]) / 2


def input_time_edges(axes: FeatureAxes) -> np.ndarray:
    """Cell edges of the features' frames, halfway between frame centres, kept inside the clip."""
    return np.clip(interpolated(axes.times, np.arange(len(axes.times) + 1) - 0.5), 0.0, CLIP_SECONDS)


def draw_input(axes, features: np.ndarray, feature_axes: FeatureAxes, title: str = "input") -> Any:
    """The features the model reads: a spectrogram (seconds x Hz or MFCC index) or a waveform."""
    features = np.asarray(features, float)
    if feature_axes.frequencies is None:
        axes.plot(feature_axes.times, features.reshape(-1), linewidth=0.5, color="0.2")
        axes.set_xlim(0.0, CLIP_SECONDS)
        label_axes(axes, title, "amplitude")
        return None
    # Percentile limits: MFCC 0 (energy) or a padded clip's silence would otherwise take the whole colour range.
    low, high = np.percentile(features, [1, 99])
    mesh = axes.pcolormesh(input_time_edges(feature_axes), frequency_edges(features.shape[0], feature_axes),
                           features[..., 0], cmap="magma", shading="flat", vmin=low, vmax=high)
    axes.set_xlim(0.0, CLIP_SECONDS)  # the first and last frame centres are not the clip's ends
    label_axes(axes, title, feature_axes.frequency_label)
    return mesh


def draw_map_2d(axes, channel_map: np.ndarray, feature_axes: FeatureAxes, title: str) -> Any:
    """One (freq, time) map over the clip's seconds and the input's frequency axis."""
    rows, columns = channel_map.shape
    mesh = axes.pcolormesh(map_time_edges(columns), frequency_edges(rows, feature_axes), channel_map,
                           cmap="viridis", shading="flat")
    label_axes(axes, title, feature_axes.frequency_label)
    return mesh


def draw_channels_1d(axes, time_map: np.ndarray, title: str) -> Any:
    """A (time, channels) map as channels x seconds: its channels are learned, not frequencies. An image, not
    a mesh: thousands of columns are then averaged into the pixels instead of aliased."""
    channels = time_map.shape[1]
    image = axes.imshow(time_map.T, cmap="viridis", origin="lower", aspect="auto", interpolation="antialiased",
                        extent=(0.0, CLIP_SECONDS, -0.5, channels - 0.5))
    label_axes(axes, title, CHANNEL_LABEL)
    return image


def label_axes(axes, title: str, ylabel: str, xlabel: str = TIME_LABEL) -> None:
    # A title at a fixed height spares matplotlib measuring every tick label at each draw (a third of the time).
    axes.set_title(title, fontsize=SMALL_FONT + 1, y=1.0)
    axes.set_xlabel(xlabel, fontsize=SMALL_FONT)
    axes.set_ylabel(ylabel, fontsize=SMALL_FONT)
    axes.tick_params(labelsize=SMALL_FONT)
    axes.locator_params(nbins=TICKS)  # fewer tick labels to lay out: small panels read better, and draw faster


def symmetric_limits(values: np.ndarray) -> tuple[float, float]:
    """(-m, m) around 0 for a diverging colour map; (-1, 1) for all zeros."""
    largest = float(np.max(np.abs(values))) if np.size(values) else 0.0
    largest = largest if largest > 0 and np.isfinite(largest) else 1.0
    return -largest, largest
