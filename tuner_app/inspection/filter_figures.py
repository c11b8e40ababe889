"""Figures of a model's weights: its first layer's filters, its first depthwise layer's per-channel kernels,
and where its parameters and MACs sit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tuner_app.constants import SAMPLE_RATE
from tuner_app.features.frontend import FeatureAxes, feature_axes
from tuner_app.inspection import figures
from tuner_app.inspection.figures import SMALL_FONT
from tuner_app.model.architecture import spec
from tuner_app.model.architecture.configured import FC_KINDS

if TYPE_CHECKING:  # loads TensorFlow
    from tuner_app.inspection.source import Inspected

MAX_WAVEFORM_KERNELS = 16
MAX_GRID_KERNELS = 32
GRID_COLUMNS = 8
WAVEFORM_COLUMNS = 4
RESPONSE_POINTS = 512  # FFT length of a kernel's frequency response
RESPONSE_FLOOR_DB = 60.0  # how far below its peak a response is drawn


def _is_conv(layer) -> bool:
    import keras

    return isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, *_depthwise_types()))


def _depthwise_types() -> tuple[type, ...]:
    import keras

    return keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D


def first_conv_layer(model) -> Any | None:
    """The first Conv1D, Conv2D or depthwise conv of the model, in layer order; None without one."""
    return next((layer for layer in model.layers if _is_conv(layer)), None)


def first_depthwise_layer(model) -> Any | None:
    return next((layer for layer in model.layers if isinstance(layer, _depthwise_types())), None)


def filters_figure(inspected: Inspected) -> Any | None:
    """The first conv layer's kernels: on a 1-channel waveform each kernel's taps and frequency response, on
    many channels each kernel as an image (input channel by tap), in 2D a grid of kernels (freq x time)."""
    layer = first_conv_layer(inspected.model)
    if layer is None:
        return None
    if isinstance(layer, _depthwise_types()):
        return depthwise_figure(inspected)
    kernel = np.asarray(layer.get_weights()[0])
    if kernel.ndim == 4:
        return _kernel_grid(np.moveaxis(kernel[:, :, 0, :], -1, 0), "kernel",
                            f"{layer.name}: {_count(kernel.shape[-1])} kernels, freq × time, input channel 0")
    if kernel.shape[1] == 1 and inspected.frontend.kind == "waveform":
        return _waveform_kernels(kernel[:, 0, :], layer)
    return _channel_kernels(kernel, layer, feature_axes(inspected.frontend))


def depthwise_figure(inspected: Inspected) -> Any | None:
    """The first depthwise layer's kernel of each channel (up to MAX_GRID_KERNELS); None without one."""
    layer = first_depthwise_layer(inspected.model)
    if layer is None:
        return None
    kernel = np.asarray(layer.get_weights()[0])
    kernel = kernel[None] if kernel.ndim == 3 else kernel  # DepthwiseConv1D: one row of taps
    per_channel = np.moveaxis(kernel[:, :, :, 0], -1, 0)
    return _kernel_grid(per_channel, "channel", f"{layer.name} (depthwise): one kernel per channel, "
                                     f"{_count(len(per_channel))} channels, freq × time")


def _count(total: int, shown: int = MAX_GRID_KERNELS) -> str:
    return f"{total}" if total <= shown else f"first {shown} of {total}"


