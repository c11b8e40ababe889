"""Use an exported model: predict files, evaluate on a corpus split, run its .tflite files.

`load` loads the export's main SavedModel, which holds core TensorFlow ops only (no tensorflow-io op
library to register). Files are decoded here, on the client side, by `audio.read` (every format the
training pipeline reads), and only waveforms go through the model's `serving_default`.

Precision of a class the model never predicted and recall of a class with no clips are 0/0: they are
reported as None ("-" in text), not as 0, so an empty column is not mistaken for a bad one.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from tuner_app import outputs
from tuner_app.data import audio, cache, corpus
from tuner_app.errors import TunerAppError, storage_errors
from tuner_app.files import atomic_path
from tuner_app.serving import export_checks, runtimes

METADATA = "tuner_app.json"  # the same name export.py writes
BATCH_SIZE = 64


@dataclasses.dataclass(frozen=True)
class Loaded:
    """An exported model: the SavedModel, its tuner_app.json, and the class names in model order."""

    path: Path
    saved_model: Any
    metadata: dict[str, Any]
    class_names: tuple[str, ...]
    scorer: Callable[[np.ndarray], np.ndarray] | None = None  # another runtime than the SavedModel (runtimes.py)

    def probabilities(self, waveforms: np.ndarray) -> np.ndarray:
        """serving_default (or the runtime's model) on float32 [n, 16000] 16 kHz waveforms: [n, n_classes]."""
        if self.scorer is not None:
            return self.scorer(np.asarray(waveforms, np.float32)).reshape(len(waveforms), len(self.class_names))
        serve = self.saved_model.signatures["serving_default"]
        waveforms = np.asarray(waveforms, np.float32)
        parts = [serve(waveform=tf.constant(waveforms[start:start + BATCH_SIZE]))["probabilities"].numpy()
                 for start in range(0, len(waveforms), BATCH_SIZE)]
        return np.concatenate(parts) if parts else np.zeros([0, len(self.class_names)], np.float32)


def load(model_dir: str | os.PathLike, runtime: str = "saved_model") -> Loaded:
    """Load an export directory written by `tuner-app export`, its tuner_app.json checked against its model;
    TunerAppError names the path (and the field) otherwise. `runtime` picks the model that scores
    (runtimes.RUNTIMES: the SavedModel, a .tflite in LiteRT, the int8 features-in model in LiteRT or TFLM)."""
    path = Path(model_dir).expanduser()
    if not (path / METADATA).is_file() or not (path / "saved_model.pb").is_file():
        raise TunerAppError(f"{path}: not a tuner-app export (needs {METADATA} and saved_model.pb)")
    try:
        metadata = json.loads((path / METADATA).read_text(encoding="utf-8"))
        class_names = tuple(metadata["class_names"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise TunerAppError(f"{path / METADATA}: cannot read the export's metadata ({err})") from None
    try:
        saved_model = tf.saved_model.load(str(path))
    except (OSError, ValueError, tf.errors.OpError) as err:
        raise TunerAppError(f"{path}: cannot load the SavedModel ({str(err).splitlines()[0]})") from None
    class_names = export_checks.check(path / METADATA, metadata, export_checks.model_facts(path, saved_model))
    return Loaded(path, saved_model, metadata, class_names, runtimes.scorer(path, metadata, runtime))


def predict_files(loaded: Loaded, paths: Sequence[str | os.PathLike], top_k: int = 3) -> list[dict[str, Any]]:
    """Per file, in order: {"file", "top": [{"label", "probability"}, ...]} or {"file", "error": one line}."""
    entries, clips, readable = [], [], []
    for path in paths:
        entries.append({"file": str(path)})
        try:
            clips.append(_read_checked(path))
            readable.append(len(entries) - 1)
        except TunerAppError as err:
            entries[-1]["error"] = " ".join(str(err).split())
    probabilities = loaded.probabilities(np.stack(clips)) if clips else []
    for index, row in zip(readable, probabilities):
        best = np.argsort(-row, kind="stable")[:top_k]
        entries[index]["top"] = [{"label": loaded.class_names[i], "probability": float(row[i])} for i in best]
    return entries


def _read_checked(path: str | os.PathLike) -> np.ndarray:
    """audio.read, then refusing a WAV cut short as `data prepare` does: the model would answer on what is
    left. (A file that does not decode keeps the decoder's reason.)"""
    clip = audio.read(path)
    reason = cache.wav_truncation(path)
    if reason:
        raise TunerAppError(f"{path}: {reason}")
    return clip


def format_predictions(entries: Sequence[dict[str, Any]]) -> str:
    """One line per answered file: `file: label 0.912, label 0.051, ...` (errors go to stderr)."""
    lines = []
    for entry in entries:
        if "top" in entry:
            labels = ", ".join(f"{item['label']} {item['probability']:.3f}" for item in entry["top"])
            lines.append(f"{entry['file']}: {labels}")
    return "\n".join(lines)


@dataclasses.dataclass
class Evaluation:
    """Scores of a model on one split. confusion[true, predicted] counts clips, in the model's class order.

    `unknown` counts clips of classes the model does not know (not scored); `skipped` names unreadable files.
    """

    data_dir: str
    split: str
    class_names: list[str]
    confusion: np.ndarray
    unknown: dict[str, int]
    skipped: list[str]

    @property
    def clips(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float | None:
        return float(np.trace(self.confusion) / self.clips) if self.clips else None

    def precision(self) -> list[float | None]:
        return _ratios(np.diag(self.confusion), self.confusion.sum(axis=0))

    def recall(self) -> list[float | None]:
        return _ratios(np.diag(self.confusion), self.confusion.sum(axis=1))

    def to_dict(self) -> dict[str, Any]:
        support = self.confusion.sum(axis=1)
        per_class = [{"label": name, "precision": p, "recall": r, "support": int(n)}
                     for name, p, r, n in zip(self.class_names, self.precision(), self.recall(), support)]
        return {"data": self.data_dir, "split": self.split, "clips": self.clips, "accuracy": self.accuracy,
                "per_class": per_class, "class_names": self.class_names,
                "confusion": self.confusion.tolist(), "unknown_classes": self.unknown, "skipped": self.skipped}


def _ratios(numerators: np.ndarray, denominators: np.ndarray) -> list[float | None]:
    return [float(n / d) if d else None for n, d in zip(numerators, denominators)]


def _model_classes_present(data_dir: Path, class_names: Sequence[str]) -> list[str]:
    """The model's classes that have a folder with audio in data_dir."""
    def has_audio(folder: Path) -> bool:
        return folder.is_dir() and any(p.suffix.lower() in corpus.AUDIO_SUFFIXES for p in folder.iterdir())

    present = [name for name in class_names if has_audio(data_dir / name)]
    if not present:
        raise TunerAppError(f"{data_dir}: no folder with audio for any of the model's classes "
                            f"({', '.join(class_names)})")
    return present


def evaluate(loaded: Loaded, data_dir: str | os.PathLike, split: str = "test",
             classes: Sequence[str] | None = None) -> Evaluation:
    """Score the model on one split of a corpus; corpus labels map to the model's classes by name.

    `classes` defaults to the model's classes that have a folder in data_dir.
    """
    data_dir = Path(data_dir).expanduser()
    found = corpus.scan(data_dir, classes or _model_classes_present(data_dir, loaded.class_names))
    model_ids = {name: index for index, name in enumerate(loaded.class_names)}
    clips = found.split(split)
    known = [clip for clip in clips if clip.label in model_ids]
    unknown = Counter(clip.label for clip in clips if clip.label not in model_ids)
    decoded = cache.decode_clips([str(clip.path) for clip in known], [model_ids[clip.label] for clip in known])
    predicted = loaded.probabilities(decoded.waveforms).argmax(axis=1)
    return Evaluation(str(data_dir), split, list(loaded.class_names),
                      confusion_matrix(decoded.labels, predicted, len(loaded.class_names)),
                      dict(sorted(unknown.items())), list(decoded.skipped))


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[true, predicted] as int64 [n_classes, n_classes]."""
    counts = np.zeros([n_classes, n_classes], np.int64)
    np.add.at(counts, (np.asarray(labels, np.int64), np.asarray(predicted, np.int64)), 1)
    return counts


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_evaluation(evaluation: Evaluation) -> str:
    """Accuracy, per-class precision/recall/support and the confusion matrix as text."""
    names, matrix = evaluation.class_names, evaluation.confusion
    width = max(len(name) for name in names)
    lines = [f"{evaluation.split} split of {evaluation.data_dir}: {evaluation.clips} clips, "
             f"accuracy {_score(evaluation.accuracy)}"]
    if evaluation.unknown:
        lines.append("not scored, class unknown to the model: "
                     + ", ".join(f"{label} ({n} clips)" for label, n in evaluation.unknown.items()))
    if evaluation.skipped:
        lines.append(f"skipped {len(evaluation.skipped)} unreadable file(s): {', '.join(evaluation.skipped)}")
    lines.append(f"{'class':<{width}}  precision  recall  support")
    for name, precision, recall, support in zip(names, evaluation.precision(), evaluation.recall(), matrix.sum(1)):
        lines.append(f"{name:<{width}}  {_score(precision):>9}  {_score(recall):>6}  {support:>7}")
    lines.append("confusion matrix (rows: true class, columns: predicted class, numbered as the rows)")
    lines.append(" " * (width + 4) + "".join(f"{index:>5}" for index in range(len(names))))
    for index, (name, row) in enumerate(zip(names, matrix)):
        lines.append(f"{index:>2} {name:<{width}} " + "".join(f"{count:>5}" for count in row))
    return "\n".join(lines)


def write_confusion_png(evaluation: Evaluation, path: str | os.PathLike) -> Path:
    """The confusion matrix as a labelled heat map with the count in every cell, written whole or not at all."""
    from matplotlib.backends.backend_agg import (
        FigureCanvasAgg,  # Agg: no display needed
    )
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    names, matrix = evaluation.class_names, evaluation.confusion
    size = 2 + 0.45 * len(names)
    figure = Figure(figsize=(size + 1, size))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, label="clips").ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xticks(range(len(names)), names, rotation=90)
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(f"{evaluation.split}: accuracy {_score(evaluation.accuracy)} on {evaluation.clips} clips")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        if count:
            axes.text(column, row, str(count), ha="center", va="center", fontsize=7,
                      color="white" if count > threshold else "black")
    figure.tight_layout()
    path = Path(path)
    with storage_errors(path, "--out"), atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=120, format=path.suffix.lstrip(".").lower() or "png",
                       metadata=outputs.figure_metadata(path))  # how a rerun knows its figure (outputs.py)
    return path
