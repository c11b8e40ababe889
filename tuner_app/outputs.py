"""Where an output may go, and what it may replace: only what tuner-app wrote itself."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from tuner_app.errors import TunerAppError

# What an export directory holds (serving/export.py, tracking/mlflow_model.py, tflite.py): nothing else is replaced.
EXPORT_MARKERS = ("tuner_app.json", "MLmodel")
EXPORT_ENTRIES = frozenset({
    *EXPORT_MARKERS, "saved_model.pb", "fingerprint.pb", "variables", "assets", "any_format", "keras.weights.h5",
    "model.tflite", "model_int8.tflite", "model_int8_features.tflite", "requirements.txt", "python_env.yaml",
    "conda.yaml", "input_example.json", "serving_input_example.json", "registered_model_meta"})
# What marks the places tuner-app never writes into, by the files their writers leave (keras-tuner's project and
# trial files, search/record.py's SEARCH_RECORD; data/corpus.py's lists and noise folder, fsdd.py's SOURCE.txt
# beside them; MLflow's file-store metadata). A SQLite store is its file, given as `stores`, not the folder
# around it: `sqlite:///mlflow.db` in a project folder must not forbid every export under that folder.
SEARCH_FILES = ("oracle.json", "tuner_app_search.json")
TRIAL_FILES = ("trial.json",)
CORPUS_FILES = ("_background_noise_", "validation_list.txt", "testing_list.txt")
STORE_FILES = ("meta.yaml",)
STORE_DIR = "mlruns"
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")  # data/corpus.py's
MARK = "tuner-app"  # in the metadata of every figure it writes: how figure_is_ours knows them
_FIGURE_KEYS = {"png": "Software", "pdf": "Creator", "svg": "Creator", "ps": "Creator", "eps": "Creator"}
_FIGURE_BYTES = 1 << 24  # a PDF's /Creator is near its end; tuner-app's figures are far smaller
_PNG = b"\x89PNG\r\n\x1a\n"
_LISTED = 200  # entries looked at per folder: recognising a place never lists a huge folder whole
_SHOWN = 1


def check_new_directory(out: Path, option: str, force: bool, stores: Iterable[Path] = ()) -> None:
    """Refuse `out` unless it is absent, or with `force` an earlier export; and wherever check_place refuses."""
    check_place(out, option, stores)
    if out.is_file() or out.is_symlink():
        raise TunerAppError(f"{option} {out}: a file is there; choose another {option}")
    if not out.exists():
        return
    if not force:
        raise TunerAppError(f"{out}: already exists; use --force to replace an earlier export, or choose another "
                            f"{option}")
    _check_earlier_export(out, option)


def _check_earlier_export(out: Path, option: str) -> None:
    entries = sorted(entry.name for entry in itertools.islice(out.iterdir(), _LISTED))
    if entries and not is_export(out):  # an empty folder: nothing to lose
        raise TunerAppError(f"{option} {out}: not an earlier export (holds {_listed(entries)}); tuner-app replaces "
                            f"only its own exports - choose another {option}")
    foreign = [name for name in entries if name not in EXPORT_ENTRIES]
    if foreign:
        raise TunerAppError(f"{option} {out}: an earlier export, but it also holds {_listed(foreign)}, which "
                            f"tuner-app did not write; move it out or choose another {option}")


def is_export(folder: Path) -> bool:
    """Whether `folder` holds an export's tuner_app.json (as export writes it) and MLmodel."""
    try:
        written = json.loads((folder / EXPORT_MARKERS[0]).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(written, dict) and "tuner_app_version" in written and (folder / EXPORT_MARKERS[1]).is_file()


def _listed(names: list[str]) -> str:
    more = len(names) - _SHOWN
    return ", ".join(names[:_SHOWN]) + (f" and {more} more" if more > 0 else "")


def check_place(out: Path, option: str, stores: Iterable[Path] = ()) -> None:
    """Refuse an `out` that is, holds or lies inside a search, trial, corpus or MLflow store (also any of
    `stores`: the tracking URI's files), the current or home folder or the root."""
    resolved = _resolved(out)
    reason = _forbidden(resolved, [_resolved(Path(path)) for path in stores])
    if reason:
        raise TunerAppError(f"{option} {out}: {reason}; tuner-app writes no output there - choose another {option}")


def _resolved(path: Path) -> Path:
    return Path(os.path.abspath(path.expanduser())).resolve()


def _forbidden(out: Path, stores: list[Path]) -> str | None:
    if out == Path(out.anchor):
        return "is the root folder"
    for place, name in ((Path.cwd().resolve(), "the current folder"), (Path.home().resolve(), "the home folder")):
        if out == place or out in place.parents:
            return f"is {name}" if out == place else f"holds {name}"
    for store in stores:
        if out == store or store in out.parents or out in store.parents:
            where = "is" if out == store else "inside" if store in out.parents else "holds"
            return f"{where} the MLflow store" if out == store else f"{where} the MLflow store, {store}"
    return _inside(out) or _holds(out)


def _inside(out: Path) -> str | None:
    """What protected place `out` is or lies in, named by the folder that makes it one."""
    for folder in (out, *out.parents):
        kind = place_kind(folder, children=folder in (out, out.parent))
        if kind:
            return f"is {kind}" if folder == out else f"inside {kind}, {folder}"
    return None


def _holds(out: Path) -> str | None:
    """What protected place lies just below `out` (a runs directory's searches, a folder of corpora)."""
    if not out.is_dir():
        return None
    for child in itertools.islice(out.iterdir(), _LISTED):
        kind = child.is_dir() and place_kind(child)
        if kind:
            return f"holds {kind}, {child}"
    return None


def place_kind(folder: Path, children: bool = True) -> str | None:
    """What `folder` is, if tuner-app must never write into it: "a search", "a trial", "a corpus", "the MLflow
    store", "a runs directory" (holding searches) or "a corpus class" (of audio clips); None for anything else.
    `children`: also look one level down (a runs directory's searches, a corpus's class folders)."""
    named = [(SEARCH_FILES, "a search"), (TRIAL_FILES, "a trial"), (CORPUS_FILES, "a corpus"),
             (STORE_FILES, "the MLflow store")]
    kind = next((kind for files, kind in named if any(_exists(folder / name) for name in files)), None)
    if kind or folder.name == STORE_DIR and folder.is_dir():
        return kind or "the MLflow store"
    if not children or not folder.is_dir():
        return None
    if _holds_audio(folder):
        return "a corpus class"
    return "a runs directory" if any(place_kind(child, False) == "a search" for child in _folders(folder)) else None


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def _folders(folder: Path) -> list[Path]:
    try:
        return [child for child in itertools.islice(folder.iterdir(), _LISTED) if child.is_dir()]
    except OSError:
        return []


def _holds_audio(folder: Path) -> bool:
    try:
        return any(entry.suffix.lower() in AUDIO_SUFFIXES for entry in itertools.islice(folder.iterdir(), _LISTED))
    except OSError:
        return False


def check_replaceable_file(path: Path, option: str, is_ours: Callable[[Path], bool], kind: str) -> None:
    """Refuse to write `path` over a folder, or over a file that `is_ours` does not recognise as `kind`
    (tuner-app's own output of that name, from an earlier run)."""
    if path.is_dir():
        raise TunerAppError(f"{option} {path}: a folder is there; choose another {option}")
    if path.exists() and not is_ours(path):
        raise TunerAppError(f"{option} {path}: already exists and is not {kind} tuner-app wrote; tuner-app "
                            f"replaces only its own outputs - move it or choose another {option}")


def figure_metadata(path: Path) -> dict[str, str] | None:
    """savefig's `metadata` that marks a figure as tuner-app's (figure_is_ours), for the format of `path`; None
    for a format that holds none (JPEG)."""
    key = _FIGURE_KEYS.get(path.suffix.lower().lstrip(".") or "png")
    return {key: MARK} if key else None


def figure_is_ours(path: Path) -> bool:
    """Whether `path` is a figure that tuner-app wrote (marked by figure_metadata)."""
    head = _head(path, _FIGURE_BYTES)
    if head.startswith(_PNG):
        return b"Software\x00" + MARK.encode() in head
    return MARK.encode() in head  # PDF /Creator, SVG dc:creator, PostScript %%Creator


def first_line_starts(header: str) -> Callable[[Path], bool]:
    """A recogniser of a text file (a CSV table tuner-app wrote) by the start of its first line."""
    return lambda path: _head(path).split(b"\n", 1)[0].startswith(header.encode())


def head_holds(marker: str, size: int = 4096) -> Callable[[Path], bool]:
    """A recogniser of a text file (a page tuner-app wrote) by a marker in its first `size` bytes."""
    return lambda path: marker.encode() in _head(path, size)


def _head(path: Path, size: int = 65536) -> bytes:
    # the start is enough for a CSV's header or a PNG's text chunks (before its pixels)
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError:
        return b""