def _kernel_grid(kernels: np.ndarray, each: str, title: str):
    """kernels [n, freq taps, time taps] as a grid of images on one symmetric colour scale, titled `each` i."""
    kernels = kernels[:MAX_GRID_KERNELS]
    figure = figures.new_figure(figures.FILTERS_SIZE)
    panels = _panels(figure, len(kernels), GRID_COLUMNS)
    low, high = figures.symmetric_limits(kernels)
    for index, axes in enumerate(panels):
        image = axes.imshow(kernels[index], cmap="RdBu_r", vmin=low, vmax=high, origin="lower", aspect="auto")
        axes.set_title(f"{each} {index}", fontsize=SMALL_FONT, y=1.0)
        axes.set_xticks([])
        axes.set_yticks([])
    corner = panels[(len(panels) - 1) // GRID_COLUMNS * GRID_COLUMNS]  # the last row's first
    corner.set_ylabel("freq tap", fontsize=SMALL_FONT)
    corner.set_xlabel("time tap", fontsize=SMALL_FONT)
    return _finished(figure, image, title)


def _panels(figure, count: int, columns: int) -> list:
    """`count` axes on a grid `columns` wide, row by row; the grid's unused cells are hidden."""
    grid = figure.subplots(-(-count // columns), columns, squeeze=False)
    for axes in grid.flat[count:]:
        axes.set_axis_off()
    figure.subplots_adjust(hspace=0.35, top=0.9)
    return list(grid.flat[:count])


def _finished(figure, mappable, title: str):
    """One weight colour bar for every panel (they share the scale), and the title."""
    figure.colorbar(mappable, ax=figure.axes, shrink=0.6, label="weight")
    figure.suptitle(title, fontsize=SMALL_FONT + 3)
    return figure


def _waveform_kernels(taps: np.ndarray, layer):
    """taps [taps, kernels]: each kernel's taps over ms above its |FFT| in dB over Hz (16 kHz at the first
    layer)."""
    taps = taps[:, :MAX_WAVEFORM_KERNELS]
    figure = figures.new_figure(figures.FILTERS_SIZE)
    layout = figure.add_gridspec(-(-taps.shape[1] // WAVEFORM_COLUMNS), WAVEFORM_COLUMNS, hspace=0.4, wspace=0.4,
                                 top=0.9, bottom=0.07, left=0.07, right=0.98)
    seconds_per_tap = layer.dilation_rate[0] / SAMPLE_RATE
    hertz = np.fft.rfftfreq(RESPONSE_POINTS, d=seconds_per_tap)
    for index in range(taps.shape[1]):
        cell = layout[index // WAVEFORM_COLUMNS, index % WAVEFORM_COLUMNS].subgridspec(2, 1, hspace=0.7)
        _draw_taps(figure.add_subplot(cell[0]), taps[:, index], 1000.0 * seconds_per_tap, index)
        _draw_response(figure.add_subplot(cell[1]), taps[:, index], hertz)
    figure.suptitle(f"{layer.name}: {_count(layer.filters, MAX_WAVEFORM_KERNELS)} kernels on the waveform: "
                    "taps and frequency response", fontsize=SMALL_FONT + 3)
    return figure


def _draw_taps(axes, taps: np.ndarray, step_ms: float, index: int) -> None:
    axes.plot(np.arange(len(taps)) * step_ms, taps, marker=".", markersize=2, linewidth=0.8)
    axes.axhline(0.0, color="0.7", linewidth=0.5)
    figures.label_axes(axes, f"kernel {index}", "weight", "time (ms)")


def _draw_response(axes, taps: np.ndarray, hertz: np.ndarray) -> None:
    decibels = 20 * np.log10(np.maximum(np.abs(np.fft.rfft(taps, RESPONSE_POINTS)), 1e-12))
    axes.plot(hertz, decibels, linewidth=0.8, color="tab:red")
    axes.set_ylim(decibels.max() - RESPONSE_FLOOR_DB, decibels.max() + 3)
    figures.label_axes(axes, "", "|FFT| (dB)", figures.HZ_LABEL)


def _channel_kernels(kernel: np.ndarray, layer, axes_of_input: FeatureAxes):
    """kernel [taps, input channels, n] of a Conv1D over many channels (TC-ResNet: the channels are the
    front-end's frequency rows): each kernel as input channel by tap time."""
    taps, channels, count = kernel.shape
    frequency_rows = axes_of_input.frequencies is not None and channels == len(axes_of_input.frequencies)
    row_edges = figures.frequency_edges(channels, axes_of_input) if frequency_rows else np.arange(channels + 1) - .5
    time_edges = (np.arange(taps + 1) - 0.5) * 1000.0 * _frame_seconds(axes_of_input) * layer.dilation_rate[0]
    ylabel = axes_of_input.frequency_label if frequency_rows else "input channel"
    figure = figures.new_figure(figures.FILTERS_SIZE)
    panels = _panels(figure, min(count, MAX_WAVEFORM_KERNELS), WAVEFORM_COLUMNS)
    low, high = figures.symmetric_limits(kernel)
    for index, axes in enumerate(panels):
        mesh = axes.pcolormesh(time_edges, row_edges, kernel[:, :, index].T, cmap="RdBu_r", vmin=low, vmax=high)
        last_row = index + WAVEFORM_COLUMNS >= len(panels)
        figures.label_axes(axes, f"kernel {index}", ylabel if index % WAVEFORM_COLUMNS == 0 else "",
                           "tap time (ms)" if last_row else "")
    return _finished(figure, mesh, f"{layer.name}: {_count(count, MAX_WAVEFORM_KERNELS)} kernels, "
                                   "input channel × tap")


def _frame_seconds(axes_of_input: FeatureAxes) -> float:
    times = np.asarray(axes_of_input.times)
    return float(times[1] - times[0]) if len(times) > 1 else figures.CLIP_SECONDS


def fc_share(walk: spec.Walk, measure: str = "params") -> float:
    """The fraction of the model's params (or macs) that sit in its dense (FC) rows; 0 for an empty model."""
    total = sum(getattr(row, measure) for row in walk.rows)
    dense = sum(getattr(row, measure) for row in walk.rows if row.kind in FC_KINDS)
    return dense / total if total else 0.0


def sizes_figure(walk: spec.Walk, model_name: str):
    """Per walk row its params and MACs as horizontal bars, dense rows in their own colour; the title says
    the FC layers' share of the params."""
    figure = figures.new_figure(figures.SIZES_SIZE)
    params_axes, macs_axes = figure.subplots(1, 2, sharey=True)
    names = [row.name for row in walk.rows]
    colours = ["tab:orange" if row.kind in FC_KINDS else "tab:blue" for row in walk.rows]
    for axes, measure, label in ((params_axes, "params", "parameters"), (macs_axes, "macs", "MACs per clip")):
        values = [getattr(row, measure) for row in walk.rows]
        bars = axes.barh(names, values, color=colours)
        axes.bar_label(bars, labels=[f"{value:,}" for value in values], fontsize=SMALL_FONT - 1, padding=2)
        axes.set_xlim(0, max(max(values), 1) * 1.3)
        axes.set_title(f"{label}: FC rows {100 * fc_share(walk, measure):.1f}% (orange)", fontsize=SMALL_FONT + 2)
        axes.tick_params(labelsize=SMALL_FONT)
    params_axes.invert_yaxis()
    figure.subplots_adjust(left=0.2, right=0.97, wspace=0.1)
    figure.suptitle(f"{model_name}: FC layers hold {100 * fc_share(walk):.1f}% of {walk.params_total:,} params",
                    fontsize=SMALL_FONT + 4)
    return figure
