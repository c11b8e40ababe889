"""`tuner-app visualize`: every figure of one model for one clip, and optionally one self-contained HTML page.

Figures, in order: the first layer's filters (`filters.png`), the first depthwise layer's kernels
(`filters_depthwise.png`, where the model has one), each computing block's feature maps
(`feature_maps_<block>.png`), the saliency of the predicted class and of each asked class
(`saliency_<class>.png`), and where the parameters and MACs sit (`sizes.png`).
"""

from __future__ import annotations

import base64
import html as html_text
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tuner_app.constants import CLIP_SAMPLES
from tuner_app.errors import TunerAppError, storage_errors
from tuner_app.features.frontend import feature_axes
from tuner_app import outputs
from tuner_app.files import atomic_path
from tuner_app.inspection import filter_figures, map_figures, saliency
from tuner_app.inspection.figures import Written, file_stem, save_png

if TYPE_CHECKING:  # the source and probe modules load TensorFlow: imported where the model runs
    from tuner_app.inspection.source import Inspected

REPORT_FILE = "report.html"
GENERATOR = f'<meta name="generator" content="{outputs.MARK}">'  # how a rerun knows its report
TOP_CLASSES = 3
PAGE_STYLE = ("body{font-family:sans-serif;margin:2em}th{text-align:left;padding-right:1em}"
              "img{max-width:100%}figure{margin:2em 0}figcaption{color:#444}")


def visualize(inspected: Inspected, waveform: np.ndarray, out_dir: str | os.PathLike, *, classes: Sequence[str] = (),
              method: str = "gradient_x_input", html: bool = False, clip_name: str = "clip") -> list[Path]:
    """Write every figure of `inspected` for one clip [16000] into out_dir (created), and with `html` also
    report.html; `classes` (names or indices as text) get a saliency figure after the predicted class's.
    Returns the paths written, in order; each is written whole or not at all."""
    saliency.check_method(method)
    waveform = _checked_clip(waveform)
    asked = [class_index(inspected.class_names, text) for text in classes]
    out_dir = Path(out_dir)
    with storage_errors(out_dir, "--out"):
        out_dir.mkdir(parents=True, exist_ok=True)
        features_model, features, maps, probabilities = _run_clip(inspected, waveform)
        written = [*_weight_figures(inspected, out_dir),
                   *_map_figures(inspected, features, maps, out_dir, clip_name),
                   *_saliency_figures(inspected, features_model, features, probabilities, asked, method, out_dir),
                   _sizes_figure(inspected, out_dir)]
        paths = [item.path for item in written]
        if html:
            paths.append(write_html(inspected, written, probabilities, clip_name, out_dir / REPORT_FILE))
    return paths


def _run_clip(inspected: Inspected, waveform: np.ndarray):
    """(the features model, the clip's features, {each map block: its output}, the class probabilities), all
    without a batch axis."""
    from tuner_app.inspection import probe

    features_model = probe.features_model(inspected)
    names = [probe.FRONTEND, *map_figures.map_blocks(inspected.walk)]
    outputs = probe.layer_outputs(inspected, waveform[None], names, features=features_model)
    maps = {name: values[0] for name, values in outputs.items()}
    features = maps.pop(probe.FRONTEND)
    probabilities = np.asarray(features_model(features[None], training=False))[0]
    return features_model, features, maps, probabilities


def _checked_clip(waveform: np.ndarray) -> np.ndarray:
    clip = np.asarray(waveform, np.float32)
    clip = clip.reshape(-1) if clip.ndim == 2 and 1 in clip.shape else clip
    if clip.shape != (CLIP_SAMPLES,):
        raise TunerAppError(f"--input: expected one {CLIP_SAMPLES}-sample clip, got shape {clip.shape}")
    return clip


def class_index(class_names: Sequence[str], text: str) -> int:
    """The index of class `text`, given by name or by index; TunerAppError naming --class otherwise."""
    text = str(text)
    if text in class_names:
        return list(class_names).index(text)
    if text.isdigit() and int(text) < len(class_names):
        return int(text)
    raise TunerAppError(f"--class: {text!r} is not one of the model's classes: {', '.join(class_names)} "
                        f"(or an index 0-{len(class_names) - 1})")


