"""Import the Free Spoken Digit Dataset into the Speech Commands layout."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tuner_app.data import trainability
from tuner_app.data.corpus import DIGIT_WORDS, LIST_FILES, SPLITS, Corpus, _existing_dir, scan
from tuner_app.errors import TunerAppError, storage_errors
from tuner_app.files import staged_directory

_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")
_FSDD_SOURCE = """Imported by tuner-app from the Free Spoken Digit Dataset at {recordings}
(https://github.com/Jakobovski/free-spoken-digit-dataset, CC BY-SA 4.0).
{split}
"""
# Held-out speakers of `--split speakers`: one each, so that four voices remain to train on.
VALIDATION_SPEAKER, TEST_SPEAKER = "george", "jackson"
SPLIT_RULES = {
    "takes": "testing_list.txt: takes 0-4 (the dataset's official test split); validation_list.txt: takes 5-9; "
             "rest: train.",
    "speakers": f"validation_list.txt: speaker {VALIDATION_SPEAKER}; testing_list.txt: speaker {TEST_SPEAKER}; "
                "rest: train (speaker-disjoint).",
}


def _split_by_takes(speaker: str, take: int) -> str:
    return "test" if take < 5 else "validation" if take < 10 else "train"


def _split_by_speakers(speaker: str, take: int) -> str:
    return {VALIDATION_SPEAKER: "validation", TEST_SPEAKER: "test"}.get(speaker, "train")


_SPLITTERS = {"takes": _split_by_takes, "speakers": _split_by_speakers}


def import_fsdd(src: str | Path, out: str | Path, split: str = "takes") -> Corpus:
    """Copy the Free Spoken Digit Dataset into the Speech Commands layout at `out`.

    `src` is the dataset root or its `recordings/` folder. Digit d goes to folder
    DIGIT_WORDS[d] as `<speaker>_nohash_<index>.wav` (still 8 kHz; the pipeline resamples).
    Takes 0-4 are the dataset's official test split (testing_list.txt); takes 5-9 become
    validation (validation_list.txt), so every speaker is in every split. `split="speakers"` holds
    out whole speakers instead (SPLIT_RULES), to measure accuracy on voices never trained on.
    Staged beside `out` and renamed into place: `out` is complete or absent.
    """
    if split not in SPLIT_RULES:
        raise TunerAppError(f"unknown FSDD split {split!r}; expected one of {', '.join(SPLIT_RULES)}")
    recordings = _fsdd_recordings(src)
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TunerAppError(f"output directory is not empty: {out}")
    trainability.warn(str(recordings[0][0].parent), _problems(recordings, _SPLITTERS[split]))
    with storage_errors(out, "OUT"), staged_directory(out) as staging:
        _copy_recordings(recordings, staging, _SPLITTERS[split])
        _write_fsdd_source(staging, recordings[0][0].parent, SPLIT_RULES[split])
    return scan(out, classes=[word for word in DIGIT_WORDS if (out / word).is_dir()])


def _copy_recordings(recordings: list[tuple[Path, int, str, int]], out: Path, split_of) -> None:
    """Each recording into its digit's word folder, and the split lists."""
    lists: dict[str, list[str]] = {"validation": [], "test": []}
    for path, digit, speaker, take in recordings:
        key = f"{DIGIT_WORDS[digit]}/{speaker}_nohash_{take}.wav"
        (out / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out / key)
        if split_of(speaker, take) in lists:
            lists[split_of(speaker, take)].append(key)
    for split, keys in lists.items():
        (out / LIST_FILES[split]).write_text("".join(f"{key}\n" for key in sorted(keys)), encoding="utf-8")


def _problems(recordings: list[tuple[Path, int, str, int]], split_of) -> list[str]:
    """What the corpus these recordings make lacks: digits, and what trainability finds (warned about, not
    refused: a folder of test takes alone still makes a corpus to evaluate on)."""
    digits = sorted({digit for _, digit, _, _ in recordings})
    counts = {DIGIT_WORDS[digit]: dict.fromkeys(SPLITS, 0) for digit in digits}
    for _, digit, speaker, take in recordings:
        counts[DIGIT_WORDS[digit]][split_of(speaker, take)] += 1
    missing = [word for word in DIGIT_WORDS if word not in counts]
    return ([f"no recordings of {', '.join(missing)}"] if missing else []) + trainability.problems(counts)


def _fsdd_recordings(src: str | Path) -> list[tuple[Path, int, str, int]]:
    """(path, digit, speaker, take) of every `{digit}_{speaker}_{index}.wav` in the dataset."""
    src = _existing_dir(src)
    folder = src / "recordings" if (src / "recordings").is_dir() else src
    found = []
    for path in sorted(folder.glob("*.wav")):
        match = _FSDD_NAME.match(path.name)
        if match:
            found.append((path, int(match[1]), match[2], int(match[3])))
    if not found:
        raise TunerAppError(f"{src}: no FSDD recordings ({{digit}}_{{speaker}}_{{index}}.wav) here or in recordings/")
    return found


def _write_fsdd_source(out: Path, recordings: Path, split: str) -> None:
    # CC BY-SA 4.0 asks for attribution; keep the origin next to the copied files.
    out.joinpath("SOURCE.txt").write_text(_FSDD_SOURCE.format(recordings=recordings, split=split), encoding="utf-8")
