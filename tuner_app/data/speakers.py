"""Who speaks each clip: the file-name rules of Speech Commands and FSDD, and an optional `speakers.csv`."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Iterable, Mapping

from tuner_app.errors import TunerAppError

SPEAKERS_CSV = "speakers.csv"
CSV_COLUMNS = ("path", "speaker")
NAMES_SHOWN = 10  # speakers listed by name per split; more are only counted
OVERLAP_SHOWN = 3  # speakers named in the overlap warning
_NOHASH = re.compile(r"^(.+?)_nohash_.*$")  # Speech Commands: <speaker>_nohash_<n>.wav
_FSDD = re.compile(r"^\d_([A-Za-z0-9-]+)_\d+\.[A-Za-z0-9]+$")  # FSDD: <digit>_<speaker>_<n>.wav


def speaker_of(name: str | Path) -> str:
    """Speaker id of a file name by the Speech Commands or the FSDD rule; "" when it follows neither."""
    base = Path(name).name
    match = _NOHASH.match(base) or _FSDD.match(base)
    return match[1] if match else ""


def read_speakers_csv(root: Path, present: set[str]) -> dict[str, str] | None:
    """{`folder/file`: speaker} from `root/speakers.csv`, or None without one. `present`: the corpus's keys."""
    path = root / SPEAKERS_CSV
    if not path.is_file():
        return None
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return _speaker_rows(path, csv.DictReader(handle), present)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise TunerAppError(f"{path}: cannot read it ({err}); it holds lines `path,speaker`") from None


def _speaker_rows(path: Path, reader: csv.DictReader, present: set[str]) -> dict[str, str]:
    if not set(CSV_COLUMNS) <= set(reader.fieldnames or ()):
        raise TunerAppError(f"{path}: line 1: needs the columns path,speaker (found {reader.fieldnames})")
    found: dict[str, str] = {}
    for row in reader:
        where, key = f"{path}: line {reader.line_num}", (row["path"] or "").strip()
        speaker = (row["speaker"] or "").strip()
        if key not in present:
            raise TunerAppError(f"{where}: {key!r} is no audio file of this corpus (paths are like word/file.wav)")
        if key in found:
            raise TunerAppError(f"{where}: {key!r} is listed twice")
        if not speaker:
            raise TunerAppError(f"{where}: {key!r} has no speaker")
        found[key] = speaker
    return found


def overlap(speakers: Mapping[str, Iterable[str]]) -> list[str]:
    """Sorted speakers found in more than one split of {split: speakers}."""
    seen: dict[str, int] = {}
    for names in speakers.values():
        for name in set(names):
            seen[name] = seen.get(name, 0) + 1
    return sorted(name for name, splits in seen.items() if splits > 1)


def shown(names: list[str], limit: int = OVERLAP_SHOWN) -> str:
    """`a, b, c and 4 more`."""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
