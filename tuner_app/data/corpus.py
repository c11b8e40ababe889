"""Speech Commands corpus layout: class folders, split lists, the speaker-hash split rule.

A corpus directory holds one folder per word, optional `validation_list.txt` /
`testing_list.txt` (paths like `bed/026290a7_nohash_0.wav`), an optional `speakers.csv` and an optional
`_background_noise_/` folder of long noise recordings. Nothing here decodes audio.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import re
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Sequence

from tuner_app.data.speakers import NAMES_SHOWN, overlap, read_speakers_csv, speaker_of
from tuner_app.errors import TunerAppError

SEED_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "bed", "bird", "tree", "cat", "house", "dog",
)
UNKNOWN = "_unknown_"
SPLITS = ("train", "validation", "test")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")  # what data/audio.py decodes
BACKGROUND_NOISE = "_background_noise_"
LIST_FILES = {"validation": "validation_list.txt", "test": "testing_list.txt"}
# The constant of the Speech Commands reference `which_set` (its README).
MAX_NUM_WAVS_PER_CLASS = 2**27 - 1
DIGIT_WORDS = SEED_WORDS[:10]
_NOHASH = re.compile(r"_nohash_.*$")


@dataclasses.dataclass(frozen=True)
class Clip:
    """One recording: its file, class label, speaker id ("" when unknown) and split."""

    path: Path
    label: str
    speaker: str
    split: str


@dataclasses.dataclass(frozen=True)
class Corpus:
    """The clips of the requested classes in one directory, plus its background noise files."""

    root: Path
    classes: tuple[str, ...]
    clips: tuple[Clip, ...]
    background_noise: tuple[Path, ...] = ()

    def split(self, name: str) -> tuple[Clip, ...]:
        """The clips of one split: 'train', 'validation' or 'test'."""
        if name not in SPLITS:
            raise TunerAppError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        return tuple(clip for clip in self.clips if clip.split == name)

    def counts(self) -> dict[str, dict[str, int]]:
        """{class: {split: number of clips}} with every class and split present (zeros too)."""
        tally = Counter((clip.label, clip.split) for clip in self.clips)
        return {label: {split: tally[label, split] for split in SPLITS} for label in self.classes}

    def fingerprint(self) -> str:
        """See `fingerprint`."""
        return fingerprint(self.clips)

    def speakers(self) -> dict[str, list[str]]:
        """{split: its sorted speaker ids}; clips of unknown speaker are left out."""
        return {split: sorted({clip.speaker for clip in self.split(split) if clip.speaker}) for split in SPLITS}

    def speaker_overlap(self) -> list[str]:
        """Sorted speakers heard in more than one split."""
        return overlap(self.speakers())

    def speaker_summary(self) -> dict:
        """{"speaker_disjoint": no speaker in two splits (None: no speaker known), "speakers": {split: count}}."""
        speakers = self.speakers()
        known = any(speakers.values())
        return {"speaker_disjoint": not self.speaker_overlap() if known else None,
                "speakers": {split: len(names) for split, names in speakers.items()}}

    def speaker_names(self) -> dict[str, list[str] | None]:
        """{split: its speakers, or None when more than NAMES_SHOWN}: what a report lists by name."""
        return {split: names if len(names) <= NAMES_SHOWN else None for split, names in self.speakers().items()}


def which_set(name: str | Path, validation_pct: float = 10, testing_pct: float = 10) -> str:
    """Split of a file by the Speech Commands hash rule; depends only on the speaker part.

    Same arithmetic as the dataset README's `which_set`, but returns this module's split
    names ('train', 'validation', 'test').
    """
    hash_name = _NOHASH.sub("", Path(name).name)
    hashed = int(hashlib.sha1(hash_name.encode("utf-8")).hexdigest(), 16)
    percentage = (hashed % (MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / MAX_NUM_WAVS_PER_CLASS)
    if percentage < validation_pct:
        return "validation"
    if percentage < validation_pct + testing_pct:
        return "test"
    return "train"


def fingerprint(clips: Iterable[Clip]) -> str:
    """sha256 over the sorted `folder/file`, size, label and split of every clip.

    Uses the path relative to the corpus root, so moving the corpus keeps the fingerprint.
    """
    rows = sorted(
        f"{clip.path.parent.name}/{clip.path.name}\t{clip.path.stat().st_size}\t{clip.label}\t{clip.split}"
        for clip in clips
    )
    return hashlib.sha256("\n".join(rows).encode("utf-8")).hexdigest()


def scan(root: str | Path, classes: Sequence[str] | None = None, unknown: bool = False,
         use_lists: bool = True) -> Corpus:
    """Read a Speech Commands style directory.

    `classes` defaults to the seed words that have a folder here (FSDD has only the digits);
    a class asked for by name must have one.

    Folders outside `classes` are ignored, or labelled `UNKNOWN` when `unknown` is true;
    folders starting with `_` are never classes. Splits follow the list files when either
    exists (files in neither are train) and `use_lists`, else the `which_set` hash rule. Speakers follow
    `speakers.csv` where it names the file, else the file-name rules (`speakers.speaker_of`).
    """
    root = _existing_dir(root)
    folders = class_folders(root)
    if classes is None:
        classes = [word for word in SEED_WORDS if word in folders]
        if not classes:
            raise TunerAppError(f"{root}: no folder for any of the 16 seed words; name the classes")
    classes = _checked_classes(classes)
    missing = [name for name in classes if name not in folders]
    if missing:
        raise TunerAppError(f"{root}: no folder with audio for class {missing[0]!r}")
    present = {f"{folder}/{path.name}" for folder, paths in folders.items() for path in paths}
    lists = (use_lists and _list_splitter(root, present)) or None
    listed = read_speakers_csv(root, present) or {}
    clips = []
    for folder in sorted(folders):
        label = folder if folder in classes else (UNKNOWN if unknown else None)
        if label is not None:
            clips += [_clip(path, label, lists, listed) for path in folders[folder]]
    return Corpus(root, classes + ((UNKNOWN,) if unknown else ()), tuple(clips), _noise_files(root))


def _clip(path: Path, label: str, lists: Callable[[str], str] | None, listed: dict[str, str]) -> Clip:
    key = f"{path.parent.name}/{path.name}"
    speaker = listed.get(key) or speaker_of(path.name)
    return Clip(path, label, speaker, lists(key) if lists else speaker_split(path.name, speaker))


def speaker_split(name: str, speaker: str, validation_pct: float = 10, testing_pct: float = 10) -> str:
    """`which_set` of the clip's speaker where it is known (an FSDD name, speakers.csv): all of one speaker's
    clips share a split, as Speech Commands' own names give; by the file name otherwise."""
    return which_set(f"{speaker}_nohash_0.wav" if speaker else name, validation_pct, testing_pct)


