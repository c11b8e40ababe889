"""What the benchmarks share: the machine and versions line, Markdown tables, the two corpora (FSDD imported
in place from ../shared/data; the built-in synthetic corpus), and one trained space's scores."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

from tuner_app.data import cache, corpus, synth
from tuner_app.data.fsdd import import_fsdd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FSDD = ROOT.parent / "shared" / "data" / "free-spoken-digit-dataset"
DEFAULT_CACHE = Path(os.environ.get("TUNER_APP_CACHE", Path.home() / ".cache" / "tuner-app"))


def machine() -> str:
    """CPU model, cores and vector flags: timings are only comparable on the same line."""
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8") if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    vector = ", ".join(flag for flag in ("avx2", "avx512f") if flag in flags) or "neither AVX2 nor AVX-512"
    return f"{model}, {os.cpu_count()} cores, {vector}"


def versions() -> str:
    packages = ("tensorflow", "keras", "keras-tuner", "tensorflow-io", "tuner-app")
    return ", ".join([f"Python {platform.python_version()}"] + [f"{name} {metadata.version(name)}"
                                                                 for name in packages])


def markdown_table(rows: list[dict[str, object]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(row[key]) for key in header) + " |" for row in rows]
    return "\n".join(lines)


def load_fsdd(workdir: Path) -> tuple[dict, list[str]]:
    """FSDD's own split (speakers' takes 0-4 test, 5-9 validation), decoded to 16 kHz: (splits, class names)."""
    corpus_dir = workdir / "fsdd"
    import_fsdd(FSDD, corpus_dir)
    found = corpus.scan(corpus_dir)
    return cache.decode_corpus(found, workdir / "cache"), list(found.classes)


def load_default_corpus() -> tuple[dict, list[str], object]:
    """The main job's corpus (synthesized once into the cache): (splits, class names, noise bank)."""
    found = corpus.scan(synth.default_corpus(DEFAULT_CACHE))
    return cache.decode_corpus(found, DEFAULT_CACHE), list(found.classes), cache.noise_bank(found.background_noise)


def completed_trials(tuner) -> list[dict[str, object]]:
    """Each completed trial of a search: its values and its scores (sizes, val and test accuracy, seconds)."""
    rows = []
    for trial in tuner.oracle.trials.values():
        if trial.status != "COMPLETED":
            continue
        scores = {name: trial.metrics.get_last_value(name) for name in trial.metrics.metrics}
        rows.append({"trial_id": trial.trial_id, "values": dict(trial.hyperparameters.values), **scores})
    return rows