def _weight_figures(inspected: Inspected, out_dir: Path) -> list[Written]:
    first = filter_figures.first_conv_layer(inspected.model)
    depthwise = filter_figures.first_depthwise_layer(inspected.model)
    written = []
    if first is not None:
        written.append(Written(save_png(filter_figures.filters_figure(inspected), out_dir / "filters.png"),
                               f"The first convolution's kernels ({first.name}): what it looks for in its input."))
    if depthwise is not None and depthwise is not first:
        path = save_png(filter_figures.depthwise_figure(inspected), out_dir / "filters_depthwise.png")
        written.append(Written(path, f"The first depthwise convolution ({depthwise.name}): each channel's own "
                                     "kernel, frequency × time."))
    return written


def _map_figures(inspected: Inspected, features: np.ndarray, maps: dict[str, np.ndarray], out_dir: Path,
                 clip_name: str) -> list[Written]:
    axes, written = feature_axes(inspected.frontend), []
    for block, block_map in maps.items():
        figure = map_figures.feature_maps_figure(block, features, block_map, axes)
        path = save_png(figure, out_dir / f"feature_maps_{file_stem(block)}.png")
        written.append(Written(path, f"Feature maps of {block} for {clip_name}, beside the input: the channels "
                                     "with the largest mean activation, over the clip's seconds (and Hz)."))
    return written


def _saliency_figures(inspected: Inspected, features_model, features: np.ndarray, probabilities: np.ndarray,
                      asked: Sequence[int], method: str, out_dir: Path) -> list[Written]:
    predicted = int(np.argmax(probabilities))
    baseline = saliency.silence_baseline(inspected) if method == "integrated_gradients" else None
    axes, written = feature_axes(inspected.frontend), []
    for index in dict.fromkeys([predicted, *asked]):
        name, probability = inspected.class_names[index], float(probabilities[index])
        values = saliency.saliency_map(features_model, features, index, method, baseline)
        figure = map_figures.saliency_figure(features, values, axes, name, probability, method)
        why = "the predicted class" if index == predicted else "asked with --class"
        written.append(Written(save_png(figure, out_dir / f"saliency_{file_stem(name)}.png"),
                               f"Saliency of class {name!r} ({why}, p = {probability:.3f}) over the input, by "
                               f"{saliency.METHOD_LABELS[method]}: red cells raise its probability, blue lower it."))
    return written


def _sizes_figure(inspected: Inspected, out_dir: Path) -> Written:
    walk = inspected.walk
    path = save_png(filter_figures.sizes_figure(walk, inspected.name), out_dir / "sizes.png")
    share = 100 * filter_figures.fc_share(walk)
    return Written(path, f"Where the parameters and the compute sit: params and MACs per block. FC (dense) "
                         f"layers hold {share:.1f}% of the {walk.params_total:,} params.")


def write_html(inspected: Inspected, written: Sequence[Written], probabilities: np.ndarray, clip_name: str,
               path: Path) -> Path:
    """One self-contained page: the model, the clip, its top predictions and every figure inlined as PNG."""
    walk, escape = inspected.walk, html_text.escape
    facts = [("origin", inspected.origin), ("parameters", f"{walk.params_total:,}"),
             ("MACs per clip", f"{walk.macs:,}"), ("front-end", inspected.frontend.kind), ("clip", clip_name),
             ("prediction", _top_classes(inspected.class_names, probabilities))]
    rows = "\n".join(f"<tr><th>{escape(key)}</th><td>{escape(value)}</td></tr>" for key, value in facts)
    body = "\n".join(_html_figure(item) for item in written)
    head = (f"<meta charset=\"utf-8\">{GENERATOR}<title>{escape(inspected.name)}: {escape(clip_name)}</title>\n"
            f"<style>{PAGE_STYLE}</style>")
    outputs.check_replaceable_file(path, "--out", outputs.head_holds(GENERATOR), "a report")
    with atomic_path(path) as temporary:
        temporary.write_text(f"<!DOCTYPE html>\n<html><head>{head}</head>\n<body>\n<h1>{escape(inspected.name)}</h1>\n"
                             f"<table>\n{rows}\n</table>\n{body}\n</body></html>\n", encoding="utf-8")
    return path


def _top_classes(class_names: Sequence[str], probabilities: np.ndarray) -> str:
    order = np.argsort(-probabilities, kind="stable")[:TOP_CLASSES]
    return ", ".join(f"{class_names[index]} {probabilities[index]:.3f}" for index in order)


def _html_figure(item: Written) -> str:
    data = base64.b64encode(item.path.read_bytes()).decode("ascii")
    caption = html_text.escape(item.caption)
    return (f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{html_text.escape(item.path.name)}\">"
            f"<figcaption>{caption}</figcaption></figure>")