def _existing_dir(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise TunerAppError(f"not a directory: {path}")
    siblings = [p.name for p in path.parent.iterdir()] if path.parent.is_dir() else []
    close = difflib.get_close_matches(path.name, siblings, n=1)
    hint = f" (did you mean {path.parent / close[0]}?)" if close else ""
    raise TunerAppError(f"no such directory: {path}{hint}")


def _checked_classes(classes: Sequence[str]) -> tuple[str, ...]:
    classes = tuple(classes)
    if not classes:
        raise TunerAppError("the class list is empty")
    for name in classes:
        if not name or name.startswith("_") or "/" in name:
            raise TunerAppError(f"invalid class name {name!r}: names cannot be empty, contain '/' or start with '_'")
    duplicates = [name for name, n in Counter(classes).items() if n > 1]
    if duplicates:
        raise TunerAppError(f"class {duplicates[0]!r} is listed twice")
    return classes


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def class_folders(root: Path) -> dict[str, list[Path]]:
    """{folder name: its audio files} for every non-underscore folder holding audio."""
    folders = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")):
        files = _audio_files(folder)
        if files:
            folders[folder.name] = files
    if not folders:
        raise TunerAppError(f"{root}: no class folders with audio files (empty corpus directory?)")
    return folders


def _list_splitter(root: Path, present: set[str]) -> Callable[[str], str] | None:
    """Split lookup from the list files, or None when the directory has neither list. `present`: the
    `folder/file` keys of the corpus's audio files, which a list must name at least one of."""
    lists = {split: root / name for split, name in LIST_FILES.items()}
    if not any(path.is_file() for path in lists.values()):
        return None
    split_of = {}
    for split, path in lists.items():
        if path.is_file():
            split_of.update((key, split) for key in _listed_keys(path, present))
    return lambda key: split_of.get(key, "train")


def _listed_keys(path: Path, present: set[str]) -> list[str]:
    """The entries of one split list. A list naming files but none of this corpus's would silently leave
    its split empty: it is another corpus's list, or written relative to another folder."""
    try:
        keys = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise TunerAppError(f"{path}: cannot read the split list ({err})") from None
    if keys and present.isdisjoint(keys):
        raise TunerAppError(f"{path}: names no audio file of this corpus (first entry {keys[0]!r}; entries are "
                            "paths like word/file.wav relative to the corpus directory)")
    return keys


def _noise_files(root: Path) -> tuple[Path, ...]:
    folder = root / BACKGROUND_NOISE
    return tuple(_audio_files(folder)) if folder.is_dir() else ()
