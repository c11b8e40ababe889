"""`data split`: a corpus's validation and test lists, by named speakers or by the Speech Commands hash rule."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from tuner_app.data.corpus import LIST_FILES, SPLITS, Corpus, _existing_dir, class_folders, scan, speaker_split
from tuner_app.data.speakers import SPEAKERS_CSV, shown
from tuner_app.errors import TunerAppError
from tuner_app.files import atomic_path


def load(root: str | Path, force: bool) -> Corpus:
    """Every class folder of `root`, ignoring its lists (replaced only with `force`); it must name speakers."""
    root = _existing_dir(root)
    existing = [root / name for name in LIST_FILES.values() if (root / name).exists()]
    if existing and not force:
        raise TunerAppError(f"{existing[0]}: already exists; give --force to replace the split lists")
    found = scan(root, classes=sorted(class_folders(root)), use_lists=False)
    if not any(found.speakers().values()):
        raise TunerAppError(f"{root}: no speaker ids: file names follow neither <speaker>_nohash_<n>.wav nor "
                            f"<digit>_<speaker>_<n>.wav; add a {SPEAKERS_CSV} (columns path,speaker)")
    return found


def by_speakers(corpus: Corpus, validation: Sequence[str], test: Sequence[str]) -> dict[str, str]:
    """{`folder/file`: split}: the named speakers' clips to validation and test, the rest to train."""
    known = sorted({clip.speaker for clip in corpus.clips if clip.speaker})
    for option, names in (("--validation-speakers", validation), ("--test-speakers", test)):
        unknown = [name for name in names if name not in known]
        if unknown:
            raise TunerAppError(f"{option}: unknown speaker {unknown[0]!r} in {corpus.root} (its speakers: "
                                f"{shown(known, 10)})")
    both = [name for name in validation if name in test]
    if both:
        raise TunerAppError(f"speaker {both[0]!r} is in both --validation-speakers and --test-speakers; name it once")
    split_of = {**dict.fromkeys(validation, "validation"), **dict.fromkeys(test, "test")}
    return {_key(clip): split_of.get(clip.speaker, "train") for clip in corpus.clips}


def by_fraction(corpus: Corpus, validation_pct: float, testing_pct: float) -> dict[str, str]:
    """{`folder/file`: split} by `which_set` on each clip's speaker (its file name when unknown), so that a
    speaker's clips share a split and adding clips moves no speaker."""
    if validation_pct + testing_pct >= 100:
        raise TunerAppError(f"--validation-pct {validation_pct:g} plus --testing-pct {testing_pct:g} leaves no "
                            "training clips; keep their sum under 100")
    return {_key(clip): speaker_split(clip.path.name, clip.speaker, validation_pct, testing_pct)
            for clip in corpus.clips}


def _key(clip) -> str:
    return f"{clip.path.parent.name}/{clip.path.name}"


def write_lists(corpus: Corpus, split_of: dict[str, str]) -> dict[str, int]:
    """Both list files, whole or not at all, after checking train and validation have clips; {split: clips}."""
    sizes = {split: sum(1 for value in split_of.values() if value == split) for split in SPLITS}
    for split in ("train", "validation"):
        if not sizes[split]:
            raise TunerAppError(f"{corpus.root}: this split leaves the {split} split empty; hold out fewer or "
                                "other speakers")
    paths = {split: corpus.root / name for split, name in LIST_FILES.items()}
    with atomic_path(paths["validation"]) as validation, atomic_path(paths["test"]) as test:
        for split, temporary in (("validation", validation), ("test", test)):
            keys = sorted(key for key, value in split_of.items() if value == split)
            temporary.write_text("".join(f"{key}\n" for key in keys), encoding="utf-8")
    return sizes
