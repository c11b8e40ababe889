"""The stimuli of an activations run: which audio files, in which order, decoded as training decodes them.

A directory gives every audio file below it, ordered by relative POSIX path (Python's code-point order, the
same on every machine and file system); a text file gives one path per line, in the order written. The order
is the order of every array and RDM made from them, so it must never depend on how a directory lists.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from tuner_app.data.corpus import AUDIO_SUFFIXES
from tuner_app.errors import TunerAppError

SUFFIXES_TEXT = ", ".join(AUDIO_SUFFIXES)


@dataclasses.dataclass(frozen=True)
class Stimulus:
    """One stimulus: `name` as saved beside its activations (relative path or list line), `path` to read."""

    name: str
    path: Path


def list_stimuli(path: str | os.PathLike) -> list[Stimulus]:
    """The stimuli of a directory (recursively, sorted by relative path) or of a list file (in its order)."""
    path = Path(path).expanduser()
    if path.is_dir():
        return _directory_stimuli(path)
    if not path.is_file():
        raise TunerAppError(f"{path}: no such stimulus directory or list file")
    if _is_audio(path):
        raise TunerAppError(f"{path}: an audio file; give a directory of stimuli or a text file listing them")
    return _listed_stimuli(path)


def read_stimuli(stimuli: list[Stimulus]) -> np.ndarray:
    """float32 [n, 16000]: each stimulus decoded by the training decoder (mono, 16 kHz, padded or cropped);
    TunerAppError names the first file that `read_clip` refuses."""
    if not stimuli:
        raise TunerAppError("no stimuli to read")
    return np.stack([read_clip(stimulus.path) for stimulus in stimuli]).astype(np.float32)


def read_clip(path: str | os.PathLike) -> np.ndarray:
    """One file as the training decoder reads it, float32 [16000]; TunerAppError naming the file if it is
    unreadable, empty, holds NaN or infinite samples, or is a WAV cut short (refused as `predict` and the
    decoded cache refuse it: the decoder would read what is there as a shorter clip)."""
    from tuner_app.data import audio, cache  # imports TensorFlow

    clip = audio.read(path)
    reason = cache.wav_truncation(path)
    if reason:
        raise TunerAppError(f"{path}: {reason}")
    return clip


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES


def _directory_stimuli(folder: Path) -> list[Stimulus]:
    # Hidden files are skipped: macOS leaves `._name.wav` resource forks that are not audio.
    found = [(path.relative_to(folder).as_posix(), path) for path in folder.rglob("*")
             if _is_audio(path) and path.is_file() and not _hidden(path.relative_to(folder))]
    if not found:
        raise TunerAppError(f"{folder}: no audio files ({SUFFIXES_TEXT}) below it")
    return [Stimulus(name, path) for name, path in sorted(found)]


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _listed_stimuli(list_file: Path) -> list[Stimulus]:
    stimuli: list[Stimulus] = []
    line_of_name: dict[str, int] = {}
    line_of_file: dict[Path, int] = {}
    for number, name in _list_lines(list_file):
        stimulus, where = _listed_stimulus(list_file, number, name), f"{list_file}, line {number}"
        file = stimulus.path.resolve()
        if name in line_of_name:
            raise TunerAppError(f"{where}: {name} is listed twice (first on line {line_of_name[name]})")
        if file in line_of_file:
            raise TunerAppError(f"{where}: {name} is the file of line {line_of_file[file]}")
        line_of_name[name], line_of_file[file] = number, number
        stimuli.append(stimulus)
    if not stimuli:
        raise TunerAppError(f"{list_file}: lists no stimuli (one audio path per line; # starts a comment line)")
    return stimuli


def _list_lines(list_file: Path) -> list[tuple[int, str]]:
    """(line number, text) of every line that names a file: stripped, blank and `#` lines left out."""
    try:
        text = list_file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise TunerAppError(f"{list_file}: cannot read the stimulus list ({err})") from None
    lines = ((number, line.strip()) for number, line in enumerate(text.splitlines(), start=1))
    return [(number, line) for number, line in lines if line and not line.startswith("#")]


def _listed_stimulus(list_file: Path, number: int, name: str) -> Stimulus:
    path = list_file.parent / Path(name).expanduser()  # an absolute line stays absolute
    where = f"{list_file}, line {number}: {name}"
    if not _is_audio(path):
        raise TunerAppError(f"{where} is not an audio file (the suffix must be one of {SUFFIXES_TEXT})")
    if not path.is_file():
        raise TunerAppError(f"{where}: no such file (paths are relative to the list file's folder)")
    return Stimulus(name, path)
