"""Whether a corpus can train a classifier, from its clip counts per class and split: what makes training
pointless is refused, what leaves a class unlearnt or unmeasured is warned about, each in one line."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from tuner_app.errors import TunerAppError

log = logging.getLogger(__name__)
Counts = Mapping[str, Mapping[str, int]]  # {class: {split: clips}}, as Corpus.counts()
SEARCH_REMEDY = ("a search needs train and validation clips of at least 2 classes: add them to the corpus or give "
                 "--data another")


def counts_of_labels(class_names: Sequence[str], labels: Mapping[str, np.ndarray]) -> dict[str, dict[str, int]]:
    """{class: {split: clips}} of integer labels (ids into `class_names`) per split."""
    per_split = {split: np.bincount(np.asarray(ids, np.int64), minlength=len(class_names)) for split, ids in
                 labels.items()}
    return {name: {split: int(tally[index]) for split, tally in per_split.items()}
            for index, name in enumerate(class_names)}


def _with_clips(counts: Counts, split: str) -> list[str]:
    return [name for name, per_split in counts.items() if per_split.get(split, 0)]


def _names(classes: Sequence[str]) -> str:
    return ", ".join(classes) if classes else "none"


def refusal(counts: Counts) -> str | None:
    """Why no classifier can be trained on a corpus with these counts, or None."""
    trained = _with_clips(counts, "train")
    if len(counts) < 2:
        return f"it has {len(counts)} class ({_names(list(counts))})"
    for split in ("train", "validation"):
        if not _with_clips(counts, split):
            return f"its {split} split is empty"
    if len(trained) < 2:
        return f"only {len(trained)} of its {len(counts)} classes has training clips ({_names(trained)})"
    return None


def warning(counts: Counts) -> str | None:
    """What a classifier trained on a corpus with these counts cannot learn or measure, or None."""
    untrained = [name for name, per_split in counts.items() if not per_split.get("train")]
    unmeasured = [name for name, per_split in counts.items() if not per_split.get("validation")]
    parts = []
    if untrained:
        parts.append(f"no training clips for {_names(untrained)} (the model cannot learn them)")
    if unmeasured:
        parts.append(f"no validation clips for {_names(unmeasured)} (their accuracy goes unmeasured)")
    return "; ".join(parts) or None


def check(counts: Counts, where: str, remedy: str) -> None:
    """Refuse (TunerAppError) a corpus no classifier can be trained on, naming `where` and the `remedy`; warn in
    one line about the classes it cannot learn or measure."""
    why = refusal(counts)
    if why:
        raise TunerAppError(f"{where}: cannot train a classifier: {why}; {remedy}")
    warn(where, problems(counts))


def problems(counts: Counts) -> list[str]:
    """Every problem `check` finds, worst first: for commands that make or read a corpus but train nothing."""
    why, unlearnt = refusal(counts), warning(counts)
    return ([f"cannot train a classifier: {why}"] if why else []) + ([unlearnt] if unlearnt else [])


def warn(where: str, found: Sequence[str]) -> None:
    """The problems `found`, if any, as one warning naming `where`."""
    if found:
        log.warning(f"{where}: {'; '.join(found)}")
