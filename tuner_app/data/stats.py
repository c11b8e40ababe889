"""What a corpus holds: counts per class and split, sample rates, durations, unreadable files."""

from __future__ import annotations

import json
from collections import Counter
from typing import Callable, Iterable

from tuner_app.data import trainability
from tuner_app.data.corpus import SPLITS, Corpus
from tuner_app.data.speakers import shown
from tuner_app.errors import TunerAppError


def stats(corpus: Corpus, describe: Callable | None = None) -> dict:
    """Counts per class and split, sample-rate histogram, durations, unreadable files and what keeps the corpus
    from training a classifier (`trainability.problems`).

    `describe(path) -> AudioInfo` defaults to `tuner_app.data.audio.describe` after the truncation check
    `data prepare` makes (imported here, because they pull in TensorFlow).
    """
    describe = describe or _describe_whole
    rates: Counter = Counter()
    durations, unreadable = [], []
    for clip in corpus.clips:
        try:
            info = describe(clip.path)
        except TunerAppError as err:
            unreadable.append({"path": str(clip.path), "error": str(err).removeprefix(f"{clip.path}: ")})
            continue
        rates[int(info.rate)] += 1
        durations.append(float(info.duration))
    return {
        "root": str(corpus.root),
        "classes": list(corpus.classes),
        "fingerprint": corpus.fingerprint(),
        "clips": len(corpus.clips),
        "counts": corpus.counts(),
        "sample_rates": {str(rate): n for rate, n in sorted(rates.items())},
        "duration_seconds": _summary(durations),
        "background_noise": [str(path) for path in corpus.background_noise],
        "unreadable": unreadable,
        "problems": trainability.problems(corpus.counts()),
        **corpus.speaker_summary(),
        "speaker_names": corpus.speaker_names(),
        "speaker_overlap": corpus.speaker_overlap(),
    }


def speaker_lines(report: dict) -> list[str]:
    """Speakers per split (named when few), whether the split is speaker-disjoint, and the overlap warning."""
    if report["speaker_disjoint"] is None:
        return ["speakers: unknown (no <speaker>_nohash_<n> or <digit>_<speaker>_<n> file names, no speakers.csv)"]
    cells = [f"{split} {report['speakers'][split]}" + (f" ({', '.join(names)})" if names else "")
             for split, names in report["speaker_names"].items()]
    lines = [f"speakers: {'; '.join(cells)}", f"speaker-disjoint: {'yes' if report['speaker_disjoint'] else 'no'}"]
    overlap = report["speaker_overlap"]
    if overlap:
        lines.append(f"warning: {len(overlap)} speaker(s) in more than one split ({shown(overlap)}): validation "
                     "and test accuracy are not on unheard voices")
    return lines


def _describe_whole(path):
    from tuner_app.data.audio import describe
    from tuner_app.data.cache import wav_truncation

    reason = wav_truncation(path)
    if reason:
        raise TunerAppError(f"{path}: {reason}")
    return describe(path)


def _summary(values: list[float]) -> dict[str, float | None]:
    found = bool(values)
    return {"min": round(min(values), 4) if found else None, "max": round(max(values), 4) if found else None,
            "mean": round(sum(values) / len(values), 4) if found else None}


def format_stats(report: dict, as_json: bool = False) -> str:
    """`stats` output as a readable table, or as JSON."""
    if as_json:
        return json.dumps(report, indent=2)
    width = max(len(name) for name in [*report["counts"], "total"])

    def row(name: str, cells: Iterable) -> str:
        return f"{name:<{width}}  " + "  ".join(f"{cell:>10}" for cell in cells)

    totals = Counter()
    lines = [f"corpus {report['root']}: {report['clips']} clips, fingerprint {report['fingerprint'][:12]}",
             row("class", (*SPLITS, "total"))]
    for label, per_split in report["counts"].items():
        totals.update(per_split)
        lines.append(row(label, [*per_split.values(), sum(per_split.values())]))
    lines.append(row("total", [*(totals[split] for split in SPLITS), sum(totals.values())]))
    rates = ", ".join(f"{rate} Hz: {n}" for rate, n in report["sample_rates"].items()) or "none"
    span = report["duration_seconds"]
    lines += [f"sample rates: {rates}",
              f"durations (s): min {span['min']}, mean {span['mean']}, max {span['max']}",
              f"background noise files: {len(report['background_noise'])}",
              f"unreadable files: {len(report['unreadable'])}"]
    lines += [f"  {item['path']}: {item['error']}" for item in report["unreadable"]]
    lines += speaker_lines(report)
    return "\n".join(lines + [f"warning: {problem}" for problem in report["problems"]])
