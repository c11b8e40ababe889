"""Figures over one clip: a block's feature maps beside the input, and a class's saliency over the input.

Both are drawn on the clip's axes, time in seconds and frequency in Hz (or MFCC index), so a map, the
spectrogram and the saliency line up by eye.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tuner_app.features.frontend import FeatureAxes
from tuner_app.inspection import figures
from tuner_app.inspection.figures import SMALL_FONT
from tuner_app.inspection.saliency import METHOD_LABELS
from tuner_app.model.architecture import spec
from tuner_app.model.architecture.blocks import format_shape

MAX_CHANNELS = 8
CHANNEL_COLUMNS = 4
COMPUTING_RANKS = (2, 3)  # (time, ch) and (freq, time, ch) maps


def map_blocks(walk: spec.Walk) -> list[str]:
    """Blocks that compute a map: output (time, ch) or (freq, time, ch), and weights of their own (so no pool,
    flatten, dropout or frequency_as_channels, which only move values)."""
    return [row.name for row in walk.rows if len(row.output_shape) in COMPUTING_RANKS and row.params > 0]


def strongest_channels(block_map: np.ndarray, count: int = MAX_CHANNELS) -> list[int]:
    """The `count` channels with the largest mean activation over the map, largest first."""
    means = block_map.reshape(-1, block_map.shape[-1]).mean(axis=0)
    return [int(channel) for channel in np.argsort(-means, kind="stable")[:count]]


def feature_maps_figure(block: str, features: np.ndarray, block_map: np.ndarray, feature_axes: FeatureAxes):
    """One clip's input (left, above), all channels at a glance (left, below: the mean over channels of a 2D
    map, every channel of a 1D one) and the strongest channels, each on the clip's seconds (and Hz)."""
    figure = figures.new_figure(figures.FEATURE_MAP_SIZE)
    layout = figure.add_gridspec(2, 1 + CHANNEL_COLUMNS, width_ratios=[1.4] + [1] * CHANNEL_COLUMNS)
    figures.draw_input(figure.add_subplot(layout[0, 0]), features, feature_axes)
    overview = figure.add_subplot(layout[1, 0])
    if block_map.ndim == 3:
        figures.draw_map_2d(overview, block_map.mean(axis=-1), feature_axes, "mean over channels")
    else:
        figures.draw_channels_1d(overview, block_map, f"all {block_map.shape[-1]} channels")
    for index, channel in enumerate(strongest_channels(block_map)):
        axes = figure.add_subplot(layout[index // CHANNEL_COLUMNS, 1 + index % CHANNEL_COLUMNS])
        _draw_channel(axes, block_map[..., channel], feature_axes, f"channel {channel}")
        _outer_labels_only(axes, index, block_map.ndim == 3)
    figure.subplots_adjust(left=0.05, right=0.98, top=0.88, bottom=0.09, wspace=0.3, hspace=0.3)
    figure.suptitle(f"{block}: feature maps {format_shape(block_map.shape)}, the {_shown(block_map)} "
                    "channels with the largest mean activation", fontsize=SMALL_FONT + 4)
    return figure


def _shown(block_map: np.ndarray) -> str:
    return str(min(MAX_CHANNELS, block_map.shape[-1]))


def _outer_labels_only(axes, index: int, two_d: bool) -> None:
    """Channel panels share the clip's seconds (and, in 2D, the frequency axis): label them on the outside
    only, which also saves drawing a third of the figure's text."""
    if index < CHANNEL_COLUMNS:
        axes.tick_params(labelbottom=False)
        axes.set_xlabel("")
    if two_d and index % CHANNEL_COLUMNS:
        axes.tick_params(labelleft=False)
        axes.set_ylabel("")


def _draw_channel(axes, channel_map: np.ndarray, feature_axes: FeatureAxes, title: str) -> None:
    if channel_map.ndim == 2:
        figures.draw_map_2d(axes, channel_map, feature_axes, title)
        return
    axes.plot(figures.map_time_centres(len(channel_map)), channel_map, linewidth=0.8)
    axes.set_xlim(0.0, figures.CLIP_SECONDS)
    figures.label_axes(axes, title, "activation")


def saliency_figure(features: np.ndarray, saliency: np.ndarray, feature_axes: FeatureAxes, class_name: str,
                    probability: float, method: str):
    """The input, the class's saliency over it on the same axes (red raises the class's probability, blue
    lowers it) and, for spectral inputs, how much saliency each frequency row holds."""
    figure = figures.new_figure(figures.SALIENCY_SIZE)
    spectral = feature_axes.frequencies is not None
    panels = figure.subplots(1, 3 if spectral else 2, width_ratios=[1, 1.2, 0.5] if spectral else [1, 1])
    figures.draw_input(panels[0], features, feature_axes)
    mesh = _draw_saliency(panels[1], saliency, feature_axes)
    if mesh is not None:
        figure.colorbar(mesh, ax=panels[1], label="saliency")
    if spectral:
        _draw_band_profile(panels[2], saliency, feature_axes)
    figure.subplots_adjust(left=0.06, right=0.98, top=0.82, bottom=0.13, wspace=0.45)
    figure.suptitle(f"saliency of class {class_name!r} (p = {probability:.3f}) by {METHOD_LABELS[method]}",
                    fontsize=SMALL_FONT + 4)
    return figure


def _draw_saliency(axes, saliency: np.ndarray, feature_axes: FeatureAxes) -> Any:
    limits = figures.symmetric_limits(saliency)
    if feature_axes.frequencies is None:
        axes.plot(feature_axes.times, saliency.reshape(-1), linewidth=0.5, color="tab:red")
        axes.set_ylim(*limits)
        axes.set_xlim(0.0, figures.CLIP_SECONDS)
        figures.label_axes(axes, "saliency over the waveform", "saliency")
        return None
    mesh = axes.pcolormesh(figures.input_time_edges(feature_axes),
                           figures.frequency_edges(saliency.shape[0], feature_axes), saliency[..., 0],
                           cmap="RdBu_r", vmin=limits[0], vmax=limits[1], shading="flat")
    axes.set_xlim(0.0, figures.CLIP_SECONDS)
    figures.label_axes(axes, "saliency over the input", feature_axes.frequency_label)
    return mesh


def _draw_band_profile(axes, saliency: np.ndarray, feature_axes: FeatureAxes) -> None:
    """|saliency| summed over time per frequency row, drawn against the same frequency axis."""
    profile = np.abs(saliency[..., 0]).sum(axis=1)
    edges = figures.frequency_edges(len(profile), feature_axes)
    axes.stairs(profile, edges, orientation="horizontal", fill=True, color="tab:red", alpha=0.6)
    axes.set_ylim(edges[0], edges[-1])
    figures.label_axes(axes, "|saliency| per row", "", "sum over time")  # the saliency panel's rows
